#pragma once

#include <cstdint>
#include <optional>

#include "config/config.h"
#include "wal/lsn.h"
#include "wal/timeline.h"

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
//
// timeline is the server's timeline (IDENTIFY_SYSTEM's) when the checkpoint
// was taken: the same system identifier can carry another history after a
// point-in-time recovery or the promotion of a lagging standby, and only
// positions up to where that history left the checkpoint's timeline are the
// same rows (wal::judge_position).
//
// selection is selection_fingerprint() of the configuration that counted
// last_row: rows and messages are counted together, in stream order, only
// as far as the outbox's source, table and prefix select them. Under another
// selection the same index names other records.
struct Checkpoint {
  wal::Lsn end_lsn;
  std::optional<uint64_t> last_row;
  std::optional<uint64_t> system_identifier;
  std::optional<wal::TimelineId> timeline;
  std::optional<uint64_t> selection;

  bool operator==(const Checkpoint&) const = default;
};

// A stable hash (FNV-1a, 64 bits) of what decides which records of a
// transaction the relay counts: outbox.source, and of the table and the
// message prefix only what that source reads. The same in every build and
// on every host, since it is written into checkpoints.
uint64_t selection_fingerprint(const config::OutboxConfig& outbox);

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
