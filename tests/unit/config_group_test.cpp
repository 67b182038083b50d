// The `group` section and the `slots` list: defaults, the single-slot form
// kept as it was, and every mistake pinned to file:line:column.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace {

using namespace std::chrono_literals;
using config::Diagnostic;

constexpr const char* kFile = "relay.yaml";

std::optional<std::string> no_env(const std::string&) {
  return std::nullopt;
}

std::string format_all(const std::vector<Diagnostic>& diagnostics) {
  std::string all;
  for (const auto& d : diagnostics) all += d.format() + "\n";
  return all;
}

config::Config load_ok(const std::string& yaml) {
  auto loaded = config::load_string(yaml, kFile, no_env);
  if (auto* failure = std::get_if<config::LoadFailure>(&loaded)) {
    ADD_FAILURE() << format_all(failure->diagnostics);
    return {};
  }
  return std::get<config::Config>(std::move(loaded));
}

std::vector<Diagnostic> errors_of(const std::string& yaml) {
  auto loaded = config::load_string(yaml, kFile, no_env);
  if (std::holds_alternative<config::Config>(loaded)) {
    ADD_FAILURE() << "expected the configuration to be rejected:\n" << yaml;
    return {};
  }
  return std::get<config::LoadFailure>(loaded).diagnostics;
}

void expect_one_error(const std::string& yaml, int line, int column, const std::string& text) {
  const auto diagnostics = errors_of(yaml);
  ASSERT_EQ(diagnostics.size(), 1u) << format_all(diagnostics);
  const Diagnostic& d = diagnostics.front();
  EXPECT_EQ(d.line, line) << d.format();
  EXPECT_EQ(d.column, column) << d.format();
  EXPECT_NE(d.message.find(text), std::string::npos)
      << "message: " << d.message << "\nexpected to contain: " << text;
}

const std::string kTwoSlots = R"(group:
  id: orders
slots:
  - postgres: {dsn: "host=a", slot: s1}
  - postgres: {dsn: "host=b", slot: s2, publication: pub_b}
    outbox: {table: app.events, on_bad_row: halt}
)";

TEST(ConfigGroup, WithoutAGroupSectionTheSingleSlotFormIsUnchanged) {
  const auto cfg = load_ok("postgres: {dsn: x, slot: one}\n");
  EXPECT_FALSE(cfg.group.has_value());
  EXPECT_TRUE(cfg.slots.empty());
  const auto slots = config::slots_of(cfg);
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0].postgres.slot, "one");
  EXPECT_EQ(slots[0].outbox, cfg.outbox);
}

TEST(ConfigGroup, GroupDefaultsDeriveTheCoordinationTopicFromTheId) {
  const auto cfg = load_ok("postgres: {dsn: x}\ngroup: {id: orders-relay}\n");
  ASSERT_TRUE(cfg.group.has_value());
  EXPECT_EQ(cfg.group->id, "orders-relay");
  EXPECT_EQ(cfg.group->session_timeout, 10s);
  EXPECT_EQ(cfg.group->coordination_topic, "orders-relay.slots");
  EXPECT_FALSE(cfg.group->takeover_after.has_value());
  EXPECT_EQ(cfg.group->yield_after, std::optional<std::chrono::milliseconds>(60s));
  EXPECT_EQ(config::slots_of(cfg).size(), 1u);
}

TEST(ConfigGroup, YieldAfterDefaultsToNoLessThanTheSessionTimeout) {
  const auto cfg = load_ok("postgres: {dsn: x}\ngroup: {id: g, session_timeout: 90s}\n");
  EXPECT_EQ(cfg.group->yield_after, std::optional<std::chrono::milliseconds>(90s));
}

TEST(ConfigGroup, YieldAfterNullTurnsItOff) {
  const auto cfg = load_ok("postgres: {dsn: x}\ngroup:\n  id: g\n  yield_after:\n");
  EXPECT_FALSE(cfg.group->yield_after.has_value());
}

TEST(ConfigGroup, YieldAfterShorterThanTheSessionTimeoutIsRefused) {
  expect_one_error(
      "postgres: {dsn: x}\ngroup:\n  id: g\n  session_timeout: 10s\n  yield_after: 5s\n", 5, 16,
      "group.yield_after: must be at least group.session_timeout (10s), or null to turn it off, "
      "got '5s'");
}

TEST(ConfigGroup, EveryGroupKeyIsRead) {
  const auto cfg = load_ok(
      "postgres: {dsn: x}\n"
      "group: {id: g, session_timeout: 6s, coordination_topic: coord, takeover_after: 30s, "
      "yield_after: 20s}\n");
  ASSERT_TRUE(cfg.group.has_value());
  EXPECT_EQ(cfg.group->yield_after, std::optional<std::chrono::milliseconds>(20s));
  EXPECT_EQ(cfg.group->session_timeout, 6s);
  EXPECT_EQ(cfg.group->coordination_topic, "coord");
  EXPECT_EQ(cfg.group->takeover_after, std::optional<std::chrono::milliseconds>(30s));
}

TEST(ConfigGroup, SlotsAreReadInOrderEachWithItsOwnPostgresAndOutbox) {
  const auto cfg = load_ok(kTwoSlots);
  ASSERT_EQ(cfg.slots.size(), 2u);
  EXPECT_EQ(cfg.slots[0].postgres.dsn, "host=a");
  EXPECT_EQ(cfg.slots[0].postgres.slot, "s1");
  EXPECT_EQ(cfg.slots[0].outbox.table, "public.outbox");
  EXPECT_EQ(cfg.slots[1].postgres.publication, "pub_b");
  EXPECT_EQ(cfg.slots[1].outbox.table, "app.events");
  EXPECT_EQ(cfg.slots[1].outbox.on_bad_row, config::BadRowPolicy::kHalt);
  const auto narrowed = config::for_slot(cfg, cfg.slots[1]);
  EXPECT_EQ(narrowed.postgres.slot, "s2");
  EXPECT_EQ(narrowed.outbox.table, "app.events");
  EXPECT_TRUE(narrowed.slots.empty());
}

TEST(ConfigGroup, DescribeOfGroupAndSlotsLoadsBackToTheSameConfig) {
  const auto original =
      load_ok(kTwoSlots + "  - postgres: {dsn: \"host=c\"}\n" + "kafka: {brokers: \"k:9092\"}\n");
  const std::string text = config::describe(original);
  auto reloaded = load_ok(text);
  reloaded.source_file = original.source_file;
  EXPECT_EQ(reloaded, original) << text;
}

TEST(ConfigGroup, TakeoverAfterNullMeansOff) {
  const auto cfg = load_ok("postgres: {dsn: x}\ngroup:\n  id: g\n  takeover_after:\n");
  ASSERT_TRUE(cfg.group.has_value());
  EXPECT_FALSE(cfg.group->takeover_after.has_value());
}

TEST(ConfigGroupErrors, MissingIdIsReportedAtTheGroupKey) {
  expect_one_error("postgres: {dsn: x}\ngroup:\n  session_timeout: 6s\n", 2, 1,
                   "group: missing required key 'id'");
}

TEST(ConfigGroupErrors, UnknownGroupKeySuggestsTheClosestOne) {
  expect_one_error("postgres: {dsn: x}\ngroup:\n  id: g\n  sesion_timeout: 6s\n", 4, 3,
                   "did you mean 'session_timeout'?");
}

TEST(ConfigGroupErrors, SessionTimeoutOutsideTheBrokersRangeIsRefused) {
  expect_one_error("postgres: {dsn: x}\ngroup:\n  id: g\n  session_timeout: 500ms\n", 4, 20,
                   "group.session_timeout: must be at least 1s, got '500ms'");
  expect_one_error("postgres: {dsn: x}\ngroup:\n  id: g\n  session_timeout: 2h\n", 4, 20,
                   "must be at most 30m");
}

TEST(ConfigGroupErrors, TakeoverShorterThanTheSessionTimeoutIsRefused) {
  expect_one_error(
      "postgres: {dsn: x}\ngroup:\n  id: g\n  session_timeout: 10s\n  takeover_after: 5s\n", 5, 19,
      "group.takeover_after: must be at least group.session_timeout (10s), got '5s'");
}

TEST(ConfigGroupErrors, IdThatCannotNameTheCoordinationTopicSaysWhichKeyToSet) {
  expect_one_error("postgres: {dsn: x}\ngroup:\n  id: \"a b\"\n", 3, 7,
                   "set group.coordination_topic");
}

TEST(ConfigGroupErrors, InvalidCoordinationTopicIsRefused) {
  expect_one_error("postgres: {dsn: x}\ngroup:\n  id: g\n  coordination_topic: \"a/b\"\n", 4, 23,
                   "group.coordination_topic");
}

TEST(ConfigGroupErrors, SlotsWithoutAGroupAreRefused) {
  expect_one_error("slots:\n  - postgres: {dsn: x}\n", 2, 3, "slots: needs a group section");
}

TEST(ConfigGroupErrors, EmptySlotsListIsRefused) {
  expect_one_error("group: {id: g}\nslots: []\n", 2, 8, "slots: must list at least one slot");
}

TEST(ConfigGroupErrors, TopLevelPostgresBesideSlotsIsRefused) {
  expect_one_error("postgres: {dsn: x}\ngroup: {id: g}\nslots:\n  - postgres: {dsn: y}\n", 1, 1,
                   "'postgres' cannot be used with 'slots'");
}

TEST(ConfigGroupErrors, SlotWithoutPostgresIsReportedAtTheItem) {
  expect_one_error("group: {id: g}\nslots:\n  - outbox: {table: t}\n", 3, 5,
                   "slots[0]: missing required key 'postgres'");
}

TEST(ConfigGroupErrors, MistakesInsideASlotCarryTheSlotsPath) {
  expect_one_error("group: {id: g}\nslots:\n  - postgres: {dsn: x, slto: s}\n", 3, 24,
                   "unknown key 'slto' in 'slots[0].postgres'; did you mean 'slot'?");
}

TEST(ConfigGroupErrors, SameSlotOfTheSameDatabaseTwiceIsRefused) {
  expect_one_error(
      "group: {id: g}\nslots:\n  - postgres: {dsn: x, slot: s}\n  - postgres: {dsn: x, slot: s}\n",
      4, 5, "slot 's' of the same database is already slots[0] (line 3)");
}

TEST(ConfigGroupErrors, EveryMistakeInSeveralSlotsIsReportedAtOnce) {
  const auto diagnostics = errors_of(
      "group: {id: g, session_timeout: 0s}\n"
      "slots:\n"
      "  - postgres: {dsn: \"\"}\n"
      "  - postgres: {dsn: y, create_slot: yes}\n");
  EXPECT_EQ(diagnostics.size(), 3u) << format_all(diagnostics);
}

}  // namespace
