// Timeline history files as TIMELINE_HISTORY returns them, and the
// judgement of a checkpoint's position against a server's history.
#include "wal/timeline.h"

#include <gtest/gtest.h>

#include "wal/errc.h"

namespace wal {
namespace {

Lsn L(uint64_t v) { return Lsn(v); }

TEST(WalTimelineHistory, ParsesWhatPostgresWritesSkippingComments) {
  const std::string content =
      "1\t0/3000158\tno recovery target specified\n"
      "\n"
      "# a comment\n"
      "  2\t0/5000060\tbefore 2024-05-01 10:00:00+00\n"
      "4\t1/A0\n";
  auto history = parse_timeline_history(content);
  ASSERT_TRUE(history) << history.error().describe();
  EXPECT_EQ(*history, (std::vector<TimelineSwitch>{
                          {1, L(0x3000158)}, {2, L(0x5000060)}, {4, L(0x1000000A0ull)}}));
  auto empty = parse_timeline_history("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
}

TEST(WalTimelineHistory, MalformedLinesAreRefusedNamingTheLine) {
  for (const char* content :
       {"x\t0/1\treason\n", "1\n", "1\tzz\treason\n", "0\t0/1\treason\n",
        "2\t0/10\tr\n1\t0/20\tr\n", "1\t0/20\tr\n2\t0/10\tr\n", "4294967296\t0/1\tr\n",
        "-1\t0/1\tr\n"}) {
    auto history = parse_timeline_history(content);
    ASSERT_FALSE(history) << "accepted '" << content << "'";
    EXPECT_EQ(history.error().code, make_error_code(errc::invalid_value));
    EXPECT_NE(history.error().message.find("timeline history line"), std::string::npos)
        << history.error().message;
  }
}

const std::vector<TimelineSwitch> kHistoryOf3 = {{1, L(0x1000)}, {2, L(0x2000)}};

TEST(WalTimelineJudge, TheSameTimelineWithinTheWalIsTheSameHistory) {
  const HistoryVerdict v = judge_position(L(0x500), 1, 1, L(0x500), {});
  EXPECT_TRUE(v.same_history());
  EXPECT_FALSE(v.switchpoint);
}

TEST(WalTimelineJudge, APositionBeyondTheWalEndDivergedOnAnyTimeline) {
  EXPECT_EQ(judge_position(L(0x501), 1, 1, L(0x500), {}).divergence, Divergence::kBeyondWalEnd);
  EXPECT_EQ(judge_position(L(0x2501), 3, 3, L(0x2500), kHistoryOf3).divergence,
            Divergence::kBeyondWalEnd);
}

TEST(WalTimelineJudge, AnAncestorLeftAtOrAfterThePositionIsAFailover) {
  for (auto [position, tli, switchpoint] :
       {std::tuple{L(0x800), 1u, L(0x1000)}, std::tuple{L(0x1000), 1u, L(0x1000)},
        std::tuple{L(0x1800), 2u, L(0x2000)}, std::tuple{L(0x2000), 2u, L(0x2000)}}) {
    const HistoryVerdict v = judge_position(position, tli, 3, L(0x9000), kHistoryOf3);
    EXPECT_TRUE(v.same_history()) << position.to_string();
    EXPECT_EQ(v.switchpoint, std::optional<Lsn>(switchpoint));
  }
}

TEST(WalTimelineJudge, AnAncestorLeftBeforeThePositionDivergedAtItsSwitchPoint) {
  const HistoryVerdict v = judge_position(L(0x1001), 1, 3, L(0x9000), kHistoryOf3);
  EXPECT_EQ(v.divergence, Divergence::kBeyondSwitchPoint);
  EXPECT_EQ(v.switchpoint, std::optional<Lsn>(L(0x1000)));
  EXPECT_EQ(judge_position(L(0x2800), 2, 3, L(0x9000), kHistoryOf3).divergence,
            Divergence::kBeyondSwitchPoint);
}

TEST(WalTimelineJudge, ATimelineOutsideTheServersHistoryDiverged) {
  // Timeline 2 abandoned: the server's history went 1 -> 3.
  const std::vector<TimelineSwitch> skipping = {{1, L(0x1000)}};
  EXPECT_EQ(judge_position(L(0x800), 2, 3, L(0x9000), skipping).divergence,
            Divergence::kNotAncestor);
  // A server back on an older timeline (a backup from before the promotion).
  EXPECT_EQ(judge_position(L(0x800), 2, 1, L(0x9000), {}).divergence, Divergence::kNotAncestor);
  EXPECT_EQ(judge_position(L(0x800), 4, 3, L(0x9000), kHistoryOf3).divergence,
            Divergence::kNotAncestor);
  EXPECT_FALSE(judge_position(L(0x800), 4, 3, L(0x9000), kHistoryOf3).switchpoint);
}

}  // namespace
}  // namespace wal
