#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/result.h"
#include "config/config.h"
#include "relay/ack_tracker.h"
#include "relay/checkpoint.h"
#include "relay/publisher.h"
#include "wal/lsn.h"

namespace relay {

// The slot's delivery state machine: the one place that decides what may be
// confirmed to PostgreSQL. Pure: no server, no clock of its own, no I/O.
//
//   Begin ──▶ add_record()* ──▶ Commit           (stream order = commit order)
//                 │ token
//                 ▼
//   delivery report ──▶ on_delivery() ──▶ delivered | dead-letter | halt | restart | fatal
//                                          │
//                                          ▼
//   AckTracker watermark ──▶ feedback() ──▶ standby status update (write = flush = apply)
//
// The rule it keeps: the position reported never passes a record a reader
// cannot read, and never goes backwards, across sessions too. At least once,
// a record can be read once Kafka acknowledged it (or a dead-letter
// replacement took its place). Exactly once, only once the Kafka transaction
// it was produced in committed, with the checkpoint the ledger computed for
// it; a new session resumes after that checkpoint and skips the rows of a
// partly committed PostgreSQL transaction that are already in Kafka. A session is one replication connection;
// the ledger outlives it so that a reconnect resumes from what Kafka has
// acknowledged even when the status update that would have confirmed it was lost
// with the connection.
class DeliveryLedger {
 public:
  using Token = uint64_t;
  using Clock = std::chrono::steady_clock;

  struct FeedbackTimes {
    // How often a moving position is reported.
    std::chrono::milliseconds status_interval{1000};
    // How often an unchanged one is reported anyway: the update is what keeps
    // the walsender from timing the connection out (wal_sender_timeout) while
    // backpressure has stopped reading and the watermark stands still.
    std::chrono::milliseconds keepalive_interval{10000};
  };

  // The open transaction's identity, handed to the router for headers.
  struct Txn {
    wal::Lsn final_lsn;
    wal::Xid xid = 0;
    wal::PgTimestamp commit_time;
  };

  DeliveryLedger(config::BadRowPolicy policy, FeedbackTimes times, bool exactly_once = false);

  // A new replication connection that starts from the slot's confirmed
  // position. The previous session's unfinished transactions are forgotten
  // (the server sends them again) and their tokens become stale. Returns
  // where to ask the server to start: never before what readers can read.
  // Exactly once, it resumes after the last checkpoint Kafka committed. At
  // least once the checkpoint is only the slot's memory (a lost slot is
  // told from a first start by it): the slot's own position decides.
  wal::Lsn start_session(wal::Lsn slot_confirmed);

  // Stream messages. Each fails (without changing anything) when the stream
  // breaks the Begin/Commit nesting, naming the LSN.
  common::Result<void> begin(wal::Lsn final_lsn, wal::Xid xid, wal::PgTimestamp commit_time,
                             wal::Lsn lsn);
  common::Result<void> commit(wal::Lsn end_lsn, wal::Lsn lsn);
  // One record of the open transaction about to be handed to Kafka; nothing
  // when a committed Kafka transaction already holds it (exactly once, the
  // replay of a partly committed PostgreSQL transaction).
  common::Result<std::optional<Token>> add_record(wal::Lsn lsn);
  // A row the router could not map, dead-lettered in place of its record.
  common::Result<std::optional<Token>> add_dead_letter(wal::Lsn lsn);
  static Token as_dead_letter(Token token) { return token | kDeadLetterFlag; }

  bool in_transaction() const { return txn_.has_value(); }
  // The open transaction; only while in_transaction().
  const Txn& txn() const;

  // A keepalive's WAL end: PostgreSQL's apply worker confirms it when it has
  // no pending transactions, and so does the ledger, or an idle outbox in a
  // busy database pins WAL forever (since PG15 transactions that touch no
  // published table send no Begin/Commit at all).
  void on_keepalive(wal::Lsn wal_end) {
    tracker_.observe_wal_end(wal_end);
    if (!txn_ && wal_end > stream_end_) stream_end_ = wal_end;
  }

  enum class Verdict {
    kStale,       // a previous session's record: ignore
    kDelivered,   // acknowledged; counts for its transaction
    kDeadLetter,  // produce its dead-letter record under `replacement`
    // Exactly once: the open Kafka transaction can only abort. Replay from
    // the checkpoint with this record dead-lettered.
    kReplayAsDeadLetter,
    kHalt,        // stop without confirming past it (on_bad_row: halt)
    kRestart,     // reconnect and resume from the confirmed position
    kFatal,       // the producer cannot go on
  };
  struct Outcome {
    Verdict verdict = Verdict::kStale;
    // kDeadLetter: the token the replacement is produced with. Its delivery
    // acknowledges the original record's place in its transaction.
    Token replacement = 0;
    // kDelivered: when the record's transaction committed in PostgreSQL.
    wal::PgTimestamp commit_time;
  };
  // A delivery report for `token`, or (`at_produce`) a rejection by
  // produce(), which never reached the transaction.
  Outcome on_delivery(Token token, DeliveryStatus status, bool at_produce = false);

  // Exactly once: the position of what has been produced so far, to commit
  // with the open Kafka transaction; and the commit that made it readable.
  Checkpoint checkpoint() const;
  // The checkpoint a commit starts with. Records added while that commit
  // runs belong to the next Kafka transaction: on_committed() counts only
  // the ones before it as committed.
  Checkpoint begin_commit();
  void on_committed(const Checkpoint& checkpoint);
  // The checkpoint read back from Kafka when the slot is taken: the next
  // session resumes after it.
  void restore(const Checkpoint& checkpoint) { last_checkpoint_ = checkpoint; }
  // The system the session's server belongs to: checkpoint() names it.
  void set_system_identifier(uint64_t system_identifier) {
    system_identifier_ = system_identifier;
  }
  // The session's server's timeline, and the fingerprint of the outbox
  // selection that counts records: checkpoint() names both, and a resume
  // skips rows by index only under the ones that counted them.
  void set_timeline(wal::TimelineId timeline) { timeline_ = timeline; }
  void set_selection(uint64_t selection) { selection_ = selection; }

  // How the last start_session() resumes the transaction a checkpoint with
  // last_row was partly in.
  enum class PartialResume {
    kNone,       // no such checkpoint, or the resume starts elsewhere
    kSkipRows,   // skips rows 0..last_row, which Kafka holds
    // Republishes the whole transaction: the selection that counted
    // last_row is not this one, so the index would name other records.
    kRepublishSelectionChanged,
    // Republishes the whole transaction: the checkpoint was taken on
    // another timeline, and the transaction after end_lsn on the server's
    // history may not be the one whose rows were counted.
    kRepublishTimelineChanged,
  };
  PartialResume partial_resume() const { return partial_resume_; }
  // The slot's server is not the system the positions so far were read
  // from (a checkpoint of another system identifier, under on_slot_lost:
  // recreate): they mean nothing in its WAL. Forgets them, the checkpoint
  // included; the next session starts where the slot is.
  void forget_positions();
  const std::optional<Checkpoint>& last_checkpoint() const { return last_checkpoint_; }
  uint64_t records_since_commit() const { return records_since_commit_; }
  bool exactly_once() const { return exactly_once_; }
  static bool is_dead_letter(Token token) { return token & kDeadLetterFlag; }

  // The feedback decision, in the spirit of send_feedback() in PostgreSQL's
  // worker.c: the acknowledged watermark (never backwards), reported when it
  // moved and status_interval has passed, when keepalive_interval has passed
  // anyway, or at once when the server asked for a reply (or the session
  // ends). Returns the position to send, or nothing when this turn skips.
  std::optional<wal::Lsn> feedback(Clock::time_point now, bool force);

  // The position readers can read up to: what feedback reports.
  wal::Lsn watermark() const { return exactly_once_ ? committed_end_ : tracker_.watermark(); }
  wal::Lsn last_reported() const { return last_reported_; }
  uint64_t pending_records() const { return tracker_.pending_records(); }
  Clock::time_point last_feedback_at() const { return last_feedback_at_; }

 private:
  static constexpr uint64_t kDeadLetterFlag = uint64_t{1} << 63;
  static constexpr int kSeqBits = 40;
  static constexpr uint64_t kSeqMask = (uint64_t{1} << kSeqBits) - 1;
  static constexpr uint64_t kEpochMask = (uint64_t{1} << (63 - kSeqBits)) - 1;

  Token token_for(AckTracker::TxnSeq seq) const;
  common::Result<std::optional<Token>> add(wal::Lsn lsn, const char* what);
  // Exactly once, with nothing produced since the last commit and no
  // transaction open, the stream's position needs no Kafka commit to be
  // readable: nothing is waiting to be read before it.
  void settle_idle();

  config::BadRowPolicy policy_;
  FeedbackTimes times_;
  bool exactly_once_;
  uint64_t epoch_ = 0;
  AckTracker tracker_{wal::Lsn()};
  std::optional<Txn> txn_;
  AckTracker::TxnSeq txn_seq_ = 0;
  wal::Lsn last_reported_;
  // Exactly once. committed_end_: readable position; stream_end_: the end of
  // the last Commit (or keepalive between transactions) seen; rows_in_txn_:
  // rows of the open transaction so far; skip_through_: rows of the next
  // transaction with rows that a committed Kafka transaction already holds.
  wal::Lsn committed_end_;
  wal::Lsn stream_end_;
  uint64_t rows_in_txn_ = 0;
  uint64_t records_since_commit_ = 0;
  uint64_t records_in_commit_ = 0;
  std::optional<uint64_t> skip_through_;
  std::optional<Checkpoint> last_checkpoint_;
  std::optional<uint64_t> system_identifier_;
  std::optional<wal::TimelineId> timeline_;
  std::optional<uint64_t> selection_;
  PartialResume partial_resume_ = PartialResume::kNone;
  std::optional<uint64_t> skip_in_txn_;
  bool reported_in_session_ = false;
  Clock::time_point last_feedback_at_{};
};

}  // namespace relay
