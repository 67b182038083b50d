#include "relay/delivery_ledger.h"

#include <algorithm>

#include "relay/errc.h"

namespace relay {

namespace {

common::Error stream_error(std::string message) {
  return common::Error{make_error_code(errc::stream_out_of_order), std::move(message)};
}

}  // namespace

const char* to_string(DeliveryReason reason) {
  switch (reason) {
    case DeliveryReason::kNone: return "none";
    case DeliveryReason::kTooLarge: return "too_large";
    case DeliveryReason::kUnknownTopic: return "unknown_topic";
    case DeliveryReason::kAuthorization: return "authorization";
    case DeliveryReason::kTimeout: return "timeout";
    case DeliveryReason::kFenced: return "fenced";
    case DeliveryReason::kOther: return "other";
  }
  return "other";
}

DeliveryLedger::DeliveryLedger(config::BadRowPolicy policy, FeedbackTimes times,
                               bool exactly_once)
    : policy_(policy), times_(times), exactly_once_(exactly_once) {}

wal::Lsn DeliveryLedger::start_session(wal::Lsn slot_confirmed) {
  const std::optional<Checkpoint>& committed = last_checkpoint_;
  // Asking for less than the slot's position gets the slot's; asking for
  // more than it resumes after what readers can already read but the slot
  // had not yet been told (the status update was lost with the connection,
  // or a server restart kept an older copy of the slot on disk).
  wal::Lsn from = std::max(slot_confirmed, watermark());
  skip_through_.reset();
  partial_resume_ = PartialResume::kNone;
  if (exactly_once_ && committed) {
    from = std::max(from, committed->end_lsn);
    // The PostgreSQL transaction after the checkpoint is replayed from its
    // Begin; its rows up to last_row are already committed in Kafka, if the
    // index still names them. When it may not, the whole transaction is
    // published again: duplicates of what Kafka holds (their outbox-lsn and
    // outbox-xid headers tell them apart), never a skipped row. A
    // checkpoint that does not record one or the other keeps the index.
    if (committed->last_row && from == committed->end_lsn) {
      if (committed->selection && selection_ && *committed->selection != *selection_) {
        partial_resume_ = PartialResume::kRepublishSelectionChanged;
      } else if (committed->timeline && timeline_ && *committed->timeline != *timeline_) {
        partial_resume_ = PartialResume::kRepublishTimelineChanged;
      } else {
        partial_resume_ = PartialResume::kSkipRows;
        skip_through_ = committed->last_row;
      }
    }
  }
  tracker_ = AckTracker(from);
  committed_end_ = from;
  stream_end_ = from;
  records_since_commit_ = 0;
  records_in_commit_ = 0;
  epoch_ = (epoch_ + 1) & kEpochMask;
  txn_.reset();
  reported_in_session_ = false;
  return from;
}

const DeliveryLedger::Txn& DeliveryLedger::txn() const {
  OUTBOX_ASSERT(txn_.has_value());
  return *txn_;
}

common::Result<void> DeliveryLedger::begin(wal::Lsn final_lsn, wal::Xid xid,
                                           wal::PgTimestamp commit_time, wal::Lsn lsn) {
  if (txn_) return stream_error("Begin inside an open transaction at lsn=" + lsn.to_string());
  txn_seq_ = tracker_.begin(commit_time);
  txn_ = Txn{final_lsn, xid, commit_time};
  rows_in_txn_ = 0;
  skip_in_txn_.reset();
  return {};
}

common::Result<void> DeliveryLedger::commit(wal::Lsn end_lsn, wal::Lsn lsn) {
  if (!txn_) return stream_error("Commit without Begin at lsn=" + lsn.to_string());
  // The Commit's end LSN is where a restart resumes after this transaction,
  // the position PostgreSQL's own apply worker confirms.
  tracker_.commit(txn_seq_, end_lsn);
  txn_.reset();
  if (end_lsn > stream_end_) stream_end_ = end_lsn;
  // The transaction the checkpoint was partly in is the first after it with
  // rows; one without rows leaves the skip for the next.
  if (skip_in_txn_) skip_through_.reset();
  return {};
}

common::Result<std::optional<DeliveryLedger::Token>> DeliveryLedger::add(wal::Lsn lsn,
                                                                         const char* what) {
  if (!txn_) return stream_error(std::string(what) + " outside a transaction at lsn=" + lsn.to_string());
  const uint64_t row = rows_in_txn_++;
  if (row == 0 && skip_through_) skip_in_txn_ = skip_through_;
  if (skip_in_txn_ && row <= *skip_in_txn_) return std::optional<Token>();
  tracker_.add_record(txn_seq_);
  ++records_since_commit_;
  return std::optional<Token>(token_for(txn_seq_));
}

common::Result<std::optional<DeliveryLedger::Token>> DeliveryLedger::add_record(wal::Lsn lsn) {
  return add(lsn, "Insert");
}

common::Result<std::optional<DeliveryLedger::Token>> DeliveryLedger::add_dead_letter(wal::Lsn lsn) {
  auto token = add(lsn, "Insert");
  if (!token || !*token) return token;
  return std::optional<Token>(**token | kDeadLetterFlag);
}

Checkpoint DeliveryLedger::checkpoint() const {
  Checkpoint c{stream_end_, std::nullopt, system_identifier_, timeline_, selection_};
  if (txn_ && rows_in_txn_ > 0) c.last_row = rows_in_txn_ - 1;
  return c;
}

void DeliveryLedger::forget_positions() {
  last_checkpoint_.reset();
  skip_through_.reset();
  partial_resume_ = PartialResume::kNone;
  tracker_ = AckTracker(wal::Lsn());
  committed_end_ = wal::Lsn();
  stream_end_ = wal::Lsn();
  last_reported_ = wal::Lsn();
  records_since_commit_ = 0;
  records_in_commit_ = 0;
}

Checkpoint DeliveryLedger::begin_commit() {
  records_in_commit_ = records_since_commit_;
  return checkpoint();
}

void DeliveryLedger::on_committed(const Checkpoint& checkpoint) {
  OUTBOX_ASSERT(exactly_once_);
  if (checkpoint.end_lsn > committed_end_) committed_end_ = checkpoint.end_lsn;
  records_since_commit_ -= std::min(records_in_commit_, records_since_commit_);
  records_in_commit_ = 0;
  last_checkpoint_ = checkpoint;
}

void DeliveryLedger::settle_idle() {
  if (exactly_once_ && !txn_ && records_since_commit_ == 0 && stream_end_ > committed_end_) {
    committed_end_ = stream_end_;
  }
}

DeliveryLedger::Token DeliveryLedger::token_for(AckTracker::TxnSeq seq) const {
  OUTBOX_ASSERT(seq <= kSeqMask);
  return (epoch_ << kSeqBits) | seq;
}

DeliveryLedger::Outcome DeliveryLedger::on_delivery(Token token, DeliveryStatus status,
                                                    bool at_produce) {
  const Token plain = token & ~kDeadLetterFlag;
  if ((plain >> kSeqBits) != epoch_) return {};  // a previous session's record
  const AckTracker::TxnSeq seq = plain & kSeqMask;
  switch (status) {
    case DeliveryStatus::kOk: {
      Outcome o{Verdict::kDelivered};
      o.commit_time = tracker_.commit_time(seq);
      tracker_.ack(seq);
      return o;
    }
    case DeliveryStatus::kPermanent:
      // A replacement that fails too cannot be replaced again: stop there.
      if (policy_ != config::BadRowPolicy::kDeadLetter || is_dead_letter(token)) {
        return Outcome{Verdict::kHalt};
      }
      // A failed delivery inside a Kafka transaction dooms it: the
      // replacement goes into the replay, in the record's place.
      if (exactly_once_ && !at_produce) return Outcome{Verdict::kReplayAsDeadLetter};
      return Outcome{Verdict::kDeadLetter, token | kDeadLetterFlag};
    case DeliveryStatus::kRetriable:
      return Outcome{Verdict::kRestart};
    case DeliveryStatus::kFatal:
      return Outcome{Verdict::kFatal};
  }
  return Outcome{Verdict::kFatal};
}

std::optional<wal::Lsn> DeliveryLedger::feedback(Clock::time_point now, bool force) {
  settle_idle();
  const wal::Lsn position = watermark();
  OUTBOX_ASSERT(position >= last_reported_);
  const auto since = now - last_feedback_at_;
  const bool due = !reported_in_session_ || since >= times_.keepalive_interval ||
                   (position != last_reported_ && since >= times_.status_interval);
  if (!force && !due) return std::nullopt;
  last_reported_ = position;
  last_feedback_at_ = now;
  reported_in_session_ = true;
  return position;
}

}  // namespace relay
