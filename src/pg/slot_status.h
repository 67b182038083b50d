#pragma once

// What `outbox-relay status` reads of a slot from the server, over an
// ordinary connection (never a replication one), within a time bound.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "wal/lsn.h"

namespace pg {

// The slot's row of pg_replication_slots, and of pg_stat_replication for the
// walsender that holds it.
struct SlotRow {
  std::string plugin;
  std::string slot_type;
  std::optional<int> active_pid;
  std::optional<wal::Lsn> confirmed_flush;
  std::optional<wal::Lsn> restart_lsn;
  std::optional<std::string> wal_status;
  std::optional<int64_t> safe_wal_size;  // NULL: max_slot_wal_keep_size = -1, or lost
  // The walsender's application_name ("outbox-relay/<id>" in group mode)
  // and client address; nullopt when no walsender holds the slot.
  std::optional<std::string> application_name;
  std::optional<std::string> client_addr;
};

struct ServerPosition {
  bool in_recovery = false;
  // pg_current_wal_lsn(); on a standby the WAL received (or replayed) so far.
  wal::Lsn wal_end;
  int server_version = 0;
};

// The oldest transaction with outbox rows that the slot has not confirmed.
struct PendingCommit {
  wal::Lsn commit_lsn;
  int64_t commit_unix_micros = 0;
  int64_t server_now_unix_micros = 0;  // the server's clock when read
};

class SlotInspector {
 public:
  // Every connection attempt and statement is bounded by `timeout`.
  SlotInspector(std::string dsn, std::chrono::milliseconds timeout);
  ~SlotInspector();
  SlotInspector(const SlotInspector&) = delete;
  SlotInspector& operator=(const SlotInspector&) = delete;

  // replication_errc::connect_failed (the DSN's secrets redacted) or
  // query_failed.
  common::Result<ServerPosition> position();
  // nullopt when no slot of that name exists.
  common::Result<std::optional<SlotRow>> slot(const std::string& slot);
  // Decodes a temporary copy of the slot (pg_copy_logical_replication_slot,
  // so that the slot itself is neither taken from its walsender nor moved)
  // with its own publication, up to the first transaction that has outbox
  // rows after its confirmed_flush_lsn; nullopt when there is none before
  // the server's WAL end. Reads the WAL the slot retains: bounded by the
  // statement timeout. Needs the REPLICATION attribute and a free
  // max_replication_slots entry.
  common::Result<std::optional<PendingCommit>> oldest_pending_commit(
      const std::string& slot, const std::string& publication);

 private:
  struct Conn;
  common::Result<void> ensure_connected();
  std::string dsn_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<Conn> conn_;
};

}  // namespace pg
