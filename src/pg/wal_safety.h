#pragma once

// Server settings under which PostgreSQL invalidates a logical slot on its
// own (wal_status = lost) while nothing is wrong with the slot: an ordinary
// outage of the relay, or of Kafka (which stops the slot's confirmed
// position), is enough. Rows not yet published are then gone from the WAL.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pg {

// As SHOW prints them (units included); nullopt where the server has no
// such setting.
struct WalSafetySettings {
  // PostgreSQL 13+; "-1" (the default) lets a slot retain any amount of WAL.
  std::optional<std::string> max_slot_wal_keep_size;
  // PostgreSQL 18+; "0" (the default) never invalidates an idle slot.
  std::optional<std::string> idle_replication_slot_timeout;
};

// One warning per setting that could invalidate `slot` during an outage,
// naming the setting, its value and what to do; empty when none could.
std::vector<std::string> wal_safety_warnings(const WalSafetySettings& settings,
                                             std::string_view slot);

}  // namespace pg
