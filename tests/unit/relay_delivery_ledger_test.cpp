// DeliveryLedger: the slot's delivery state machine, message by message, and
// its feedback decision. The randomized model test over whole schedules lives
// in relay_slot_core_test.cpp, where records really go through a Publisher.
#include "relay/delivery_ledger.h"

#include <gtest/gtest.h>

#include "relay/errc.h"

namespace relay {
namespace {

using std::chrono::milliseconds;
using Clock = DeliveryLedger::Clock;
using Verdict = DeliveryLedger::Verdict;

wal::Lsn L(uint64_t v) { return wal::Lsn(v); }

DeliveryLedger make(config::BadRowPolicy policy = config::BadRowPolicy::kDeadLetter) {
  return DeliveryLedger(policy, {milliseconds(1000), milliseconds(10000)});
}

// A transaction of `records` records, committed at end_lsn; returns their tokens.
std::vector<DeliveryLedger::Token> txn(DeliveryLedger& l, uint64_t end_lsn, int records) {
  std::vector<DeliveryLedger::Token> tokens;
  EXPECT_TRUE(l.begin(L(end_lsn - 8), 700, {}, L(end_lsn - 20)).ok());
  for (int i = 0; i < records; ++i) tokens.push_back(**l.add_record(L(end_lsn - 10)));
  EXPECT_TRUE(l.commit(L(end_lsn), L(end_lsn - 8)).ok());
  return tokens;
}

TEST(DeliveryLedger, StartSessionResumesFromTheSlotOnAFreshLedger) {
  auto l = make();
  EXPECT_EQ(l.start_session(L(100)), L(100));
  EXPECT_EQ(l.watermark(), L(100));
}

TEST(DeliveryLedger, StartSessionNeverResumesBeforeWhatKafkaAcknowledged) {
  auto l = make();
  l.start_session(L(100));
  auto t = txn(l, 200, 1);
  EXPECT_EQ(l.on_delivery(t[0], DeliveryStatus::kOk).verdict, Verdict::kDelivered);
  EXPECT_EQ(l.watermark(), L(200));
  // The status update carrying 200 was lost with the connection: the slot
  // still says 100.
  EXPECT_EQ(l.start_session(L(100)), L(200));
  // A slot ahead of the ledger (recreated, or advanced by an admin) wins.
  EXPECT_EQ(l.start_session(L(300)), L(300));
}

TEST(DeliveryLedger, NestingErrorsNameTheLsnAndChangeNothing) {
  auto l = make();
  l.start_session(L(0));
  auto commit = l.commit(L(50), L(40));
  ASSERT_FALSE(commit.ok());
  EXPECT_EQ(commit.error().code, make_error_code(errc::stream_out_of_order));
  EXPECT_NE(commit.error().message.find("lsn=0/28"), std::string::npos) << commit.error().message;
  auto insert = l.add_record(L(30));
  ASSERT_FALSE(insert.ok());
  EXPECT_EQ(insert.error().code, make_error_code(errc::stream_out_of_order));
  ASSERT_TRUE(l.begin(L(60), 1, {}, L(10)).ok());
  auto nested = l.begin(L(70), 2, {}, L(20));
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().code, make_error_code(errc::stream_out_of_order));
  EXPECT_EQ(l.txn().xid, 1u);
}

TEST(DeliveryLedger, WatermarkWaitsForEveryRecordOfEveryEarlierTransaction) {
  auto l = make();
  l.start_session(L(0));
  auto a = txn(l, 100, 2);
  auto b = txn(l, 200, 1);
  EXPECT_EQ(l.on_delivery(b[0], DeliveryStatus::kOk).verdict, Verdict::kDelivered);
  EXPECT_EQ(l.watermark(), L(0));
  l.on_delivery(a[1], DeliveryStatus::kOk);
  EXPECT_EQ(l.watermark(), L(0));
  l.on_delivery(a[0], DeliveryStatus::kOk);
  EXPECT_EQ(l.watermark(), L(200));
}

TEST(DeliveryLedger, AReportFromAPreviousSessionIsStaleAndAcknowledgesNothing) {
  auto l = make();
  l.start_session(L(0));
  auto old = txn(l, 100, 1);
  l.start_session(L(0));
  auto fresh = txn(l, 100, 1);
  // Same transaction, same position in the stream: only the epoch differs.
  EXPECT_NE(old[0], fresh[0]);
  EXPECT_EQ(l.on_delivery(old[0], DeliveryStatus::kOk).verdict, Verdict::kStale);
  EXPECT_EQ(l.watermark(), L(0));
  EXPECT_EQ(l.on_delivery(fresh[0], DeliveryStatus::kOk).verdict, Verdict::kDelivered);
  EXPECT_EQ(l.watermark(), L(100));
}

TEST(DeliveryLedger, APermanentFailureIsReplacedAndTheReplacementAcknowledgesTheOriginal) {
  auto l = make();
  l.start_session(L(0));
  auto t = txn(l, 100, 1);
  auto failed = l.on_delivery(t[0], DeliveryStatus::kPermanent);
  ASSERT_EQ(failed.verdict, Verdict::kDeadLetter);
  EXPECT_TRUE(DeliveryLedger::is_dead_letter(failed.replacement));
  EXPECT_EQ(l.watermark(), L(0));
  EXPECT_EQ(l.on_delivery(failed.replacement, DeliveryStatus::kOk).verdict, Verdict::kDelivered);
  EXPECT_EQ(l.watermark(), L(100));
}

TEST(DeliveryLedger, AReplacementThatFailsForGoodHalts) {
  auto l = make();
  l.start_session(L(0));
  auto t = txn(l, 100, 1);
  auto failed = l.on_delivery(t[0], DeliveryStatus::kPermanent);
  EXPECT_EQ(l.on_delivery(failed.replacement, DeliveryStatus::kPermanent).verdict, Verdict::kHalt);
  EXPECT_EQ(l.watermark(), L(0));
}

TEST(DeliveryLedger, UnderTheHaltPolicyAPermanentFailureHalts) {
  auto l = make(config::BadRowPolicy::kHalt);
  l.start_session(L(0));
  auto t = txn(l, 100, 1);
  EXPECT_EQ(l.on_delivery(t[0], DeliveryStatus::kPermanent).verdict, Verdict::kHalt);
  EXPECT_EQ(l.watermark(), L(0));
}

TEST(DeliveryLedger, RetriableAndFatalFailuresConfirmNothing) {
  auto l = make();
  l.start_session(L(0));
  auto t = txn(l, 100, 2);
  EXPECT_EQ(l.on_delivery(t[0], DeliveryStatus::kRetriable).verdict, Verdict::kRestart);
  EXPECT_EQ(l.on_delivery(t[1], DeliveryStatus::kFatal).verdict, Verdict::kFatal);
  EXPECT_EQ(l.watermark(), L(0));
}

TEST(DeliveryLedger, ADeadLetteredRowCountsForItsTransaction) {
  auto l = make();
  l.start_session(L(0));
  ASSERT_TRUE(l.begin(L(90), 1, {}, L(10)).ok());
  auto dlq = l.add_dead_letter(L(20));
  ASSERT_TRUE(dlq.ok() && dlq->has_value());
  EXPECT_TRUE(DeliveryLedger::is_dead_letter(**dlq));
  ASSERT_TRUE(l.commit(L(100), L(90)).ok());
  EXPECT_EQ(l.watermark(), L(0));
  l.on_delivery(**dlq, DeliveryStatus::kOk);
  EXPECT_EQ(l.watermark(), L(100));
}

TEST(DeliveryLedger, KeepaliveMovesTheWatermarkOnlyWhenNothingIsPending) {
  auto l = make();
  l.start_session(L(0));
  l.on_keepalive(L(50));
  EXPECT_EQ(l.watermark(), L(50));
  ASSERT_TRUE(l.begin(L(90), 1, {}, L(60)).ok());
  // Inside a transaction: the keepalive's position may be past rows not yet seen.
  l.on_keepalive(L(500));
  EXPECT_EQ(l.watermark(), L(50));
  auto tok = l.add_record(L(70));
  ASSERT_TRUE(l.commit(L(100), L(90)).ok());
  // Committed but not acknowledged: still pending.
  l.on_keepalive(L(600));
  EXPECT_EQ(l.watermark(), L(50));
  l.on_delivery(**tok, DeliveryStatus::kOk);
  l.on_keepalive(L(700));
  EXPECT_EQ(l.watermark(), L(700));
}

TEST(DeliveryLedger, FeedbackReportsAtOnceThenSkipsUnchangedUntilTheKeepaliveInterval) {
  auto l = make();
  l.start_session(L(100));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  EXPECT_EQ(l.feedback(t0, false), L(100));
  EXPECT_EQ(l.feedback(t0 + milliseconds(1500), false), std::nullopt);
  EXPECT_EQ(l.feedback(t0 + milliseconds(9999), false), std::nullopt);
  EXPECT_EQ(l.feedback(t0 + milliseconds(10000), false), L(100));
}

TEST(DeliveryLedger, FeedbackReportsAMovedPositionAfterTheStatusInterval) {
  auto l = make();
  l.start_session(L(0));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  ASSERT_EQ(l.feedback(t0, false), L(0));
  l.on_keepalive(L(40));
  EXPECT_EQ(l.feedback(t0 + milliseconds(999), false), std::nullopt);
  EXPECT_EQ(l.feedback(t0 + milliseconds(1000), false), L(40));
  EXPECT_EQ(l.last_reported(), L(40));
}

TEST(DeliveryLedger, FeedbackIsForcedWhenTheServerAsks) {
  auto l = make();
  l.start_session(L(0));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  ASSERT_EQ(l.feedback(t0, false), L(0));
  EXPECT_EQ(l.feedback(t0 + milliseconds(1), true), L(0));
}

TEST(DeliveryLedger, FeedbackNeverGoesBackwardsAcrossSessions) {
  auto l = make();
  l.start_session(L(0));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  auto t = txn(l, 300, 1);
  l.on_delivery(t[0], DeliveryStatus::kOk);
  ASSERT_EQ(l.feedback(t0, true), L(300));
  // The server kept an older copy of the slot (crash before its checkpoint).
  EXPECT_EQ(l.start_session(L(120)), L(300));
  EXPECT_EQ(l.feedback(t0 + milliseconds(1), true), L(300));
}

DeliveryLedger make_exactly_once(config::BadRowPolicy policy = config::BadRowPolicy::kDeadLetter) {
  return DeliveryLedger(policy, {milliseconds(1000), milliseconds(10000)}, /*exactly_once=*/true);
}

TEST(DeliveryLedgerExactlyOnce, AcknowledgedRecordsAreNotReadableBeforeTheirKafkaCommit) {
  auto l = make_exactly_once();
  l.start_session(L(100));
  auto t = txn(l, 200, 2);
  l.on_delivery(t[0], DeliveryStatus::kOk);
  l.on_delivery(t[1], DeliveryStatus::kOk);
  EXPECT_EQ(l.watermark(), L(100));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  EXPECT_EQ(l.feedback(t0, true), L(100));
  const Checkpoint c = l.checkpoint();
  EXPECT_EQ(c, (Checkpoint{L(200), std::nullopt}));
  l.on_committed(c);
  EXPECT_EQ(l.feedback(t0 + milliseconds(1), true), L(200));
}

TEST(DeliveryLedgerExactlyOnce, ACheckpointInsideATransactionNamesItsLastRow) {
  auto l = make_exactly_once();
  l.start_session(L(100));
  ASSERT_TRUE(l.begin(L(290), 1, {}, L(110)).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(l.add_record(L(120 + i)).ok());
  const Checkpoint c = l.checkpoint();
  EXPECT_EQ(c, (Checkpoint{L(100), 2}));
  l.on_committed(c);
  // The slot may not move into the transaction.
  EXPECT_EQ(l.watermark(), L(100));
}

TEST(DeliveryLedgerExactlyOnce, AResumeSkipsTheRowsACheckpointAlreadyHolds) {
  auto l = make_exactly_once();
  l.restore(Checkpoint{L(100), 2});
  EXPECT_EQ(l.start_session(L(50)), L(100));
  ASSERT_TRUE(l.begin(L(290), 1, {}, L(110)).ok());
  for (int i = 0; i < 3; ++i) {
    auto tok = l.add_record(L(120 + i));
    ASSERT_TRUE(tok.ok());
    EXPECT_FALSE(tok->has_value()) << "row " << i << " is already in Kafka";
  }
  auto fourth = l.add_record(L(123));
  ASSERT_TRUE(fourth.ok());
  EXPECT_TRUE(fourth->has_value());
  ASSERT_TRUE(l.commit(L(300), L(290)).ok());
  // The next transaction is whole again.
  ASSERT_TRUE(l.begin(L(390), 2, {}, L(310)).ok());
  auto next = l.add_record(L(320));
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->has_value());
}

// Rows 0..last_row of the transaction after the checkpoint, as the
// checkpoint counted them; the rows the resume produces say which were
// skipped.
std::vector<bool> produced_on_resume(DeliveryLedger& l, int rows) {
  std::vector<bool> produced;
  EXPECT_TRUE(l.begin(L(290), 1, {}, L(110)).ok());
  for (int i = 0; i < rows; ++i) {
    auto tok = l.add_record(L(120 + static_cast<uint64_t>(i)));
    EXPECT_TRUE(tok.ok());
    produced.push_back(tok.ok() && tok->has_value());
  }
  EXPECT_TRUE(l.commit(L(300), L(290)).ok());
  return produced;
}

TEST(DeliveryLedgerExactlyOnce, AResumeUnderTheSameSelectionAndTimelineSkipsByIndex) {
  auto l = make_exactly_once();
  l.set_selection(0xabc);
  l.set_timeline(2);
  l.restore(Checkpoint{L(100), 1, 7, 2, 0xabc});
  EXPECT_EQ(l.start_session(L(50)), L(100));
  EXPECT_EQ(l.partial_resume(), DeliveryLedger::PartialResume::kSkipRows);
  EXPECT_EQ(produced_on_resume(l, 3), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(l.checkpoint(), (Checkpoint{L(300), std::nullopt, std::nullopt, 2, 0xabc}));
}

// Another source, table or prefix counts other records: the index would
// skip the wrong ones, so the whole transaction is published again.
TEST(DeliveryLedgerExactlyOnce, AResumeUnderAnotherSelectionRepublishesTheWholeTransaction) {
  auto l = make_exactly_once();
  l.set_selection(0xdef);
  l.restore(Checkpoint{L(100), 1, 7, 2, 0xabc});
  EXPECT_EQ(l.start_session(L(50)), L(100));
  EXPECT_EQ(l.partial_resume(), DeliveryLedger::PartialResume::kRepublishSelectionChanged);
  EXPECT_EQ(produced_on_resume(l, 3), (std::vector<bool>{true, true, true}));
}

// On another timeline the transaction after end_lsn may be another one.
TEST(DeliveryLedgerExactlyOnce, AResumeOnAnotherTimelineRepublishesTheWholeTransaction) {
  auto l = make_exactly_once();
  l.set_selection(0xabc);
  l.set_timeline(3);
  l.restore(Checkpoint{L(100), 1, 7, 2, 0xabc});
  EXPECT_EQ(l.start_session(L(50)), L(100));
  EXPECT_EQ(l.partial_resume(), DeliveryLedger::PartialResume::kRepublishTimelineChanged);
  EXPECT_EQ(produced_on_resume(l, 3), (std::vector<bool>{true, true, true}));
}

// Checkpoints written before the timeline and the selection were recorded
// keep the index, as they always did; so does a whole one, which has none.
TEST(DeliveryLedgerExactlyOnce, ACheckpointWithoutSelectionOrTimelineStillSkipsByIndex) {
  auto l = make_exactly_once();
  l.set_selection(0xdef);
  l.set_timeline(3);
  l.restore(Checkpoint{L(100), 0, 7});
  l.start_session(L(50));
  EXPECT_EQ(l.partial_resume(), DeliveryLedger::PartialResume::kSkipRows);
  EXPECT_EQ(produced_on_resume(l, 2), (std::vector<bool>{false, true}));
  auto whole = make_exactly_once();
  whole.set_selection(0xdef);
  whole.restore(Checkpoint{L(100), std::nullopt, 7, 2, 0xabc});
  whole.start_session(L(50));
  EXPECT_EQ(whole.partial_resume(), DeliveryLedger::PartialResume::kNone);
}

TEST(DeliveryLedgerExactlyOnce, AResumeNeverStartsBeforeTheCheckpoint) {
  auto l = make_exactly_once();
  l.restore(Checkpoint{L(500), std::nullopt});
  EXPECT_EQ(l.start_session(L(100)), L(500));
  EXPECT_EQ(l.start_session(L(900)), L(900));
}

TEST(DeliveryLedgerExactlyOnce, AnIdleStreamIsConfirmedWithoutAKafkaCommit) {
  auto l = make_exactly_once();
  l.start_session(L(100));
  l.on_keepalive(L(400));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  EXPECT_EQ(l.feedback(t0, true), L(400));
  // Once records wait for their commit, nothing moves, and nothing goes back.
  auto t = txn(l, 600, 1);
  l.on_keepalive(L(700));
  EXPECT_EQ(l.feedback(t0 + milliseconds(1), true), L(400));
}

TEST(DeliveryLedgerExactlyOnce, AFailedDeliveryInsideATransactionIsReplayedAsADeadLetter) {
  auto l = make_exactly_once();
  l.start_session(L(0));
  auto t = txn(l, 100, 1);
  EXPECT_EQ(l.on_delivery(t[0], DeliveryStatus::kPermanent).verdict, Verdict::kReplayAsDeadLetter);
  // Refused by produce() it never joined the transaction: replaced in place.
  EXPECT_EQ(l.on_delivery(t[0], DeliveryStatus::kPermanent, /*at_produce=*/true).verdict,
            Verdict::kDeadLetter);
  EXPECT_EQ(l.on_delivery(DeliveryLedger::as_dead_letter(t[0]), DeliveryStatus::kPermanent).verdict,
            Verdict::kHalt);
  auto halting = make_exactly_once(config::BadRowPolicy::kHalt);
  halting.start_session(L(0));
  auto h = txn(halting, 100, 1);
  EXPECT_EQ(halting.on_delivery(h[0], DeliveryStatus::kPermanent).verdict, Verdict::kHalt);
}

TEST(DeliveryLedgerExactlyOnce, ACheckpointNamesTheSystemOfItsPositions) {
  auto l = make_exactly_once();
  l.start_session(L(100));
  EXPECT_EQ(l.checkpoint(), (Checkpoint{L(100), std::nullopt, std::nullopt}));
  l.set_system_identifier(7312345678901234567ull);
  txn(l, 200, 1);
  EXPECT_EQ(l.checkpoint(), (Checkpoint{L(200), std::nullopt, 7312345678901234567ull}));
}

// The slot's server is another system: what the ledger knows of positions
// belongs to the old one, and would otherwise hold the new one back.
TEST(DeliveryLedgerExactlyOnce, ForgottenPositionsLetTheNextSessionStartAtTheSlot) {
  auto l = make_exactly_once();
  l.restore(Checkpoint{L(5000), 3, 1});
  EXPECT_EQ(l.start_session(L(100)), L(5000));
  const auto t0 = Clock::time_point() + std::chrono::hours(1);
  ASSERT_EQ(l.feedback(t0, true), L(5000));

  l.forget_positions();
  EXPECT_EQ(l.last_checkpoint(), std::nullopt);
  l.set_system_identifier(2);
  EXPECT_EQ(l.start_session(L(100)), L(100));
  EXPECT_EQ(l.feedback(t0 + milliseconds(1), true), L(100));
  // No rows skipped: the checkpoint's last_row was about the other system.
  ASSERT_TRUE(l.begin(L(190), 1, {}, L(110)).ok());
  auto first = l.add_record(L(120));
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->has_value());
  ASSERT_TRUE(l.commit(L(200), L(190)).ok());
  EXPECT_EQ(l.checkpoint(), (Checkpoint{L(200), std::nullopt, 2}));
}

}  // namespace
}  // namespace relay
