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

DeliveryLedger::DeliveryLedger(config::BadRowPolicy policy, FeedbackTimes times)
    : policy_(policy), times_(times) {}

wal::Lsn DeliveryLedger::start_session(wal::Lsn slot_confirmed) {
  // Asking for less than the slot's position gets the slot's; asking for
  // more than it resumes after what Kafka has acknowledged but the slot had
  // not yet been told (the status update was lost with the connection, or a
  // server restart kept an older copy of the slot on disk).
  const wal::Lsn from = std::max(slot_confirmed, tracker_.watermark());
  tracker_ = AckTracker(from);
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
  return {};
}

common::Result<void> DeliveryLedger::commit(wal::Lsn end_lsn, wal::Lsn lsn) {
  if (!txn_) return stream_error("Commit without Begin at lsn=" + lsn.to_string());
  // The Commit's end LSN is where a restart resumes after this transaction,
  // the position PostgreSQL's own apply worker confirms.
  tracker_.commit(txn_seq_, end_lsn);
  txn_.reset();
  return {};
}

common::Result<DeliveryLedger::Token> DeliveryLedger::add(wal::Lsn lsn, const char* what) {
  if (!txn_) return stream_error(std::string(what) + " outside a transaction at lsn=" + lsn.to_string());
  tracker_.add_record(txn_seq_);
  return token_for(txn_seq_);
}

common::Result<DeliveryLedger::Token> DeliveryLedger::add_record(wal::Lsn lsn) {
  return add(lsn, "Insert");
}

common::Result<DeliveryLedger::Token> DeliveryLedger::add_dead_letter(wal::Lsn lsn) {
  auto token = add(lsn, "Insert");
  if (!token) return token;
  return *token | kDeadLetterFlag;
}

DeliveryLedger::Token DeliveryLedger::token_for(AckTracker::TxnSeq seq) const {
  OUTBOX_ASSERT(seq <= kSeqMask);
  return (epoch_ << kSeqBits) | seq;
}

DeliveryLedger::Outcome DeliveryLedger::on_delivery(Token token, DeliveryStatus status) {
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
      if (policy_ == config::BadRowPolicy::kDeadLetter && !is_dead_letter(token)) {
        return Outcome{Verdict::kDeadLetter, token | kDeadLetterFlag};
      }
      return Outcome{Verdict::kHalt};
    case DeliveryStatus::kRetriable:
      return Outcome{Verdict::kRestart};
    case DeliveryStatus::kFatal:
      return Outcome{Verdict::kFatal};
  }
  return Outcome{Verdict::kFatal};
}

std::optional<wal::Lsn> DeliveryLedger::feedback(Clock::time_point now, bool force) {
  const wal::Lsn position = tracker_.watermark();
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
