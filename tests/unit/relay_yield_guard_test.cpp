#include "relay/yield_guard.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

using namespace std::chrono_literals;
using Clock = YieldGuard::Clock;

TEST(YieldGuard, ASlotStreamingNeverYields) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{};
  for (int i = 0; i <= 100; ++i) {
    EXPECT_EQ(guard.observe(t0 + i * 1s, {{0, true}, {1, true}}), std::nullopt);
  }
}

TEST(YieldGuard, ASlotNotStreamingForYieldAfterYieldsAndNotBefore) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.observe(t0, {{0, true}, {1, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 9999ms, {{0, true}, {1, false}}), std::nullopt);
  EXPECT_EQ(guard.stuck_for(1, t0 + 9999ms), 9999ms);
  EXPECT_EQ(guard.observe(t0 + 10s, {{0, true}, {1, false}}), std::optional<int>(1));
}

TEST(YieldGuard, StreamingAgainRestartsTheClock) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.observe(t0, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 8s, {{0, true}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 9s, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 18s, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 19s, {{0, false}}), std::optional<int>(0));
}

TEST(YieldGuard, ASlotRevokedAndAssignedAgainStartsAfresh) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.observe(t0, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 5s, {}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 6s, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 15s, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 16s, {{0, false}}), std::optional<int>(0));
}

TEST(YieldGuard, TheSlotStuckLongestIsNamed) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.observe(t0, {{0, true}, {1, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 1s, {{0, false}, {1, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 12s, {{0, false}, {1, false}}), std::optional<int>(1));
}

TEST(YieldGuard, TimeAwayDoublesWithEachYieldInARowUpToTheCap) {
  YieldGuard guard(10s, 8);
  EXPECT_EQ(guard.yielded(), 10s);
  EXPECT_EQ(guard.yielded(), 20s);
  EXPECT_EQ(guard.yielded(), 40s);
  EXPECT_EQ(guard.yielded(), 80s);
  EXPECT_EQ(guard.yielded(), 80s);
  EXPECT_EQ(guard.consecutive_yields(), 5);
}

TEST(YieldGuard, EverySlotStreamingResetsTheBackoffAndOneStuckSlotDoesNot) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.yielded(), 10s);
  EXPECT_EQ(guard.yielded(), 20s);
  guard.observe(t0, {{0, true}, {1, false}});
  EXPECT_EQ(guard.yielded(), 40s);
  guard.observe(t0 + 1s, {});
  EXPECT_EQ(guard.yielded(), 80s);
  guard.observe(t0 + 2s, {{0, true}, {1, true}});
  EXPECT_EQ(guard.consecutive_yields(), 0);
  EXPECT_EQ(guard.yielded(), 10s);
}

TEST(YieldGuard, YieldingForgetsTheClocks) {
  YieldGuard guard(10s);
  const auto t0 = Clock::time_point{} + 1h;
  EXPECT_EQ(guard.observe(t0, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.observe(t0 + 10s, {{0, false}}), std::optional<int>(0));
  guard.yielded();
  EXPECT_EQ(guard.observe(t0 + 30s, {{0, false}}), std::nullopt);
  EXPECT_EQ(guard.stuck_for(0, t0 + 30s), 0ms);
}

}  // namespace
}  // namespace relay
