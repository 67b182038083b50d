// ${VAR} expansion: the expander on its own, then through load_string, where
// it must report the variable and the position, and must not apply to
// topic_template.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <string>

#include "config/config.h"
#include "config/env_expand.h"

namespace {

config::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto found = vars.find(name);
    if (found == vars.end()) return std::nullopt;
    return found->second;
  };
}

const config::EnvLookup kEnv = env_of({{"USER_NAME", "relay"}, {"EMPTY", ""}, {"PORT", "6432"}});

std::string expand_ok(std::string_view text) {
  auto expanded = config::expand_env(text, kEnv);
  EXPECT_TRUE(expanded.errors.empty()) << expanded.errors.front();
  return expanded.value;
}

std::vector<std::string> expand_errors(std::string_view text) {
  return config::expand_env(text, kEnv).errors;
}

TEST(ConfigEnvExpand, ReplacesSetVariables) {
  EXPECT_EQ(expand_ok("user=${USER_NAME} port=${PORT}"), "user=relay port=6432");
  EXPECT_EQ(expand_ok("${USER_NAME}${PORT}"), "relay6432");
}

TEST(ConfigEnvExpand, TextWithoutReferencesIsUnchanged) {
  EXPECT_EQ(expand_ok(""), "");
  EXPECT_EQ(expand_ok("pa$$word$ {x} $"), "pa$$word$ {x} $");
}

TEST(ConfigEnvExpand, DefaultAppliesWhenUnsetOrEmpty) {
  EXPECT_EQ(expand_ok("${MISSING:-fallback}"), "fallback");
  EXPECT_EQ(expand_ok("${EMPTY:-fallback}"), "fallback");
  EXPECT_EQ(expand_ok("${USER_NAME:-fallback}"), "relay");
  EXPECT_EQ(expand_ok("${MISSING:-}"), "");
  EXPECT_EQ(expand_ok("${MISSING:-a:-b $x}"), "a:-b $x");
}

TEST(ConfigEnvExpand, SetButEmptyVariableWithoutDefaultIsEmpty) {
  EXPECT_EQ(expand_ok("[${EMPTY}]"), "[]");
}

TEST(ConfigEnvExpand, DoubleDollarBraceIsALiteral) {
  EXPECT_EQ(expand_ok("$${USER_NAME}"), "${USER_NAME}");
  EXPECT_EQ(expand_ok("a$${b"), "a${b");
  EXPECT_EQ(expand_ok("$$${USER_NAME}"), "$${USER_NAME}");
}

TEST(ConfigEnvExpand, ValuesAreNotExpandedTwice) {
  const auto env = env_of({{"A", "${B}"}, {"B", "no"}});
  EXPECT_EQ(config::expand_env("${A}", env).value, "${B}");
}

TEST(ConfigEnvExpand, UnsetVariableNamesItAndSuggestsADefault) {
  const auto errors = expand_errors("x=${NOPE} y=${ALSO_NOPE}");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0],
            "environment variable 'NOPE' is not set (write ${NOPE:-default} to give a default)");
  EXPECT_NE(errors[1].find("'ALSO_NOPE'"), std::string::npos);
}

TEST(ConfigEnvExpand, MalformedReferencesAreErrors) {
  EXPECT_NE(expand_errors("abc${USER_NAME").at(0).find("unterminated '${' at character 4"),
            std::string::npos);
  EXPECT_NE(expand_errors("${}").at(0).find("not a valid environment variable reference"),
            std::string::npos);
  EXPECT_NE(expand_errors("${1X}").at(0).find("'${1X}'"), std::string::npos);
  EXPECT_NE(expand_errors("${A-B}").at(0).find("not a valid"), std::string::npos);
  EXPECT_NE(expand_errors("${A:-${B}}").at(0).find("nested"), std::string::npos);
}

TEST(ConfigEnvExpand, EscapeIsTheInverseOfExpansion) {
  for (std::string_view text : {"", "plain", "${X}", "$${X}", "$", "a${", "${${", "$$${"}) {
    EXPECT_EQ(expand_ok(config::escape_env(text)), text) << text;
  }
}

std::vector<config::Diagnostic> load_errors(const std::string& yaml, const config::EnvLookup& env) {
  auto loaded = config::load_string(yaml, "env.yaml", env);
  if (!std::holds_alternative<config::LoadFailure>(loaded)) return {};
  return std::get<config::LoadFailure>(loaded).diagnostics;
}

config::Config load_ok(const std::string& yaml, const config::EnvLookup& env) {
  auto loaded = config::load_string(yaml, "env.yaml", env);
  if (auto* failure = std::get_if<config::LoadFailure>(&loaded)) {
    ADD_FAILURE() << failure->diagnostics.at(0).format();
    return {};
  }
  return std::get<config::Config>(std::move(loaded));
}

TEST(ConfigEnvLoad, UnsetVariableIsReportedAtTheValueWithTheKey) {
  const auto diagnostics =
      load_errors("postgres:\n  dsn: \"host=db password=${PG_PASSWORD}\"\n", env_of({}));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].format(),
            "env.yaml:2:8: postgres.dsn: environment variable 'PG_PASSWORD' is not set (write "
            "${PG_PASSWORD:-default} to give a default)");
}

TEST(ConfigEnvLoad, EveryUnsetVariableIsReported) {
  const auto diagnostics = load_errors(
      "postgres: {dsn: '${A}'}\nkafka:\n  brokers: ${B}\n  properties: {sasl.password: '${C}'}\n",
      env_of({}));
  ASSERT_EQ(diagnostics.size(), 3u);
  EXPECT_EQ(diagnostics[0].line, 1);
  EXPECT_EQ(diagnostics[1].line, 3);
  EXPECT_EQ(diagnostics[2].line, 4);
  EXPECT_NE(diagnostics[2].message.find("kafka.properties.sasl.password"), std::string::npos);
}

TEST(ConfigEnvLoad, ExpandsEveryKindOfScalar) {
  const auto env = env_of({{"PW", "pw"},
                           {"SLOT", "s2"},
                           {"CREATE", "false"},
                           {"EVERY", "5s"},
                           {"BYTES", "1MiB"},
                           {"SECRET", "k"}});
  const auto cfg = load_ok(
      "postgres:\n  dsn: password=${PW}\n  slot: ${SLOT}\n  create_slot: ${CREATE}\n"
      "  status_interval: ${EVERY}\nlimits: {max_inflight_bytes: '${BYTES}'}\n"
      "kafka: {properties: {sasl.password: '${SECRET}'}}\n"
      "outbox: {header_columns: ['${SLOT}']}\n",
      env);
  EXPECT_EQ(cfg.postgres.dsn, "password=pw");
  EXPECT_EQ(cfg.postgres.slot, "s2");
  EXPECT_FALSE(cfg.postgres.create_slot);
  EXPECT_EQ(cfg.postgres.status_interval, std::chrono::seconds(5));
  EXPECT_EQ(cfg.limits.max_inflight_bytes, 1048576u);
  EXPECT_EQ(cfg.kafka.properties.at("sasl.password"), "k");
  EXPECT_EQ(cfg.outbox.header_columns.at(0).column, "s2");
}

TEST(ConfigEnvLoad, DefaultsAndEscapesWorkInsideTheFile) {
  const auto cfg = load_ok(
      "postgres:\n  dsn: 'user=${PG_USER:-relay} password=a$${b}'\n"
      "  slot: ${SLOT:-outbox_relay}\n",
      env_of({}));
  EXPECT_EQ(cfg.postgres.dsn, "user=relay password=a${b}");
  EXPECT_EQ(cfg.postgres.slot, "outbox_relay");
}

TEST(ConfigEnvLoad, ExpandedValueIsValidatedLikeAWrittenOne) {
  const auto diagnostics =
      load_errors("postgres: {dsn: x, slot: '${SLOT}'}\n", env_of({{"SLOT", "Bad Slot"}}));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].column, 26);
  EXPECT_NE(diagnostics[0].message.find("got 'Bad Slot'"), std::string::npos);
}

// Expansion happens after parsing: YAML syntax in a variable stays text.
TEST(ConfigEnvLoad, VariableCannotInjectYamlStructure) {
  const auto env = env_of({{"INJECT", "x\nkafka:\n  brokers: evil:9092"}, {"NUM", "1}, b: {c"}});
  const auto cfg = load_ok("postgres:\n  dsn: ${INJECT}\n", env);
  EXPECT_EQ(cfg.postgres.dsn, "x\nkafka:\n  brokers: evil:9092");
  EXPECT_EQ(cfg.kafka.brokers, "127.0.0.1:9092");
  const auto diagnostics =
      load_errors("postgres: {dsn: x}\nlimits: {max_inflight_messages: '${NUM}'}\n", env);
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_NE(diagnostics[0].message.find("expected an integer"), std::string::npos);
}

TEST(ConfigEnvLoad, TopicTemplatePlaceholdersAreColumnsNotVariables) {
  const auto cfg = load_ok("postgres: {dsn: x}\noutbox: {topic_template: 'events.${topic}'}\n",
                           env_of({{"topic", "from-env"}}));
  EXPECT_EQ(cfg.outbox.topic_template, "events.${topic}");
}

TEST(ConfigEnvLoad, KeysAreNotExpanded) {
  const auto diagnostics = load_errors("postgres: {dsn: x, '${K}': y}\n", env_of({{"K", "slot"}}));
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_NE(diagnostics[0].message.find("unknown key '${K}'"), std::string::npos);
}

TEST(ConfigEnvLoad, ProcessEnvironmentIsTheDefaultSource) {
  ASSERT_EQ(setenv("OUTBOX_RELAY_TEST_DSN", "host=from-env", 1), 0);
  auto loaded = config::load_string("postgres: {dsn: '${OUTBOX_RELAY_TEST_DSN}'}\n", "p.yaml");
  unsetenv("OUTBOX_RELAY_TEST_DSN");
  ASSERT_TRUE(std::holds_alternative<config::Config>(loaded));
  EXPECT_EQ(std::get<config::Config>(loaded).postgres.dsn, "host=from-env");
  auto unset = config::load_string("postgres: {dsn: '${OUTBOX_RELAY_TEST_DSN}'}\n", "p.yaml");
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(unset));
}

}  // namespace
