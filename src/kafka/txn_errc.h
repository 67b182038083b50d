#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace kafka {

// Why a transactional step failed, decided from librdkafka's error codes
// where they arise (transactional_producer.cpp) and passed on as this reason.
// The caller acts on the reason alone:
//   aborted, record_too_large, record_rejected: the open transaction was
//     aborted and nothing of it is visible to read_committed consumers; the
//     producer is ready for begin(). Replay everything after the last
//     checkpoint (for the two record reasons, after applying the bad-row
//     policy to the record its failed delivery report carried).
//   fenced: another producer took this transactional.id over (init() of a
//     new owner), or the group generation of the checkpoint moved on. The
//     slot belongs to someone else: stop it, confirm nothing more. After the
//     former the producer only returns this error again; after the latter
//     the transaction was aborted first. librdkafka also reports the
//     broker's own abort of a transaction that outlived
//     transaction.timeout.ms as fenced (the coordinator bumps the epoch):
//     a caller that still owns the slot creates a new producer and resumes
//     from read_checkpoint().
//   fatal, unauthorized, unsupported: the producer cannot continue; destroy
//     it. unauthorized and unsupported name what to grant or change.
//   timed_out: retriable errors outlasted the caller's timeout. For init()
//     and begin() nothing happened. For commit() the outcome is unknown:
//     call commit() again, or destroy the producer, create a new one, init()
//     it (which completes or aborts the pending transaction) and believe
//     read_checkpoint(). For abort(): call abort() again or destroy it.
//   malformed_checkpoint: the checkpoint group holds metadata this relay did
//     not write.
//   invalid_config: a property librdkafka refused, or a checkpoint place the
//     cluster does not have.
enum class txn_errc {
  aborted = 1,
  record_too_large,
  record_rejected,
  fenced,
  fatal,
  unauthorized,
  unsupported,
  timed_out,
  malformed_checkpoint,
  invalid_config,
};

}  // namespace kafka

template <>
struct std::is_error_code_enum<kafka::txn_errc> : std::true_type {};

namespace kafka {

const std::error_category& txn_category();

inline std::error_code make_error_code(txn_errc e) {
  return {static_cast<int>(e), txn_category()};
}

inline common::Error make_txn_error(txn_errc e, std::string message) {
  return common::Error{make_error_code(e), std::move(message)};
}

// The transaction was aborted and the producer is ready for the next one.
inline bool is_aborted(const std::error_code& code) {
  return code == txn_errc::aborted || code == txn_errc::record_too_large ||
         code == txn_errc::record_rejected;
}

}  // namespace kafka
