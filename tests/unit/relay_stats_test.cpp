#include "relay/stats.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/ack_tracker.h"

namespace relay {
namespace {

TEST(SlotWalStatus, EveryValueOfPgReplicationSlotsIsKnownAndNothingElse) {
  EXPECT_EQ(slot_wal_status_from("reserved"), SlotWalStatus::kReserved);
  EXPECT_EQ(slot_wal_status_from("extended"), SlotWalStatus::kExtended);
  EXPECT_EQ(slot_wal_status_from("unreserved"), SlotWalStatus::kUnreserved);
  EXPECT_EQ(slot_wal_status_from("lost"), SlotWalStatus::kLost);
  for (const char* other : {"", "Lost", "reserved ", "keeping"}) {
    EXPECT_EQ(slot_wal_status_from(other), SlotWalStatus::kUnknown) << other;
  }
}

TEST(LatencyHistogram, BucketsAreCumulativeAndInfinityEqualsCount) {
  LatencyHistogram h;
  h.observe_micros(3000);         // 3 ms: first bucket (0.005)
  h.observe_micros(5000);         // exactly on a bound: le is inclusive
  h.observe_micros(70000);        // 70 ms: 0.1
  h.observe_micros(2000000);      // 2 s: 2.5
  h.observe_micros(400000000);    // 400 s: only +Inf
  auto s = h.snapshot();
  ASSERT_EQ(LatencyHistogram::kBoundsSeconds[0], 0.005);
  EXPECT_EQ(s.cumulative[0], 2u);
  EXPECT_EQ(s.cumulative[3], 2u);   // 0.05
  EXPECT_EQ(s.cumulative[4], 3u);   // 0.1
  EXPECT_EQ(s.cumulative[8], 4u);   // 2.5
  EXPECT_EQ(s.cumulative.back(), 4u);  // 300
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum_seconds, 0.003 + 0.005 + 0.07 + 2 + 400);
}

TEST(LatencyHistogram, CommitTimeAheadOfLocalClockCountsAsZero) {
  LatencyHistogram h;
  h.observe_micros(-250000);
  auto s = h.snapshot();
  EXPECT_EQ(s.cumulative[0], 1u);
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.sum_seconds, 0.0);
}

TEST(TopicCountersCache, SameTopicReturnsSameCountersAndOtherTopicOthers) {
  TopicStatsRegistry registry;
  TopicCountersCache cache(registry);
  TopicCounters& a = cache.get("orders");
  ++a.published;
  EXPECT_EQ(&cache.get(std::string("orders")), &a);
  TopicCounters& b = cache.get("payments");
  EXPECT_NE(&a, &b);
  // Coming back to a topic after another finds the registry's object again.
  EXPECT_EQ(&cache.get("orders"), &a);
  EXPECT_EQ(&registry.get("orders"), &a);

  std::vector<std::pair<std::string, uint64_t>> seen;
  registry.for_each([&](const std::string& topic, const TopicCounters& c) {
    seen.emplace_back(topic, c.published.load());
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, uint64_t>("orders", 1)));
  EXPECT_EQ(seen[1], (std::pair<std::string, uint64_t>("payments", 0)));
}

TEST(AckTracker, CommitTimeOfBeginIsKeptUntilTheTransactionIsAcknowledged) {
  AckTracker t(wal::Lsn(100));
  auto txn = t.begin(wal::PgTimestamp{123456});
  t.add_record(txn);
  t.commit(txn, wal::Lsn(200));
  EXPECT_EQ(t.commit_time(txn), wal::PgTimestamp{123456});
  t.ack(txn);
  EXPECT_EQ(t.watermark(), wal::Lsn(200));
}

}  // namespace
}  // namespace relay
