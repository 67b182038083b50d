#pragma once

#include <cstdint>
#include <optional>

#include "wal/lsn.h"

namespace relay {

// How far a slot's rows are in committed Kafka transactions (exactly-once):
// every row of every PostgreSQL transaction up to the Commit ending at
// end_lsn, plus, when a PostgreSQL transaction too large for one Kafka
// transaction spans several, rows 0..last_row (in stream order) of the one
// after it. The slot may be confirmed to end_lsn; a resume, which PostgreSQL
// restarts at that next transaction's Begin, skips exactly its rows up to
// last_row.
//
// system_identifier is the server's (IDENTIFY_SYSTEM's systemid) whose WAL
// the positions are in: a slot of the same name on another system (a fresh
// initdb, a cluster restored from a dump) shares nothing with them. Unknown
// in checkpoints written before it was recorded.
struct Checkpoint {
  wal::Lsn end_lsn;
  std::optional<uint64_t> last_row;
  std::optional<uint64_t> system_identifier;

  bool operator==(const Checkpoint&) const = default;
};

// At least once, where the position confirmed to PostgreSQL is written
// after confirming, so that a later start knows the slot existed and where
// it stood (a missing slot is then a lost one, never a first start). Never
// blocks the replication loop: offer() hands the checkpoint over and returns;
// a failed write is retried with the next offer.
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  virtual void offer(const Checkpoint& checkpoint) = 0;
  // Serves results of writes in flight; called on every turn of the loop.
  virtual void serve() {}
  // The LSN of the last checkpoint Kafka accepted, 0 before the first.
  virtual uint64_t written_lsn() const = 0;
};

}  // namespace relay
