// ResumePolicy: every way the server's word and the relay's memory of a slot
// can disagree, without a server. Each rule has a case on each side of its
// comparison, in both deliveries and under both on_slot_lost policies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/delivery_ledger.h"
#include "relay/resume_policy.h"

namespace relay {
namespace {

using Level = ResumeNote::Level;

constexpr uint64_t kSystem = 7000;
constexpr uint64_t kOtherSystem = 8000;

wal::Lsn L(uint64_t v) { return wal::Lsn(v); }

const wal::Lsn kCheckpointEnd = L(0x3000000);  // 0/3000000
const wal::Lsn kSlotConfirmed = L(0x4000000);  // 0/4000000
const wal::Lsn kWalEnd = L(0x5000000);         // 0/5000000

struct Policy {
  bool exactly_once = true;
  bool recreate = false;
  bool create_slot = true;

  ResumePolicy make() const {
    ResumeSettings s;
    s.slot = "orders_slot";
    s.checkpoint_group = "outbox-relay-orders";
    s.on_slot_lost = recreate ? config::SlotLostPolicy::kRecreate : config::SlotLostPolicy::kFail;
    s.exactly_once = exactly_once;
    s.create_slot = create_slot;
    return ResumePolicy(s);
  }
};

constexpr Policy kExactlyOnce{true, false};
constexpr Policy kExactlyOnceRecreate{true, true};
constexpr Policy kAtLeastOnce{false, false};
constexpr Policy kAtLeastOnceRecreate{false, true};

// PostgreSQL 15 on timeline 1, the slot there and ahead of the checkpoint.
ServerFacts server(SlotPresence presence = SlotPresence::kExists) {
  ServerFacts f;
  f.system_identifier = kSystem;
  f.timeline = 1;
  f.wal_end = kWalEnd;
  f.server_version = 150004;
  f.slot.presence = presence;
  if (presence != SlotPresence::kMissing) f.slot.confirmed_flush = kSlotConfirmed;
  return f;
}

// The same server after a promotion to timeline 2, its history leaving
// timeline 1 at `switchpoint`.
ServerFacts promoted(wal::Lsn switchpoint, SlotPresence presence = SlotPresence::kExists) {
  ServerFacts f = server(presence);
  f.timeline = 2;
  f.history = {{1, switchpoint}};
  return f;
}

Checkpoint checkpoint(wal::TimelineId timeline = 1, wal::Lsn end = kCheckpointEnd) {
  return Checkpoint{end, std::nullopt, kSystem, timeline, std::nullopt};
}

SlotRecall remembered(Checkpoint c = checkpoint()) { return SlotRecall{c, std::nullopt}; }

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "message: " << text << "\nexpected: " << part;
}

// The decision's only note, at `level`.
std::string only_note(const ResumeDecision& d, Level level) {
  EXPECT_EQ(d.notes.size(), 1u);
  if (d.notes.empty()) return "";
  EXPECT_EQ(d.notes[0].level, level) << d.notes[0].text;
  return d.notes[0].text;
}

void expect_refused(const ResumeDecision& d) {
  EXPECT_EQ(d.verdict, ResumeVerdict::kRefuse);
  EXPECT_EQ(d.slot, SlotStep::kNone) << "a refusal creates nothing";
  ASSERT_EQ(d.notes.size(), 1u);
  EXPECT_EQ(d.notes[0].level, Level::kRefusal);
  EXPECT_EQ(d.refusal(), d.notes[0].text);
}

// ---- first start and an ordinary resume ------------------------------------

TEST(ResumePolicy, FirstStartCreatesTheSlotSilently) {
  for (const Policy& p : {kExactlyOnce, kAtLeastOnce, kExactlyOnceRecreate}) {
    const ResumeDecision d = p.make().decide({}, server(SlotPresence::kMissing));
    EXPECT_EQ(d.verdict, ResumeVerdict::kProceed);
    EXPECT_EQ(d.slot, SlotStep::kCreate);
    EXPECT_TRUE(d.notes.empty());
    EXPECT_EQ(d.refusal(), "");
  }
}

TEST(ResumePolicy, FirstStartWithCreateSlotOffIsRefused) {
  Policy p;
  p.create_slot = false;
  const ResumeDecision d = p.make().decide({}, server(SlotPresence::kMissing));
  expect_refused(d);
  EXPECT_EQ(d.refusal(), "replication slot \"orders_slot\" does not exist and create_slot is false");
}

TEST(ResumePolicy, ExistingSlotWithACheckpointOfThisHistoryResumesSilently) {
  for (const Policy& p : {kExactlyOnce, kAtLeastOnce}) {
    const ResumeDecision d = p.make().decide(remembered(), server());
    EXPECT_EQ(d.verdict, ResumeVerdict::kProceed);
    EXPECT_EQ(d.slot, SlotStep::kUse);
    EXPECT_TRUE(d.notes.empty());
  }
}

// ---- rule 3: a slot invalidated ---------------------------------------------

TEST(ResumePolicy, LostSlotIsRefusedNamingItsConfirmedPosition) {
  for (const Policy& p : {kExactlyOnce, kAtLeastOnce}) {
    for (const SlotRecall& recall : {SlotRecall{}, remembered()}) {
      const ResumeDecision d = p.make().decide(recall, server(SlotPresence::kLost));
      expect_refused(d);
      expect_contains(d.refusal(),
                      "replication slot \"orders_slot\" has been invalidated (wal_status = lost)");
      expect_contains(d.refusal(), "rows committed after its confirmed_flush_lsn 0/4000000");
      expect_contains(d.refusal(), "set postgres.on_slot_lost: recreate");
    }
  }
}

TEST(ResumePolicy, LostSlotWithoutAConfirmedPositionSaysSo) {
  ServerFacts f = server(SlotPresence::kLost);
  f.slot.confirmed_flush.reset();
  expect_contains(kExactlyOnce.make().decide({}, f).refusal(), "confirmed_flush_lsn (none)");
}

TEST(ResumePolicy, LostSlotUnderRecreateIsDroppedAndCreatedAgainNamingTheGap) {
  for (const Policy& p : {kExactlyOnceRecreate, kAtLeastOnceRecreate}) {
    const ResumeDecision d = p.make().decide(remembered(), server(SlotPresence::kLost));
    EXPECT_EQ(d.verdict, ResumeVerdict::kWarn);
    EXPECT_EQ(d.slot, SlotStep::kRecreate);
    const std::string gap = only_note(d, Level::kGap);
    expect_contains(gap, "slot=orders_slot lost_confirmed_lsn=0/4000000");
    expect_contains(gap, "were NOT published");
  }
}

// ---- rule 4: a slot missing that the relay remembers ------------------------

TEST(ResumePolicy, SlotMissingWithACheckpointIsALostSlotNotAFirstStart) {
  for (const Policy& p : {kExactlyOnce, kAtLeastOnce}) {
    const ResumeDecision d = p.make().decide(remembered(), server(SlotPresence::kMissing));
    expect_refused(d);
    expect_contains(d.refusal(),
                    "slot=orders_slot does not exist, but Kafka holds its checkpoint at "
                    "lsn=0/3000000 (group outbox-relay-orders)");
    expect_contains(d.refusal(), "the gap runs from lsn=0/3000000 to at least lsn=0/5000000");
    expect_contains(d.refusal(), "this server is on timeline 1");
    expect_contains(d.refusal(), "PostgreSQL 15 has no failover slots");
    expect_contains(d.refusal(), "postgres.on_slot_lost: recreate");
  }
}

TEST(ResumePolicy, SlotMissingOnPostgres17NamesFailoverSlots) {
  ServerFacts f = server(SlotPresence::kMissing);
  f.server_version = 170000;
  expect_contains(kExactlyOnce.make().decide(remembered(), f).refusal(),
                  "a promoted standby has it only if it synchronized it");
}

TEST(ResumePolicy, SlotMissingWithACheckpointUnderRecreateIsCreatedNamingTheGap) {
  const ResumeDecision d =
      kExactlyOnceRecreate.make().decide(remembered(), server(SlotPresence::kMissing));
  EXPECT_EQ(d.verdict, ResumeVerdict::kWarn);
  EXPECT_EQ(d.slot, SlotStep::kCreate);
  const std::string gap = only_note(d, Level::kGap);
  expect_contains(gap, "does not exist, but Kafka holds its checkpoint at lsn=0/3000000");
  expect_contains(gap, "rows committed between the two positions were NOT published");
}

// At least once the checkpoint trails what this process delivered since it
// read it: a slot lost while running names the further of the two.
TEST(ResumePolicy, SlotMissingAfterThisProcessStreamedItNamesWhatItDelivered) {
  const ResumePolicy policy = kAtLeastOnce.make();
  const ServerFacts f = server(SlotPresence::kMissing);
  const ResumeDecision without_checkpoint = policy.decide(SlotRecall{std::nullopt, L(0x3800000)}, f);
  expect_refused(without_checkpoint);
  expect_contains(without_checkpoint.refusal(),
                  "does not exist, but this process streamed it and had delivered everything up "
                  "to lsn=0/3800000");
  expect_contains(without_checkpoint.refusal(), "the gap runs from lsn=0/3800000");

  const ResumeDecision delivered_further =
      policy.decide(SlotRecall{checkpoint(), L(0x3800000)}, f);
  expect_contains(delivered_further.refusal(), "had delivered everything up to lsn=0/3800000");

  const ResumeDecision checkpoint_further =
      policy.decide(SlotRecall{checkpoint(), L(0x2800000)}, f);
  expect_contains(checkpoint_further.refusal(), "Kafka holds its checkpoint at lsn=0/3000000");
  const ResumeDecision level = policy.decide(SlotRecall{checkpoint(), kCheckpointEnd}, f);
  expect_contains(level.refusal(), "Kafka holds its checkpoint at lsn=0/3000000");
}

// ---- rule 1: a checkpoint of another system -------------------------------

TEST(ResumePolicy, CheckpointOfAnotherSystemIsRefusedInBothDeliveriesWhateverTheSlot) {
  ServerFacts f = server();
  f.system_identifier = kOtherSystem;
  for (const Policy& p : {kExactlyOnce, kAtLeastOnce}) {
    for (SlotPresence presence :
         {SlotPresence::kExists, SlotPresence::kMissing, SlotPresence::kLost}) {
      f.slot.presence = presence;
      const ResumeDecision d = p.make().decide(remembered(), f);
      expect_refused(d);
      expect_contains(d.refusal(),
                      "slot=orders_slot: the server is PostgreSQL system identifier 8000, but "
                      "Kafka holds the slot's checkpoint at lsn=0/3000000 (group "
                      "outbox-relay-orders) from system identifier 7000");
      expect_contains(d.refusal(), "rows committed on system 7000 after lsn=0/3000000");
      expect_contains(d.refusal(), "point the relay back at system identifier 7000");
      expect_contains(d.refusal(), "postgres.on_slot_lost: recreate");
    }
  }
}

TEST(ResumePolicy, CheckpointOfAnotherSystemUnderRecreateForgetsThePositions) {
  ServerFacts f = server();
  f.system_identifier = kOtherSystem;
  for (const Policy& p : {kExactlyOnceRecreate, kAtLeastOnceRecreate}) {
    const ResumeDecision d = p.make().decide(SlotRecall{checkpoint(), L(0x3800000)}, f);
    EXPECT_EQ(d.verdict, ResumeVerdict::kForgetPositions);
    EXPECT_EQ(d.slot, SlotStep::kUse);
    expect_contains(only_note(d, Level::kGap),
                    "(on_slot_lost: recreate: streaming system identifier 8000 from the slot's "
                    "own position; the rows after the checkpoint were NOT published)");
  }
  // Forgotten, the old system's positions are no memory of this one's slot:
  // a missing slot is created as on a first start, with no second gap.
  f.slot.presence = SlotPresence::kMissing;
  const ResumeDecision d =
      kExactlyOnceRecreate.make().decide(SlotRecall{checkpoint(), L(0x3800000)}, f);
  EXPECT_EQ(d.verdict, ResumeVerdict::kForgetPositions);
  EXPECT_EQ(d.slot, SlotStep::kCreate);
  EXPECT_EQ(d.notes.size(), 1u);
}

TEST(ResumePolicy, CheckpointOfAnotherSystemUnderRecreateStillJudgesTheSlot) {
  ServerFacts f = server(SlotPresence::kLost);
  f.system_identifier = kOtherSystem;
  const ResumeDecision d = kExactlyOnceRecreate.make().decide(remembered(), f);
  EXPECT_EQ(d.verdict, ResumeVerdict::kForgetPositions);
  EXPECT_EQ(d.slot, SlotStep::kRecreate);
  ASSERT_EQ(d.notes.size(), 2u);
  EXPECT_EQ(d.notes[1].level, Level::kGap);
  expect_contains(d.notes[1].text, "lost_confirmed_lsn=0/4000000");
}

TEST(ResumePolicy, CheckpointWithoutASystemIdentifierIsNotJudgedByIt) {
  ServerFacts f = server();
  f.system_identifier = kOtherSystem;
  Checkpoint c = checkpoint();
  c.system_identifier.reset();
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(c), f);
  EXPECT_EQ(d.verdict, ResumeVerdict::kProceed);
  EXPECT_EQ(d.slot, SlotStep::kUse);
}

// ---- rule 2: another history of the same system ---------------------------

TEST(ResumePolicy, HistoryIsNeededOnlyForACheckpointOfAnotherTimelinePastTheFirst) {
  EXPECT_TRUE(ResumePolicy::needs_history(checkpoint(1), 2));
  EXPECT_FALSE(ResumePolicy::needs_history(checkpoint(2), 2));
  EXPECT_FALSE(ResumePolicy::needs_history(checkpoint(2), 1)) << "timeline 1 has no history";
  EXPECT_FALSE(ResumePolicy::needs_history(std::nullopt, 2));
  EXPECT_FALSE(ResumePolicy::needs_history(checkpoint(1), std::nullopt));
  Checkpoint unrecorded = checkpoint();
  unrecorded.timeline.reset();
  EXPECT_FALSE(ResumePolicy::needs_history(unrecorded, 2));
}

TEST(ResumePolicy, TimelineNotInTheServersHistoryIsRefusedExactlyOnce) {
  ServerFacts f = promoted(L(0x2000000));
  f.timeline = 3;
  f.history = {{1, L(0x2000000)}};  // a sibling promoted from timeline 1: 2 is not an ancestor
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(checkpoint(2)), f);
  expect_refused(d);
  expect_contains(d.refusal(),
                  "slot=orders_slot: Kafka holds the slot's checkpoint at lsn=0/3000000 (group "
                  "outbox-relay-orders) taken on timeline 2, and this server (system identifier "
                  "7000) is on timeline 3 with its WAL ending at lsn=0/5000000");
  expect_contains(d.refusal(), "timeline 2 is not in this server's history");
  expect_contains(d.refusal(), "pg_wal/00000003.history");
  expect_contains(d.refusal(), "set postgres.on_slot_lost: recreate");
}

TEST(ResumePolicy, CheckpointOnALaterTimelineThanTheServersIsNotInItsHistory) {
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(checkpoint(2)), server());
  expect_refused(d);
  expect_contains(d.refusal(), "timeline 2 is not in this server's history");
}

TEST(ResumePolicy, HistoryThatLeftTheTimelineBeforeTheCheckpointIsRefusedExactlyOnce) {
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(), promoted(L(0x2000000)));
  expect_refused(d);
  expect_contains(d.refusal(), "its history left timeline 1 at lsn=0/2000000 (the switch point)");
  expect_contains(d.refusal(),
                  "rows this server committed between lsn=0/2000000 and lsn=0/3000000 would be "
                  "skipped");
}

TEST(ResumePolicy, CheckpointBeyondTheServersWalEndIsRefusedExactlyOnce) {
  ServerFacts f = server();
  f.wal_end = L(0x2FFFFFF);
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(), f);
  expect_refused(d);
  expect_contains(d.refusal(), "the checkpoint is beyond the server's WAL end");
  expect_contains(d.refusal(), "compare the outbox with Kafka from before lsn=0/2FFFFFF");
  // At the WAL end itself: written by this server.
  f.wal_end = kCheckpointEnd;
  EXPECT_EQ(kExactlyOnce.make().decide(remembered(), f).verdict, ResumeVerdict::kProceed);
}

TEST(ResumePolicy, AnotherHistoryUnderRecreateForgetsTheCheckpointExactlyOnce) {
  const ResumeDecision d =
      kExactlyOnceRecreate.make().decide(remembered(), promoted(L(0x2000000)));
  EXPECT_EQ(d.verdict, ResumeVerdict::kForgetPositions);
  EXPECT_EQ(d.slot, SlotStep::kUse);
  const std::string gap = only_note(d, Level::kGap);
  expect_contains(gap, "its history left timeline 1 at lsn=0/2000000");
  expect_contains(gap,
                  "(on_slot_lost: recreate: forgetting the checkpoint and streaming timeline 2 "
                  "from the slot's own position;");
}

TEST(ResumePolicy, AnotherHistoryUnderRecreateWithTheSlotMissingCreatesItWithoutAnotherGap) {
  const ResumeDecision d = kExactlyOnceRecreate.make().decide(
      remembered(), promoted(L(0x2000000), SlotPresence::kMissing));
  EXPECT_EQ(d.verdict, ResumeVerdict::kForgetPositions);
  EXPECT_EQ(d.slot, SlotStep::kCreate);
  EXPECT_EQ(d.notes.size(), 1u);
}

// An ordinary failover: timeline 1 ends at or after the checkpoint, so every
// position it names is in the server's history.
TEST(ResumePolicy, AncestorTimelineLeftAtOrAfterTheCheckpointResumes) {
  for (const wal::Lsn switchpoint : {kCheckpointEnd, L(0x3000001), kWalEnd}) {
    for (const Policy& p : {kExactlyOnce, kAtLeastOnce}) {
      const ResumeDecision d = p.make().decide(remembered(), promoted(switchpoint));
      EXPECT_EQ(d.verdict, ResumeVerdict::kProceed);
      EXPECT_EQ(d.slot, SlotStep::kUse);
      const std::string info = only_note(d, Level::kInfo);
      expect_contains(info,
                      "slot=orders_slot the checkpoint at lsn=0/3000000 was taken on timeline 1; "
                      "this server is on timeline 2, whose history left timeline 1 at lsn=" +
                          switchpoint.to_string() + ", after the checkpoint");
    }
  }
  // One byte before the checkpoint is another history.
  EXPECT_EQ(kExactlyOnce.make().decide(remembered(), promoted(L(0x2FFFFFF))).verdict,
            ResumeVerdict::kRefuse);
}

// Proceeding on a new timeline, the transaction a checkpoint was partly in
// is not skipped by index but published whole again: the ledger's part of
// the same resume.
TEST(ResumePolicy, AncestorTimelineResumeInsideATransactionRepublishesItWhole) {
  Checkpoint c = checkpoint();
  c.last_row = 4;
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(c), promoted(kWalEnd));
  ASSERT_EQ(d.verdict, ResumeVerdict::kProceed);
  DeliveryLedger ledger(config::BadRowPolicy::kHalt,
                        {std::chrono::milliseconds(1000), std::chrono::milliseconds(10000)},
                        /*exactly_once=*/true);
  ledger.set_timeline(2);
  ledger.restore(c);
  EXPECT_EQ(ledger.start_session(L(0x2000000)), kCheckpointEnd);
  EXPECT_EQ(ledger.partial_resume(), DeliveryLedger::PartialResume::kRepublishTimelineChanged);
}

TEST(ResumePolicy, CheckpointWithoutATimelineIsJudgedByTheWalEndAlone) {
  Checkpoint c = checkpoint();
  c.timeline.reset();
  EXPECT_EQ(kExactlyOnce.make().decide(remembered(c), promoted(L(0x1000000))).verdict,
            ResumeVerdict::kProceed);
  ServerFacts f = promoted(L(0x1000000));
  f.wal_end = L(0x2000000);
  EXPECT_EQ(kExactlyOnce.make().decide(remembered(c), f).verdict, ResumeVerdict::kRefuse);
}

TEST(ResumePolicy, ServerWithoutATimelineSkipsTheHistoryRule) {
  ServerFacts f = server();
  f.timeline.reset();
  f.wal_end = L(0x1000000);
  const ResumeDecision d = kExactlyOnce.make().decide(remembered(), f);
  EXPECT_EQ(d.verdict, ResumeVerdict::kProceed);
}

// ---- rule 2, at least once: warnings only -----------------------------------

TEST(ResumePolicy, AnotherHistoryAtLeastOnceIsOnlyAWarning) {
  ServerFacts beyond_wal_end = server();
  beyond_wal_end.wal_end = L(0x2000000);
  ServerFacts not_ancestor = promoted(L(0x2000000));
  not_ancestor.timeline = 3;
  const std::vector<std::pair<ServerFacts, std::string>> cases = {
      {promoted(L(0x2000000)), "its history left timeline 1 at lsn=0/2000000"},
      {beyond_wal_end, "beyond the server's WAL end"},
      {not_ancestor, "is not in this server's history"},
  };
  for (const Policy& p : {kAtLeastOnce, kAtLeastOnceRecreate}) {
    for (const auto& [facts, why] : cases) {
      Checkpoint c = checkpoint(facts.timeline == 3 ? 2 : 1);
      const ResumeDecision d = p.make().decide(remembered(c), facts);
      EXPECT_EQ(d.verdict, ResumeVerdict::kWarn) << why;
      EXPECT_EQ(d.slot, SlotStep::kUse);
      const std::string warning = only_note(d, Level::kWarning);
      expect_contains(warning, why);
      expect_contains(warning,
                      "at least once the slot's own position decides where streaming starts, so "
                      "nothing is skipped because of it");
    }
  }
}

// The checkpoint is from another history, so a missing slot's gap begins
// where the histories parted, not at the checkpoint.
TEST(ResumePolicy, AnotherHistoryAtLeastOnceWithTheSlotMissingNamesTheGapFromTheSwitchPoint) {
  const ResumeDecision d = kAtLeastOnce.make().decide(
      remembered(), promoted(L(0x2000000), SlotPresence::kMissing));
  expect_refused(d);
  expect_contains(d.refusal(),
                  "does not exist, but Kafka holds its checkpoint at lsn=0/3000000 (group "
                  "outbox-relay-orders), a checkpoint from another history than this server's "
                  "(beyond the switch point): the gap starts at or before lsn=0/2000000");
  expect_contains(d.refusal(), "the gap runs from lsn=0/2000000");

  ServerFacts snapshot = server(SlotPresence::kMissing);
  snapshot.wal_end = L(0x2800000);
  expect_contains(kAtLeastOnce.make().decide(remembered(), snapshot).refusal(),
                  "the gap runs from lsn=0/2800000");

  const ResumeDecision recreated = kAtLeastOnceRecreate.make().decide(
      remembered(), promoted(L(0x2000000), SlotPresence::kMissing));
  EXPECT_EQ(recreated.verdict, ResumeVerdict::kWarn);
  EXPECT_EQ(recreated.slot, SlotStep::kCreate);
  ASSERT_EQ(recreated.notes.size(), 2u);
  EXPECT_EQ(recreated.notes[0].level, Level::kWarning);
  EXPECT_EQ(recreated.notes[1].level, Level::kGap);
  expect_contains(recreated.notes[1].text, "the gap runs from lsn=0/2000000");
}

}  // namespace
}  // namespace relay
