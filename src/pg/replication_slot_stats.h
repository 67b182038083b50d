#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

namespace pg {

struct SlotUsage {
  bool active = false;
  // pg_current_wal_lsn() - restart_lsn: the WAL the server keeps for the
  // slot. nullopt when the slot has no restart_lsn (invalidated).
  std::optional<int64_t> retained_wal_bytes;
  // wal_status and safe_wal_size, PostgreSQL 13+ (nullopt before). NULL
  // safe_wal_size: max_slot_wal_keep_size = -1, or the slot is lost.
  std::optional<std::string> wal_status;
  std::optional<int64_t> safe_wal_size;
};

// Whether a promotion would keep the slot (PostgreSQL 17+ failover slots).
// The primary cannot see a standby's copy; what it can see is whether the
// slot is a failover slot and which standbys named in
// synchronized_standby_slots are connected through their physical slot and
// have flushed WAL up to the slot's confirmed_flush_lsn. Logical decoding
// never runs ahead of those standbys, and their slot-sync worker copies the
// slot; without such a standby a promotion loses the slot or its progress.
struct SlotFailover {
  bool failover = false;
  int ready_standbys = 0;
};

// Reads a slot's row of pg_replication_slots over an ordinary (not a
// replication) connection, so that watching the slot never competes with the
// stream for the walsender. Connects on first use and again after a failure.
class SlotStatsReader {
 public:
  explicit SlotStatsReader(std::string dsn);
  ~SlotStatsReader();
  SlotStatsReader(const SlotStatsReader&) = delete;
  SlotStatsReader& operator=(const SlotStatsReader&) = delete;

  // nullopt when no such slot exists (yet).
  common::Result<std::optional<SlotUsage>> read(const std::string& slot);
  // nullopt when no such slot exists; before PostgreSQL 17, never a
  // failover slot and no ready standby.
  common::Result<std::optional<SlotFailover>> read_failover(const std::string& slot);

 private:
  struct Conn;
  common::Result<void> ensure_connected();
  std::string dsn_;
  std::unique_ptr<Conn> conn_;
};

// libpq's version as PQlibVersion() reports it, e.g. "150013".
std::string libpq_version();

}  // namespace pg
