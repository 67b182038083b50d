// Loading valid configurations: the documented example, defaults for absent
// keys, every accepted notation, and check-config's effective view.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "config/config.h"

namespace {

using namespace std::chrono_literals;

const std::string kExample =
    std::string(OUTBOX_SOURCE_DIR) + "/deploy/config/outbox-relay.example.yaml";

config::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto found = vars.find(name);
    if (found == vars.end()) return std::nullopt;
    return found->second;
  };
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string format_all(const config::LoadFailure& failure) {
  std::string all;
  for (const auto& d : failure.diagnostics) all += d.format() + "\n";
  return all;
}

config::Config load_ok(const std::string& yaml, const config::EnvLookup& env = env_of({})) {
  auto loaded = config::load_string(yaml, "test.yaml", env);
  if (auto* failure = std::get_if<config::LoadFailure>(&loaded)) {
    ADD_FAILURE() << format_all(*failure);
    return {};
  }
  return std::get<config::Config>(std::move(loaded));
}

TEST(ConfigLoad, ExampleFileLoadsWithItsPasswordFromTheEnvironment) {
  auto loaded =
      config::load_string(read_text(kExample), kExample, env_of({{"PG_PASSWORD", "s3cret"}}));
  ASSERT_TRUE(std::holds_alternative<config::Config>(loaded))
      << format_all(std::get<config::LoadFailure>(loaded));
  const auto& cfg = std::get<config::Config>(loaded);
  EXPECT_EQ(cfg.postgres.dsn, "host=127.0.0.1 port=5432 dbname=app user=relay password=s3cret");
  EXPECT_EQ(cfg.source_file, kExample);
}

// The example documents every default; if a default changes in config.h,
// the example (and docs/configuration.md) must change with it.
TEST(ConfigLoad, ExampleFileSpellsOutExactlyTheDefaults) {
  auto cfg = load_ok(read_text(kExample), env_of({{"PG_PASSWORD", "pw"}}));
  config::Config defaults;
  defaults.postgres.dsn = cfg.postgres.dsn;
  defaults.source_file = cfg.source_file;
  EXPECT_EQ(cfg, defaults) << config::describe(cfg);
}

TEST(ConfigLoad, ExampleFileWithoutPasswordInEnvironmentNamesTheVariable) {
  auto loaded = config::load_file(kExample);
  if (std::getenv("PG_PASSWORD") != nullptr) GTEST_SKIP() << "PG_PASSWORD is set";
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  const auto& diagnostics = std::get<config::LoadFailure>(loaded).diagnostics;
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_NE(diagnostics[0].message.find("environment variable 'PG_PASSWORD' is not set"),
            std::string::npos)
      << diagnostics[0].format();
}

TEST(ConfigLoad, MessagesAsASourceWithTheirPrefixAndPolicy) {
  auto cfg = load_ok(
      "postgres: {dsn: x}\n"
      "outbox: {source: both, message_prefix: \"orders-events\", "
      "allow_non_transactional_messages: true}\n");
  EXPECT_EQ(cfg.outbox.source, config::OutboxSource::kBoth);
  EXPECT_TRUE(cfg.outbox.reads_table());
  EXPECT_TRUE(cfg.outbox.reads_messages());
  EXPECT_EQ(cfg.outbox.message_prefix, "orders-events");
  EXPECT_TRUE(cfg.outbox.allow_non_transactional_messages);
  EXPECT_FALSE(load_ok("postgres: {dsn: x}\noutbox: {source: messages}\n").outbox.reads_table());
  const config::OutboxConfig defaults;
  EXPECT_EQ(defaults.source, config::OutboxSource::kTable);
  EXPECT_FALSE(defaults.reads_messages());
  EXPECT_EQ(defaults.message_prefix, "outbox");
  EXPECT_FALSE(defaults.allow_non_transactional_messages);
  // check-config's view loads back to the same settings.
  EXPECT_EQ(load_ok(config::describe(cfg)).outbox, cfg.outbox);
}

TEST(ConfigLoad, OnlyTheDsnGivesAllDefaults) {
  const auto cfg = load_ok("postgres:\n  dsn: host=db\n");
  EXPECT_EQ(cfg.postgres.dsn, "host=db");
  EXPECT_EQ(cfg.postgres.slot, "outbox_relay");
  EXPECT_EQ(cfg.postgres.publication, "outbox_pub");
  EXPECT_TRUE(cfg.postgres.create_slot);
  EXPECT_TRUE(cfg.postgres.create_publication);
  EXPECT_TRUE(cfg.postgres.binary);
  EXPECT_EQ(cfg.postgres.status_interval, 1s);
  EXPECT_EQ(cfg.postgres.reconnect_backoff_min, 200ms);
  EXPECT_EQ(cfg.postgres.reconnect_backoff_max, 10s);
  EXPECT_EQ(cfg.kafka.brokers, "127.0.0.1:9092");
  EXPECT_TRUE(cfg.kafka.properties.empty());
  EXPECT_FALSE(cfg.kafka.create_topics);
  EXPECT_EQ(cfg.kafka.drain_timeout, 30s);
  EXPECT_EQ(cfg.outbox.table, "public.outbox");
  EXPECT_EQ(cfg.outbox.columns, config::OutboxColumns{});
  EXPECT_EQ(cfg.outbox.columns.payload, "payload");
  EXPECT_FALSE(cfg.outbox.topic_template.has_value());
  EXPECT_TRUE(cfg.outbox.header_columns.empty());
  EXPECT_EQ(cfg.outbox.on_bad_row, config::BadRowPolicy::kDeadLetter);
  EXPECT_EQ(cfg.outbox.null_payload, config::NullPayloadPolicy::kDeadLetter);
  EXPECT_EQ(cfg.postgres.on_slot_lost, config::SlotLostPolicy::kFail);
  EXPECT_EQ(cfg.outbox.dead_letter_topic, "outbox.dead-letter");
  EXPECT_EQ(cfg.limits.max_inflight_messages, 20000u);
  EXPECT_EQ(cfg.limits.max_inflight_bytes, 4194304u);
  EXPECT_EQ(cfg.http.listen, "127.0.0.1:9187");
  EXPECT_EQ(cfg.http.ready_kafka_timeout, std::chrono::milliseconds(15000));
  EXPECT_EQ(cfg.log.level, "info");
  EXPECT_EQ(cfg.log.format, config::LogFormat::kText);
  EXPECT_EQ(cfg.source_file, "test.yaml");
}

TEST(ConfigLoad, EmptySectionsKeepTheirDefaults) {
  const auto cfg = load_ok("postgres: {dsn: x}\nkafka:\noutbox: {}\nlimits:\nhttp:\nlog:\n");
  config::Config defaults;
  defaults.postgres.dsn = "x";
  defaults.source_file = "test.yaml";
  EXPECT_EQ(cfg, defaults);
}

TEST(ConfigLoad, EveryKeySetToANonDefaultValue) {
  const auto cfg = load_ok(R"(
postgres:
  dsn: "postgresql://relay@db:5432/app"
  slot: orders_slot_2
  publication: orders_pub
  create_slot: false
  create_publication: FALSE
  binary: False
  status_interval: 250
  reconnect_backoff: {min: 1s, max: 2m}
  publication_check_interval: 5s
  failover_slot: false
kafka:
  brokers: "k1:9092,k2:9092"
  properties:
    linger.ms: 20
    enable.ssl.certificate.verification: true
    client.id: relay-1
  create_topics: true
  drain_timeout: 0
outbox:
  table: orders_outbox
  columns: {id: event_id, topic: aggregate_type, key: aggregate_id, partition: part, headers: meta, payload: body}
  topic_template: "orders.${aggregate_type}.v1"
  header_columns: [tenant_id, trace_id]
  on_bad_row: halt
  dead_letter_topic: orders_DLQ-1
  ignore_relations: [public.audit_log, '"Billing"."Invoices"']
limits:
  max_inflight_messages: 10000000
  max_inflight_bytes: 64MB
http:
  listen: ""
  ready_kafka_timeout: 0
log:
  level: debug
  format: json
)");
  EXPECT_EQ(cfg.postgres.dsn, "postgresql://relay@db:5432/app");
  EXPECT_EQ(cfg.postgres.slot, "orders_slot_2");
  EXPECT_EQ(cfg.postgres.publication, "orders_pub");
  EXPECT_FALSE(cfg.postgres.create_slot);
  EXPECT_FALSE(cfg.postgres.create_publication);
  EXPECT_FALSE(cfg.postgres.binary);
  EXPECT_EQ(cfg.postgres.status_interval, 250ms);
  EXPECT_EQ(cfg.postgres.reconnect_backoff_min, 1s);
  EXPECT_EQ(cfg.postgres.reconnect_backoff_max, 2min);
  EXPECT_EQ(cfg.postgres.publication_check_interval, 5s);
  EXPECT_FALSE(cfg.postgres.failover_slot);
  EXPECT_EQ(cfg.kafka.brokers, "k1:9092,k2:9092");
  const std::map<std::string, std::string> properties = {
      {"linger.ms", "20"},
      {"enable.ssl.certificate.verification", "true"},
      {"client.id", "relay-1"}};
  EXPECT_EQ(cfg.kafka.properties, properties);
  EXPECT_TRUE(cfg.kafka.create_topics);
  EXPECT_EQ(cfg.kafka.drain_timeout, 0ms);
  EXPECT_EQ(cfg.outbox.table, "orders_outbox");
  EXPECT_EQ(cfg.outbox.columns.id, "event_id");
  EXPECT_EQ(cfg.outbox.columns.topic, "aggregate_type");
  EXPECT_EQ(cfg.outbox.columns.key, "aggregate_id");
  EXPECT_EQ(cfg.outbox.columns.partition, "part");
  EXPECT_EQ(cfg.outbox.columns.headers, "meta");
  EXPECT_EQ(cfg.outbox.columns.payload, "body");
  EXPECT_EQ(cfg.outbox.topic_template, "orders.${aggregate_type}.v1");
  EXPECT_EQ(cfg.outbox.header_columns,
            (std::vector<config::HeaderColumn>{{"tenant_id"}, {"trace_id"}}));
  EXPECT_EQ(cfg.outbox.on_bad_row, config::BadRowPolicy::kHalt);
  EXPECT_EQ(cfg.outbox.dead_letter_topic, "orders_DLQ-1");
  EXPECT_EQ(cfg.outbox.ignore_relations,
            (std::vector<std::string>{"public.audit_log", "\"Billing\".\"Invoices\""}));
  EXPECT_EQ(cfg.limits.max_inflight_messages, 10000000u);
  EXPECT_EQ(cfg.limits.max_inflight_bytes, 64000000u);
  EXPECT_EQ(cfg.http.listen, "");
  EXPECT_EQ(cfg.http.ready_kafka_timeout, std::chrono::milliseconds(0));
  EXPECT_EQ(cfg.log.level, "debug");
  EXPECT_EQ(cfg.log.format, config::LogFormat::kJson);
}

TEST(ConfigLoad, SizesAcceptBinaryAndDecimalUnits) {
  auto bytes = [](const std::string& text) {
    return load_ok("postgres: {dsn: x}\nlimits: {max_inflight_bytes: '" + text + "'}\n")
        .limits.max_inflight_bytes;
  };
  EXPECT_EQ(bytes("256MiB"), 268435456u);
  EXPECT_EQ(bytes("64MB"), 64000000u);
  EXPECT_EQ(bytes("1GiB"), 1073741824u);
  EXPECT_EQ(bytes("512 KiB"), 524288u);
  EXPECT_EQ(bytes("1000"), 1000u);
}

TEST(ConfigLoad, DurationsAcceptEveryUnit) {
  auto interval = [](const std::string& text) {
    return load_ok("postgres: {dsn: x, status_interval: '" + text + "'}\n")
        .postgres.status_interval;
  };
  EXPECT_EQ(interval("500ms"), 500ms);
  EXPECT_EQ(interval("10s"), 10s);
  EXPECT_EQ(interval("2m"), 2min);
  EXPECT_EQ(interval("1h"), 1h);
  EXPECT_EQ(interval("750"), 750ms);
}

TEST(ConfigLoad, ListenAcceptsNamesAddressesAndBracketedIpv6) {
  for (const char* listen : {"0.0.0.0:9187", "localhost:80", "[::1]:9187", "relay-1.local:0"}) {
    EXPECT_EQ(
        load_ok(std::string("postgres: {dsn: x}\nhttp: {listen: '") + listen + "'}\n").http.listen,
        listen);
  }
}

TEST(ConfigLoad, AnchorsAndAliasesAreResolved) {
  const auto cfg = load_ok(
      "postgres:\n  dsn: x\n  reconnect_backoff: &b {min: 1s, max: 5s}\n"
      "kafka: {drain_timeout: 5s, properties: {linger.ms: &l 7, batch.size: *l}}\n");
  EXPECT_EQ(cfg.kafka.properties.at("batch.size"), "7");
}

TEST(ConfigLoad, LoadFileReadsAFixture) {
  auto loaded = config::load_file(std::string(OUTBOX_TEST_DATA_DIR) + "/config/minimal.yaml");
  ASSERT_TRUE(std::holds_alternative<config::Config>(loaded))
      << format_all(std::get<config::LoadFailure>(loaded));
  EXPECT_EQ(std::get<config::Config>(loaded).postgres.dsn, "host=localhost dbname=app");
}

TEST(ConfigDescribe, OutputLoadsBackToTheSameConfig) {
  const auto original = load_ok(R"(
postgres:
  dsn: "host=db user=relay"
  slot: s1
  status_interval: 1500
  reconnect_backoff: {min: 1s, max: 1h}
kafka:
  properties: {linger.ms: 5, weird.key: "a: b # c"}
outbox:
  topic_template: "x.${t}"
  header_columns: [a, b]
  on_bad_row: halt
limits: {max_inflight_bytes: 1000}
http: {listen: ""}
log: {level: trace, format: json}
)");
  const std::string text = config::describe(original);
  const auto reloaded = load_ok(text);
  config::Config expected = original;
  expected.source_file = reloaded.source_file;
  EXPECT_EQ(reloaded, expected) << text;
}

TEST(ConfigLoad, HeaderColumnsAsAMappingNameEachHeader) {
  const auto cfg = load_ok(
      "postgres: {dsn: x}\n"
      "outbox:\n"
      "  header_columns: {eventType: type, id: id, Trace-Id: trace_id, also-type: type}\n"
      "  null_payload: tombstone\n");
  EXPECT_EQ(
      cfg.outbox.header_columns,
      (std::vector<config::HeaderColumn>{
          {"type", "eventType"}, {"id", "id"}, {"trace_id", "Trace-Id"}, {"type", "also-type"}}));
  EXPECT_EQ(cfg.outbox.null_payload, config::NullPayloadPolicy::kTombstone);
}

TEST(ConfigDescribe, RenamedHeaderColumnsAndTombstonesLoadBack) {
  const auto original = load_ok(
      "postgres: {dsn: host=db}\n"
      "outbox: {header_columns: {eventType: type, '${not_env}': c, '~': d, 'null': e, 'true': f,\n"
      "  '1': g, 'a: b # c': h, \"sp ace\": i}, null_payload: tombstone}\n");
  EXPECT_EQ(original.outbox.header_columns.at(1).header, std::optional<std::string>("${not_env}"));
  const std::string text = config::describe(original);
  EXPECT_NE(text.find("null_payload: tombstone"), std::string::npos) << text;
  const auto reloaded = load_ok(text);
  ASSERT_EQ(reloaded.outbox.header_columns.size(), original.outbox.header_columns.size()) << text;
  for (size_t i = 0; i < original.outbox.header_columns.size(); ++i) {
    const auto& a = original.outbox.header_columns[i];
    const auto& b = reloaded.outbox.header_columns[i];
    EXPECT_EQ(b.column, a.column) << i;
    EXPECT_EQ(b.header, a.header) << i;
  }
  config::Config expected = original;
  expected.source_file = reloaded.source_file;
  EXPECT_EQ(reloaded, expected) << text;
}

TEST(ConfigDescribe, ControlCharactersAndNonAsciiSurviveTheRoundTrip) {
  const auto original = load_ok(
      "postgres: {dsn: host=db}\n"
      "kafka: {properties: {client.id: \"a\\tb\\u00e9\\r\"}}\n"
      "outbox: {table: \"public.outbox\\r\"}\n");
  EXPECT_EQ(original.outbox.table, "public.outbox\r");
  EXPECT_EQ(original.kafka.properties.at("client.id"), "a\tb\u00e9\r");
  const std::string text = config::describe(original);
  const auto reloaded = load_ok(text);
  EXPECT_EQ(reloaded.outbox.table, original.outbox.table) << text;
  EXPECT_EQ(reloaded.kafka.properties, original.kafka.properties) << text;
  EXPECT_EQ(config::describe(reloaded), text);
}

TEST(ConfigDescribe, LiteralDollarBraceSurvivesTheRoundTrip) {
  const auto original = load_ok("postgres: {dsn: 'password=a$${b}c'}\n");
  EXPECT_EQ(original.postgres.dsn, "password=a${b}c");
  const auto text = config::describe(original);
  EXPECT_EQ(text.find("a${b}c"), std::string::npos) << "password must be redacted:\n" << text;
  const auto other = load_ok("postgres: {dsn: 'host=a$${b}c'}\n");
  EXPECT_EQ(load_ok(config::describe(other)).postgres.dsn, "host=a${b}c");
}

TEST(ConfigDescribe, ShowsDefaultsInTheirShortestExactUnit) {
  const std::string text = config::describe(load_ok("postgres: {dsn: x}\n"));
  EXPECT_NE(text.find("status_interval: 1s"), std::string::npos) << text;
  EXPECT_NE(text.find("reconnect_backoff: {min: 200ms, max: 10s}"), std::string::npos) << text;
  EXPECT_NE(text.find("max_inflight_bytes: 4MiB"), std::string::npos) << text;
  EXPECT_NE(text.find("topic_template: ~"), std::string::npos) << text;
  EXPECT_NE(text.find("on_bad_row: dead_letter"), std::string::npos) << text;
  EXPECT_NE(text.find("null_payload: dead_letter"), std::string::npos) << text;
}

}  // namespace
