#pragma once

#include <cstdint>
#include <deque>

#include "wal/lsn.h"

namespace relay {

// The watermark rule: the position we may confirm to PostgreSQL is the end LSN
// of the longest prefix (in commit order) of transactions that have been
// committed in the stream and whose every record Kafka has acknowledged.
// Transactions arrive in commit order because the walsender decodes in commit
// order when streaming is off, so a FIFO of open transactions is enough.
//
// Pure and single-threaded: delivery reports are served on the loop's thread.
class AckTracker {
 public:
  using TxnSeq = uint64_t;

  explicit AckTracker(wal::Lsn confirmed) : watermark_(confirmed) {}

  // A Begin message. Transactions never nest: the caller must commit first.
  // The commit time is kept only to be handed back by commit_time().
  TxnSeq begin(wal::PgTimestamp commit_time = {});
  // One record of the open transaction handed to Kafka.
  void add_record(TxnSeq txn);
  // The Commit message; end_lsn is where a restart resumes after this one.
  void commit(TxnSeq txn, wal::Lsn end_lsn);
  // A successful delivery report (or a dead-lettered replacement's).
  void ack(TxnSeq txn);

  // A keepalive's WAL end. PostgreSQL's apply worker confirms it when it has
  // no pending transactions; so do we, or an idle outbox in a busy database
  // pins WAL forever (since PG15 unrelated transactions send no Begin/Commit).
  void observe_wal_end(wal::Lsn wal_end);

  // The Begin's commit time of a transaction not yet fully acknowledged.
  wal::PgTimestamp commit_time(TxnSeq txn) { return find(txn).commit_time; }

  wal::Lsn watermark() const { return watermark_; }
  bool in_transaction() const { return open_; }
  bool idle() const { return !open_ && txns_.empty(); }
  uint64_t pending_records() const { return pending_records_; }
  size_t tracked_transactions() const { return txns_.size(); }

 private:
  struct Txn {
    TxnSeq seq;
    uint64_t pending = 0;
    bool committed = false;
    wal::Lsn end_lsn;
    wal::PgTimestamp commit_time;
  };

  Txn& find(TxnSeq txn);
  void advance();

  std::deque<Txn> txns_;
  TxnSeq next_seq_ = 1;
  bool open_ = false;
  uint64_t pending_records_ = 0;
  wal::Lsn watermark_;
};

}  // namespace relay
