#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace driver {

// What the driver does with a failure, decided from its code alone
// (disposition()).
enum class errc {
  retriable = 1,  // reconnect with backoff and resume from the confirmed LSN
  halted,         // the halt policy stopped the relay at a bad row
  fatal,          // configuration, schema or server state that retrying cannot fix
  // Kafka had not acknowledged every record within drain_timeout when the
  // session ended; they stay unconfirmed and are streamed again. Retried
  // like `retriable`; returned by run() when it ends a requested stop.
  unacknowledged,
  // Another producer took the slot's transactional.id (another instance
  // owns the slot now, or two relays are configured on one slot).
  fenced,
};
const std::error_category& error_category();
inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), error_category()};
}

inline common::Error failure(errc code, std::string message) {
  return common::Error{make_error_code(code), std::move(message)};
}

// The driver's reading of an error from the slot core or the replication
// connection.
errc disposition(const common::Error& error);

}  // namespace driver

template <>
struct std::is_error_code_enum<driver::errc> : std::true_type {};
