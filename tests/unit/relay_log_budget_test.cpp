#include "relay/log_budget.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

using namespace std::chrono_literals;

TEST(LogBudget, LetsThroughTheBudgetPerWindowAndCountsTheRest) {
  LogBudget budget(3);
  const auto t0 = LogBudget::Clock::time_point{} + 10s;
  EXPECT_TRUE(budget.allow(t0));
  EXPECT_TRUE(budget.allow(t0 + 100ms));
  EXPECT_TRUE(budget.allow(t0 + 200ms));
  EXPECT_FALSE(budget.allow(t0 + 300ms));
  EXPECT_FALSE(budget.allow(t0 + 999ms));
  EXPECT_EQ(budget.take_suppressed(), 0u + 2u);
  EXPECT_EQ(budget.take_suppressed(), 0u);
  EXPECT_FALSE(budget.allow(t0 + 999ms));
  // A new window: the line goes through and reports what was held back.
  EXPECT_TRUE(budget.allow(t0 + 1s));
  EXPECT_EQ(budget.take_suppressed(), 1u);
}

TEST(LogBudget, ZeroBudgetHoldsBackEverythingButCountsIt) {
  LogBudget budget(0);
  const auto t0 = LogBudget::Clock::time_point{} + 10s;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(budget.allow(t0 + i * 400ms));
  EXPECT_EQ(budget.take_suppressed(), 5u);
}

}  // namespace
}  // namespace relay
