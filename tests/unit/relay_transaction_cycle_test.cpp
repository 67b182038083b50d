#include "relay/transaction_cycle.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>

namespace relay {
namespace {

using Clock = TransactionCycle::Clock;
using State = TransactionCycle::State;
using Event = TransactionCycle::Event;
using std::chrono::milliseconds;

constexpr State kStates[] = {State::kIdle, State::kOpen, State::kCommitting, State::kAborting};
constexpr Event kEvents[] = {Event::kBegin,  Event::kStartCommit, Event::kCommitted,
                             Event::kFailed, Event::kAbort,       Event::kAborted};

Checkpoint at(uint64_t end) {
  Checkpoint c;
  c.end_lsn = wal::Lsn(end);
  return c;
}

// Drives a cycle into `state` through allowed transitions only.
TransactionCycle in_state(State state, TransactionCycle::Policy policy = {}) {
  TransactionCycle cycle(policy);
  const auto now = Clock::time_point() + std::chrono::hours(1);
  if (state == State::kIdle) return cycle;
  cycle.begin(now);
  if (state == State::kCommitting) cycle.start_commit(at(0x100), now);
  if (state == State::kAborting) cycle.abort();
  return cycle;
}

void fire(TransactionCycle& cycle, Event event) {
  const auto now = Clock::time_point() + std::chrono::hours(1);
  switch (event) {
    case Event::kBegin: cycle.begin(now); return;
    case Event::kStartCommit: cycle.start_commit(at(0x200), now); return;
    case Event::kCommitted: (void)cycle.committed(now); return;
    case Event::kFailed: cycle.failed(); return;
    case Event::kAbort: cycle.abort(); return;
    case Event::kAborted: cycle.aborted(); return;
  }
}

// The whole table, as the diagram in transaction_cycle.h draws it.
const std::map<std::pair<State, Event>, State> kExpected = {
    {{State::kIdle, Event::kBegin}, State::kOpen},
    {{State::kOpen, Event::kStartCommit}, State::kCommitting},
    {{State::kOpen, Event::kAbort}, State::kAborting},
    {{State::kCommitting, Event::kCommitted}, State::kIdle},
    {{State::kCommitting, Event::kFailed}, State::kIdle},
    {{State::kAborting, Event::kAbort}, State::kAborting},
    {{State::kAborting, Event::kAborted}, State::kIdle},
};

TEST(TransactionCycle, EveryAllowedTransitionLeadsWhereTheTableSays) {
  for (State from : kStates) {
    for (Event event : kEvents) {
      const auto it = kExpected.find({from, event});
      SCOPED_TRACE(std::string(TransactionCycle::name(event)) + " from " +
                   TransactionCycle::name(from));
      EXPECT_EQ(TransactionCycle::allowed(from, event), it != kExpected.end());
      if (it == kExpected.end()) continue;
      TransactionCycle cycle = in_state(from);
      fire(cycle, event);
      EXPECT_EQ(cycle.state(), it->second);
    }
  }
}

TEST(TransactionCycleDeathTest, ATransitionTheTableDoesNotAllowAborts) {
  for (State from : kStates) {
    for (Event event : kEvents) {
      if (kExpected.count({from, event})) continue;
      SCOPED_TRACE(std::string(TransactionCycle::name(event)) + " from " +
                   TransactionCycle::name(from));
      EXPECT_DEATH(
          {
            TransactionCycle cycle = in_state(from);
            fire(cycle, event);
          },
          "Kafka transaction");
    }
  }
}

TEST(TransactionCycle, TheCommittingCheckpointIsTheOneItStartedWith) {
  TransactionCycle cycle({});
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  cycle.begin(t0);
  cycle.start_commit(at(0x300), t0);
  EXPECT_EQ(cycle.checkpoint(), at(0x300));
  const auto done = cycle.committed(t0 + milliseconds(7));
  EXPECT_EQ(done.checkpoint, at(0x300));
  EXPECT_EQ(done.took, std::chrono::microseconds(7000));
}

TEST(TransactionCycle, NothingIsDueWithoutRecordsOrOutsideAnOpenTransaction) {
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  TransactionCycle idle({});
  EXPECT_FALSE(idle.due(t0 + std::chrono::hours(1), 5, true));
  TransactionCycle open({});
  open.begin(t0);
  EXPECT_FALSE(open.due(t0 + std::chrono::hours(1), 0, true));
  TransactionCycle committing = in_state(State::kCommitting);
  EXPECT_FALSE(committing.due(t0 + std::chrono::hours(1), 5, true));
}

TEST(TransactionCycle, CaughtUpCommitsAtOnceAndOtherwiseTheBoundsDecide) {
  TransactionCycle::Policy policy;
  policy.interval = milliseconds(250);
  policy.max_records = 100;
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  TransactionCycle cycle(policy);
  cycle.begin(t0);
  EXPECT_TRUE(cycle.due(t0, 1, /*caught_up=*/true));
  EXPECT_FALSE(cycle.due(t0 + milliseconds(249), 99, false));
  EXPECT_TRUE(cycle.due(t0 + milliseconds(250), 1, false));
  EXPECT_TRUE(cycle.due(t0, 100, false));
  EXPECT_EQ(cycle.deadline(t0), t0 + milliseconds(250));
}

TEST(TransactionCycle, AMinimumGapHoldsACaughtUpCommitButNotTheBounds) {
  TransactionCycle::Policy policy;
  policy.interval = milliseconds(250);
  policy.max_records = 100;
  policy.min_gap = milliseconds(5);
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  TransactionCycle cycle(policy);
  cycle.begin(t0);
  EXPECT_TRUE(cycle.due(t0, 1, true)) << "no commit began yet";
  cycle.start_commit(at(0x100), t0);
  (void)cycle.committed(t0 + milliseconds(1));
  cycle.begin(t0 + milliseconds(1));
  EXPECT_FALSE(cycle.due(t0 + milliseconds(4), 1, true));
  EXPECT_EQ(cycle.deadline(t0 + milliseconds(4)), t0 + milliseconds(5));
  EXPECT_TRUE(cycle.due(t0 + milliseconds(5), 1, true));
  EXPECT_EQ(cycle.deadline(t0 + milliseconds(5)), t0 + milliseconds(251));
  EXPECT_TRUE(cycle.due(t0 + milliseconds(2), 100, true));
}

TEST(TransactionCycle, RowsReadWhileACommitRunsBelongToTheNextOne) {
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  TransactionCycle cycle({});
  cycle.begin(t0);
  cycle.note_record(1000);
  cycle.note_record(1000);
  cycle.note_record(2000);
  cycle.start_commit(at(0x100), t0);
  cycle.note_record(3000);  // held for the next transaction
  (void)cycle.committed(t0);
  ASSERT_EQ(cycle.visible().size(), 2u);
  EXPECT_EQ(cycle.visible()[0].pg_commit_micros, 1000);
  EXPECT_EQ(cycle.visible()[0].count, 2u);
  EXPECT_EQ(cycle.visible()[1].pg_commit_micros, 2000);
  EXPECT_EQ(cycle.visible()[1].count, 1u);
  cycle.begin(t0);
  cycle.start_commit(at(0x200), t0);
  (void)cycle.committed(t0);
  ASSERT_EQ(cycle.visible().size(), 1u);
  EXPECT_EQ(cycle.visible()[0].pg_commit_micros, 3000);
}

TEST(TransactionCycle, AFailedOrAbortedTransactionMakesNoRowVisible) {
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  TransactionCycle cycle({});
  cycle.begin(t0);
  cycle.note_record(1000);
  cycle.start_commit(at(0x100), t0);
  cycle.failed();
  cycle.begin(t0);
  cycle.note_record(2000);
  cycle.abort();
  cycle.aborted();
  cycle.begin(t0);
  cycle.start_commit(at(0x100), t0);
  (void)cycle.committed(t0);
  EXPECT_TRUE(cycle.visible().empty());
}

}  // namespace
}  // namespace relay
