// The start-up warnings about server settings that invalidate a slot on
// their own during an ordinary outage.
#include "pg/wal_safety.h"

#include <gtest/gtest.h>

namespace pg {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(WalSafety, TheDefaultsWarnOfNothing) {
  EXPECT_TRUE(wal_safety_warnings({"-1", "0"}, "s1").empty());
  // Servers before 13 (no max_slot_wal_keep_size) and before 18.
  EXPECT_TRUE(wal_safety_warnings({std::nullopt, std::nullopt}, "s1").empty());
  EXPECT_TRUE(wal_safety_warnings({"-1", std::nullopt}, "s1").empty());
}

TEST(WalSafety, AnyMaxSlotWalKeepSizeNamesItsValueAndTheFix) {
  for (const char* value : {"64MB", "0", "1TB"}) {
    const auto warnings = wal_safety_warnings({value, "0"}, "orders_slot");
    ASSERT_EQ(warnings.size(), 1u) << value;
    const std::string& w = warnings[0];
    EXPECT_TRUE(contains(w, "slot=orders_slot ")) << w;
    EXPECT_TRUE(contains(w, std::string("max_slot_wal_keep_size=") + value + ":")) << w;
    EXPECT_TRUE(contains(w, "wal_status=lost")) << w;
    EXPECT_TRUE(contains(w, "set max_slot_wal_keep_size = -1")) << w;
    EXPECT_TRUE(contains(w, "outbox_relay_slot_safe_wal_bytes")) << w;
  }
}

TEST(WalSafety, AnIdleReplicationSlotTimeoutNamesItsValueAndTheFix) {
  const auto warnings = wal_safety_warnings({"-1", "1d"}, "orders_slot");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(contains(warnings[0], "slot=orders_slot idle_replication_slot_timeout=1d:"))
      << warnings[0];
  EXPECT_TRUE(contains(warnings[0], "set idle_replication_slot_timeout = 0")) << warnings[0];
}

TEST(WalSafety, BothSettingsWarnEachInTurn) {
  const auto warnings = wal_safety_warnings({"10GB", "30min"}, "s1");
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_TRUE(contains(warnings[0], "max_slot_wal_keep_size=10GB")) << warnings[0];
  EXPECT_TRUE(contains(warnings[1], "idle_replication_slot_timeout=30min")) << warnings[1];
}

}  // namespace
}  // namespace pg
