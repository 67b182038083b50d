#include "relay/ack_tracker.h"

#include "common/result.h"

namespace relay {

AckTracker::TxnSeq AckTracker::begin(wal::PgTimestamp commit_time) {
  OUTBOX_ASSERT(!open_);
  open_ = true;
  txns_.push_back(Txn{next_seq_});
  txns_.back().commit_time = commit_time;
  return next_seq_++;
}

AckTracker::Txn& AckTracker::find(TxnSeq txn) {
  // Sequence numbers are dense and the deque only loses its front, so the
  // position is a subtraction.
  OUTBOX_ASSERT(!txns_.empty());
  OUTBOX_ASSERT(txn >= txns_.front().seq);
  size_t index = static_cast<size_t>(txn - txns_.front().seq);
  OUTBOX_ASSERT(index < txns_.size());
  Txn& t = txns_[index];
  OUTBOX_ASSERT(t.seq == txn);
  return t;
}

void AckTracker::add_record(TxnSeq txn) {
  Txn& t = find(txn);
  OUTBOX_ASSERT(!t.committed);
  ++t.pending;
  ++pending_records_;
}

void AckTracker::commit(TxnSeq txn, wal::Lsn end_lsn) {
  OUTBOX_ASSERT(open_);
  Txn& t = find(txn);
  OUTBOX_ASSERT(!t.committed);
  OUTBOX_ASSERT(&t == &txns_.back());
  t.committed = true;
  t.end_lsn = end_lsn;
  open_ = false;
  advance();
}

void AckTracker::ack(TxnSeq txn) {
  Txn& t = find(txn);
  OUTBOX_ASSERT(t.pending > 0);
  --t.pending;
  --pending_records_;
  advance();
}

void AckTracker::observe_wal_end(wal::Lsn wal_end) {
  if (idle() && wal_end > watermark_) watermark_ = wal_end;
}

void AckTracker::advance() {
  while (!txns_.empty() && txns_.front().committed && txns_.front().pending == 0) {
    // Feedback must be monotonic: never report below what was reported.
    if (txns_.front().end_lsn > watermark_) watermark_ = txns_.front().end_lsn;
    txns_.pop_front();
  }
}

}  // namespace relay
