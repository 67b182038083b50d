#include "pg/wal_safety.h"

#include <fmt/format.h>

namespace pg {

std::vector<std::string> wal_safety_warnings(const WalSafetySettings& settings,
                                             std::string_view slot) {
  std::vector<std::string> warnings;
  // The checkpointer invalidates a slot whose restart_lsn is further behind
  // than max_slot_wal_keep_size (InvalidateObsoleteReplicationSlots), and
  // the slot stops advancing whenever the relay stops confirming: while it
  // is down, and while Kafka is.
  if (const auto& keep = settings.max_slot_wal_keep_size; keep && *keep != "-1") {
    warnings.push_back(fmt::format(
        "slot={} max_slot_wal_keep_size={}: the server invalidates the slot (wal_status=lost) "
        "once it holds back more WAL than that, as it does while the relay or Kafka is down, "
        "and rows not yet published are then lost (postgres.on_slot_lost decides what the relay "
        "does next); set max_slot_wal_keep_size = -1, or size it for the longest outage you "
        "plan for and alert on outbox_relay_slot_safe_wal_bytes",
        slot, *keep));
  }
  // PostgreSQL 18 invalidates, at a checkpoint, a slot no connection has
  // used for idle_replication_slot_timeout: a relay stopped that long.
  if (const auto& idle = settings.idle_replication_slot_timeout; idle && *idle != "0") {
    warnings.push_back(fmt::format(
        "slot={} idle_replication_slot_timeout={}: the server invalidates the slot once no "
        "relay has streamed from it for that long (at the next checkpoint), as happens while "
        "the relay is stopped, and rows not yet published are then lost (postgres.on_slot_lost "
        "decides what the relay does next); set idle_replication_slot_timeout = 0, or longer "
        "than the longest outage you plan for",
        slot, *idle));
  }
  return warnings;
}

}  // namespace pg
