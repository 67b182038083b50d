#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "relay/delivery_ledger.h"
#include "relay/lease.h"
#include "relay/log_budget.h"
#include "relay/message_router.h"
#include "relay/publisher.h"
#include "relay/record.h"
#include "relay/relation_guard.h"
#include "relay/router.h"
#include "relay/stats.h"
#include "relay/transaction_cycle.h"
#include "wal/pgoutput.h"

namespace relay {

// How a slot runs: under a consumer group, and exactly once.
struct SlotCoreOptions {
  // When set, records are produced only while the lease is held: it is
  // checked before and after every produce(), and the slot fences itself
  // when it runs out.
  const Lease* lease = nullptr;
  // Added to every record, so that ownership is visible in the data.
  std::optional<Header> instance_header;
  // Exactly once (the publisher has transactions()): when the open Kafka
  // transaction commits (TransactionCycle::Policy): as soon as the stream is
  // caught up, and at the latest after `interval` or `max_records`.
  TransactionCycle::Policy commit_policy{config::kDefaultTransactionInterval,
                                         config::kDefaultTransactionMaxRecords};
  std::chrono::milliseconds transaction_timeout{30000};
  // How long one commit() may block the loop before it returns to answer
  // the server; a commit not done by then is resumed on the next turn.
  // A due commit does not block at all: the loop reads on while it runs,
  // holding what it reads (up to a quarter of either in-flight limit) for
  // the next Kafka transaction. A forced one (before a halt) waits the slice.
  std::chrono::milliseconds commit_slice{500};
  std::chrono::milliseconds commit_wait{0};
};

// One slot's path from decoded pgoutput messages to Kafka and back to a
// feedback position, without a server: the driver hands it the messages it
// reads and sends the positions it returns. Records go to the Publisher in
// stream order; every decision about what may be confirmed is the ledger's.
// Single-threaded: delivery reports are served from serve() on the caller's
// thread.
class SlotCore {
 public:
  using Clock = std::chrono::steady_clock;

  SlotCore(const config::Config& cfg, Router& router, Publisher& publisher, PipelineStats& stats,
           SlotCoreOptions options = {});

  // A new replication connection: forgets what the server sends again
  // (relation bindings, unfinished transactions, records not yet handed to
  // the producer). Returns the position to start streaming from.
  // `guard` says which relations of this session's stream are the outbox.
  wal::Lsn start_session(wal::Lsn slot_confirmed, RelationGuard guard);

  // One decoded message at `lsn` (the XLogData's wal_start).
  common::Result<void> on_message(const wal::Event& event, wal::Lsn lsn);
  void on_keepalive(wal::Lsn wal_end) { ledger_.on_keepalive(wal_end); }

  // Serves delivery reports, waiting up to `timeout` for the first, then
  // hands over records that waited for room in the producer's queue. Fails
  // when a report or a rejection ends the session.
  common::Result<void> serve(std::chrono::milliseconds timeout);
  // At a bound on records or bytes in flight, or with records waiting: read
  // nothing more from the stream until serve() has made room.
  bool backpressured() const;

  bool lease_held() const;
  // Ownership can no longer be proven (the lease ran out or was revoked):
  // records not yet sent are dropped (whoever owns the slot next streams
  // them again) and nothing more is produced this session. Counted as a
  // lost lease unless Kafka fenced the session first.
  common::Error fence(const char* why);
  bool fenced() const { return fenced_; }
  // Waits up to `timeout` for Kafka to acknowledge what is in flight; then
  // purges the rest and fails with errc::unacknowledged.
  common::Result<void> drain(std::chrono::milliseconds timeout,
                             std::chrono::milliseconds purge_timeout);

  // Exactly once: takes the outcome of the running commit, if one runs and
  // has ended (what was read meanwhile goes into the next transaction);
  // then commits the open Kafka transaction with the ledger's checkpoint
  // when it is due (TransactionCycle::due(); `caught_up`: the driver has read
  // everything the server sent) or `force`, and only when every record read
  // so far is in it. A failed commit was aborted: the session must restart.
  common::Result<void> maybe_commit(Clock::time_point now, bool caught_up = false,
                                    bool force = false);
  // Exactly once: when maybe_commit() has something to do by the clock
  // alone (the open transaction's interval runs out).
  std::optional<Clock::time_point> commit_deadline(Clock::time_point now) const {
    return cycle_.deadline(now);
  }
  const TransactionCycle& transaction_cycle() const { return cycle_; }
  // Exactly once, at a clean stop: commits what was read within `timeout`,
  // or fails with errc::unacknowledged (the next start streams it again).
  common::Result<void> commit_at_stop(std::chrono::milliseconds timeout);
  // Exactly once: aborts the open Kafka transaction (the replay sends it
  // again), waiting at most `timeout` (transaction_timeout by default).
  void abort_transaction(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // The checkpoint read back from Kafka when the slot was taken.
  void restore(const Checkpoint& checkpoint);
  // The system identifier of the server the next session streams from;
  // checkpoints name it.
  void set_system_identifier(uint64_t system_identifier) {
    ledger_.set_system_identifier(system_identifier);
  }
  // The timeline of that server; checkpoints name it.
  void set_timeline(wal::TimelineId timeline) { ledger_.set_timeline(timeline); }
  // See DeliveryLedger::forget_positions().
  void forget_positions();
  // Counts, once per session, that a newer owner took the slot's output:
  // the lease ran out (fence()), or Kafka refused this producer for a newer
  // one (a delivery report here, a failed commit in the driver); and, when
  // the lease is not held at that moment, that the lease was lost.
  void note_fenced();

  std::optional<wal::Lsn> feedback(Clock::time_point now, bool force) {
    return ledger_.feedback(now, force);
  }
  wal::Lsn watermark() const { return ledger_.watermark(); }
  const DeliveryLedger& ledger() const { return ledger_; }

 private:
  common::Result<void> on_relation(const wal::Relation& relation);
  common::Result<void> on_insert(const wal::Insert& insert, wal::Lsn lsn);
  // A logical decoding message (pg_logical_emit_message), a record of its
  // transaction like a row when it is ours (outbox.source, message_prefix).
  common::Result<void> on_logical_message(const wal::Message& message);
  common::Result<void> on_non_transactional(const wal::Message& message);
  // A row or message routed at `lsn`: its record, or the bad-row policy's.
  common::Result<void> add(RouteOutcome&& routed, wal::Lsn lsn);
  // Warns when start_session() republishes a partly committed transaction.
  void log_partial_resume() const;
  common::Result<void> bad_row(const BadRow& bad, wal::Lsn lsn);
  common::Result<void> publish(OutboxRecord&& record, DeliveryLedger::Token token);
  common::Result<void> retry_pending();
  size_t max_pending_while_committing() const {
    return static_cast<size_t>(std::max<uint64_t>(1, cfg_.limits.max_inflight_messages / 4));
  }
  // The same quarter of max_inflight_bytes, in keys and payloads: what is
  // read while a commit runs is held here, outside the producer's count.
  uint64_t max_pending_bytes_while_committing() const {
    return std::max<uint64_t>(1, cfg_.limits.max_inflight_bytes / 4);
  }
  // Hands one record to the producer while the lease is held: true once it
  // is queued there, false when the producer's queue is full. A record Kafka
  // refuses for good becomes its dead-letter record in place, per policy.
  common::Result<bool> offer(OutboxRecord& record, DeliveryLedger::Token& token);
  void on_report(const DeliveryReport& report);
  // Serves delivery reports, waiting up to `timeout` for the first; they
  // share one reading of the clock.
  void poll_reports(std::chrono::milliseconds timeout);
  // The running commit went through: its checkpoint is readable now.
  void on_committed();
  // Opens a Kafka transaction for the next record, once an abort asked
  // before went through.
  common::Result<void> open_transaction();
  // Starts committing the open transaction with the ledger's checkpoint and
  // waits up to `wait` for it: true once committed, false while it runs;
  // an error when it was aborted.
  common::Result<bool> commit_open(std::chrono::milliseconds wait);
  // Asks the running commit for its outcome, waiting up to `wait`: as
  // commit_open().
  common::Result<bool> settle_commit(std::chrono::milliseconds wait);
  // Turns `record` (failed for `reason`) into its dead-letter replacement.
  void replace_with_dead_letter(OutboxRecord& record, DeliveryReason reason,
                                const std::string& error);
  RowContext row_context(wal::Lsn lsn) const;
  // Records refused for good inside a Kafka transaction, by (outbox-id,
  // outbox-lsn): the replay sends their dead-letter records instead.
  using RowKey = std::pair<std::string, std::string>;
  static RowKey key_of(const OutboxRecord& record);
  std::map<RowKey, std::pair<DeliveryReason, std::string>> refused_;
  // Why the producer's transaction state is unknown (a commit whose outcome
  // did not come, an abort that did not go through): the next transaction
  // is not begun on it; a new producer starts over from the checkpoint.
  std::optional<std::string> unresolved_;
  // Keys and payloads queued in pending_ since the running commit began.
  uint64_t pending_bytes_while_committing_ = 0;

  template <typename... Args>
  void log_dead_letter(fmt::format_string<Args...> format, Args&&... args);

  const config::Config& cfg_;
  Router& router_;
  MessageRouter message_router_;
  Publisher& publisher_;
  // publisher_.transactions(): exactly once when set.
  TransactionalPublisher* const txns_;
  PipelineStats& stats_;
  SlotCoreOptions options_;
  TransactionCycle cycle_;
  DeliveryLedger ledger_;
  TopicCountersCache topic_counters_;
  std::optional<RelationGuard> guard_;

  // Records the producer's queue had no room for yet, retried from serve().
  std::deque<std::pair<OutboxRecord, DeliveryLedger::Token>> pending_;
  std::vector<RawValue> scratch_values_;
  // When the reports being served arrived, read once per serve().
  int64_t reports_now_micros_ = 0;
  std::optional<common::Error> stop_error_;  // set from delivery reports
  bool fenced_ = false;
  bool fence_noted_ = false;
  // outbox.source: table skips messages with the relay's prefix; the first
  // one of a session is logged, in case the source was meant to include them.
  bool skipped_message_logged_ = false;
  // Each dead-lettered row is logged with its id and LSN, up to a flood;
  // past it, a count of the lines held back (the records still carry both).
  LogBudget dead_letter_log_{50};
};

// A record Kafka refused for good, as its dead-letter record: same key and
// headers, plus why and where it came from. With `drop_payload` (a record
// too large for the broker) the payload is left out and its size recorded;
// the row itself is still in the WAL at the position named.
OutboxRecord dead_letter_from_failed(OutboxRecord original, const std::string& reason,
                                     const std::string& dlq_topic, bool drop_payload);

}  // namespace relay
