#include "relay/ack_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace relay {
namespace {

using wal::Lsn;

TEST(AckTracker, EmptyTransactionIsDoneAtCommit) {
  AckTracker t(Lsn(100));
  auto txn = t.begin();
  EXPECT_EQ(t.watermark(), Lsn(100));
  t.commit(txn, Lsn(200));
  EXPECT_EQ(t.watermark(), Lsn(200));
  EXPECT_TRUE(t.idle());
}

TEST(AckTracker, CommittedTransactionWithPendingRecordHoldsWatermark) {
  AckTracker t(Lsn(100));
  auto txn = t.begin();
  t.add_record(txn);
  t.commit(txn, Lsn(200));
  EXPECT_EQ(t.watermark(), Lsn(100));
  t.ack(txn);
  EXPECT_EQ(t.watermark(), Lsn(200));
}

TEST(AckTracker, AllRecordsAckedBeforeCommitStillWaitsForCommit) {
  AckTracker t(Lsn(100));
  auto txn = t.begin();
  t.add_record(txn);
  t.ack(txn);
  EXPECT_EQ(t.watermark(), Lsn(100));
  EXPECT_TRUE(t.in_transaction());
  t.commit(txn, Lsn(300));
  EXPECT_EQ(t.watermark(), Lsn(300));
}

TEST(AckTracker, LaterTransactionAckedFirstDoesNotPassEarlierOne) {
  AckTracker t(Lsn(10));
  auto a = t.begin();
  t.add_record(a);
  t.commit(a, Lsn(20));
  auto b = t.begin();
  t.add_record(b);
  t.commit(b, Lsn(30));
  t.ack(b);
  EXPECT_EQ(t.watermark(), Lsn(10));
  t.ack(a);
  EXPECT_EQ(t.watermark(), Lsn(30));
}

TEST(AckTracker, KeepaliveAdvancesOnlyWhenIdle) {
  AckTracker t(Lsn(10));
  t.observe_wal_end(Lsn(50));
  EXPECT_EQ(t.watermark(), Lsn(50));

  auto a = t.begin();
  t.observe_wal_end(Lsn(80));  // inside a transaction
  EXPECT_EQ(t.watermark(), Lsn(50));
  t.add_record(a);
  t.commit(a, Lsn(90));
  t.observe_wal_end(Lsn(120));  // committed but unacknowledged
  EXPECT_EQ(t.watermark(), Lsn(50));
  t.ack(a);
  EXPECT_EQ(t.watermark(), Lsn(90));
  t.observe_wal_end(Lsn(120));
  EXPECT_EQ(t.watermark(), Lsn(120));
}

TEST(AckTracker, WatermarkNeverMovesBackwards) {
  AckTracker t(Lsn(500));
  t.observe_wal_end(Lsn(100));
  EXPECT_EQ(t.watermark(), Lsn(500));
  auto a = t.begin();
  t.commit(a, Lsn(400));  // resumed stream replays below the confirmed point
  EXPECT_EQ(t.watermark(), Lsn(500));
}

// Reference model: the watermark is the end of the longest prefix of
// transactions whose every record has been acknowledged.
struct Scenario {
  std::vector<int> records_per_txn;
};

Lsn expected_watermark(const std::vector<int>& records, const std::vector<int>& acked, Lsn start) {
  Lsn w = start;
  for (size_t i = 0; i < records.size(); ++i) {
    if (acked[i] != records[i]) break;
    w = Lsn(1000 * (i + 1));
  }
  return w;
}

void run_order(const std::vector<int>& records, const std::vector<size_t>& ack_order) {
  AckTracker t(Lsn(1));
  std::vector<AckTracker::TxnSeq> seqs;
  for (size_t i = 0; i < records.size(); ++i) {
    auto s = t.begin();
    for (int r = 0; r < records[i]; ++r) t.add_record(s);
    t.commit(s, Lsn(1000 * (i + 1)));
    seqs.push_back(s);
  }
  std::vector<int> acked(records.size(), 0);
  // Empty transactions are done at commit.
  ASSERT_EQ(t.watermark(), expected_watermark(records, acked, Lsn(1)));
  Lsn last = t.watermark();
  for (size_t txn_index : ack_order) {
    t.ack(seqs[txn_index]);
    ++acked[txn_index];
    Lsn want = expected_watermark(records, acked, Lsn(1));
    ASSERT_EQ(t.watermark(), want);
    ASSERT_GE(t.watermark(), last);
    last = t.watermark();
  }
  EXPECT_TRUE(t.idle());
  EXPECT_EQ(t.pending_records(), 0u);
}

TEST(AckTracker, EveryAckPermutationOfSmallTransactionSetsMatchesModel) {
  const std::vector<std::vector<int>> shapes = {
      {1, 1, 1, 1}, {2, 0, 1, 2}, {0, 3, 0, 2}, {1, 2, 3}, {4, 0, 0, 1}};
  size_t permutations = 0;
  for (const auto& records : shapes) {
    std::vector<size_t> order;
    for (size_t i = 0; i < records.size(); ++i)
      for (int r = 0; r < records[i]; ++r) order.push_back(i);
    std::sort(order.begin(), order.end());
    do {
      run_order(records, order);
      ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
  }
  EXPECT_GT(permutations, 100u);
}

TEST(AckTracker, RandomInterleavingOfCommitsAndAcksMatchesModel) {
  std::mt19937_64 rng(20261122);
  for (int round = 0; round < 2000; ++round) {
    size_t n = 1 + rng() % 12;
    std::vector<int> records(n);
    for (auto& r : records) r = static_cast<int>(rng() % 4);

    AckTracker t(Lsn(1));
    std::vector<AckTracker::TxnSeq> seqs;
    std::vector<int> acked(n, 0);
    std::vector<size_t> outstanding;  // txn index per unacked record
    size_t next_txn = 0;
    Lsn last = t.watermark();
    while (next_txn < n || !outstanding.empty()) {
      bool do_commit = next_txn < n && (outstanding.empty() || rng() % 2 == 0);
      if (do_commit) {
        auto s = t.begin();
        for (int r = 0; r < records[next_txn]; ++r) {
          t.add_record(s);
          outstanding.push_back(next_txn);
        }
        // Some acks land before the commit is seen.
        if (!outstanding.empty() && outstanding.back() == next_txn && rng() % 3 == 0) {
          t.ack(s);
          ++acked[next_txn];
          outstanding.pop_back();
        }
        t.commit(s, Lsn(1000 * (next_txn + 1)));
        seqs.push_back(s);
        ++next_txn;
      } else {
        size_t pick = rng() % outstanding.size();
        size_t txn = outstanding[pick];
        outstanding.erase(outstanding.begin() + static_cast<long>(pick));
        t.ack(seqs[txn]);
        ++acked[txn];
      }
      std::vector<int> committed_records(records.begin(), records.begin() + static_cast<long>(next_txn));
      std::vector<int> committed_acked(acked.begin(), acked.begin() + static_cast<long>(next_txn));
      ASSERT_EQ(t.watermark(), expected_watermark(committed_records, committed_acked, Lsn(1)));
      ASSERT_GE(t.watermark(), last);
      last = t.watermark();
    }
    EXPECT_EQ(t.watermark(), Lsn(1000 * n));
  }
}

TEST(AckTrackerDeathTest, AckWithoutPendingRecordAborts) {
  AckTracker t(Lsn(1));
  auto s = t.begin();
  EXPECT_DEATH(t.ack(s), "invariant violated");
}

}  // namespace
}  // namespace relay
