// Every kind of mistake a configuration can hold, each pinned to the exact
// file:line:column and wording a user sees from check-config.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace {

using config::Diagnostic;

constexpr const char* kFile = "relay.yaml";

std::optional<std::string> no_env(const std::string&) {
  return std::nullopt;
}

std::vector<Diagnostic> errors_of(const std::string& yaml) {
  auto loaded = config::load_string(yaml, kFile, no_env);
  if (std::holds_alternative<config::Config>(loaded)) {
    ADD_FAILURE() << "expected the configuration to be rejected:\n" << yaml;
    return {};
  }
  return std::get<config::LoadFailure>(loaded).diagnostics;
}

// Asserts exactly one diagnostic, at line:column, containing `text`.
void expect_one_error(const std::string& yaml, int line, int column, const std::string& text) {
  const auto diagnostics = errors_of(yaml);
  ASSERT_EQ(diagnostics.size(), 1u) << [&] {
    std::string all;
    for (const auto& d : diagnostics) all += d.format() + "\n";
    return all;
  }();
  const Diagnostic& d = diagnostics.front();
  EXPECT_EQ(d.file, kFile);
  EXPECT_EQ(d.line, line) << d.format();
  EXPECT_EQ(d.column, column) << d.format();
  EXPECT_NE(d.message.find(text), std::string::npos)
      << "message: " << d.message << "\nexpected to contain: " << text;
}

const std::string kDsn = "postgres:\n  dsn: host=db\n";

TEST(ConfigErrors, SectionThatIsNotAMappingIsReportedAtItsValue) {
  expect_one_error(kDsn + "kafka: [a, b]\n", 3, 8, "kafka: expected a mapping, got a sequence");
}

TEST(ConfigErrors, StringWhereABooleanIsExpectedNamesTheValue) {
  expect_one_error(kDsn + "  create_slot: yes\n", 3, 16,
                   "postgres.create_slot: expected a boolean (true or false), got 'yes'");
}

TEST(ConfigErrors, NonIntegerLimitSaysAnIntegerIsExpected) {
  expect_one_error(kDsn + "limits:\n  max_inflight_messages: lots\n", 4, 26,
                   "limits.max_inflight_messages: expected an integer, got 'lots'");
}

TEST(ConfigErrors, MappingWhereAStringIsExpected) {
  expect_one_error(kDsn + "  slot: {name: x}\n", 3, 9,
                   "postgres.slot: expected a string, got a mapping");
}

TEST(ConfigErrors, UnknownKeyCloseToAKnownOneSuggestsIt) {
  expect_one_error(kDsn + "  slto: x\n", 3, 3,
                   "unknown key 'slto' in 'postgres'; did you mean 'slot'?");
}

TEST(ConfigErrors, UnknownTopLevelKeySuggestsTheSection) {
  expect_one_error(kDsn + "kafak:\n  brokers: b:9092\n", 3, 1,
                   "unknown key 'kafak'; did you mean 'kafka'?");
}

TEST(ConfigErrors, UnknownKeyFarFromAllListsTheKnownKeys) {
  expect_one_error(kDsn + "http:\n  port: 9187\n", 4, 3,
                   "unknown key 'port' in 'http' (expected one of listen, ready_kafka_timeout)");
}

TEST(ConfigErrors, MissingDsnIsReportedAtThePostgresMapping) {
  expect_one_error("kafka: {}\npostgres:\n  slot: s\n", 2, 1,
                   "postgres: missing required key 'dsn'");
}

TEST(ConfigErrors, MissingPostgresSectionIsReportedAtTheTop) {
  expect_one_error("# comment\nkafka: {}\n", 2, 1,
                   "missing required key 'postgres' (postgres.dsn is required)");
}

TEST(ConfigErrors, EmptyDsnIsRejectedWithoutEchoingIt) {
  expect_one_error("postgres: {dsn: ''}\n", 1, 17, "postgres.dsn: must not be empty");
}

TEST(ConfigErrors, DsnWithANulByteIsRejected) {
  expect_one_error("postgres: {dsn: \"host=db\\0 password=x\"}\n", 1, 17,
                   "postgres.dsn: must not contain a NUL byte");
}

TEST(ConfigErrors, PropertyNameOfOtherCharactersOrTooLongIsRejected) {
  expect_one_error("postgres:\n  dsn: host=db\nkafka:\n  properties:\n    \"linger ms\": 5\n", 5, 18,
                   "a property name is letters, digits, '.', '_' and '-', at most 128 characters");
  expect_one_error("postgres:\n  dsn: host=db\nkafka:\n  properties:\n    " +
                       std::string(129, 'x') + ": 5\n",
                   5, 136,
                   "a property name is letters, digits, '.', '_' and '-', at most 128 characters");
}

TEST(ConfigErrors, BadSlotLostPolicyListsTheAllowedValues) {
  expect_one_error("postgres:\n  dsn: host=db\n  on_slot_lost: ignore\n", 3, 17,
                   "postgres.on_slot_lost: expected one of fail, recreate, got 'ignore'");
}

TEST(ConfigErrors, BadEnumValueListsTheAllowedValues) {
  expect_one_error(kDsn + "outbox:\n  on_bad_row: drop\n", 4, 15,
                   "outbox.on_bad_row: expected one of dead_letter, halt, got 'drop'");
}

TEST(ConfigErrors, BadLogLevelListsTheLevels) {
  expect_one_error(kDsn + "log: {level: warning}\n", 3, 14,
                   "log.level: expected one of trace, debug, info, warn, error, got 'warning'");
}

TEST(ConfigErrors, BadDurationShowsTheAcceptedForms) {
  expect_one_error(kDsn + "  status_interval: 10 seconds\n", 3, 20,
                   "postgres.status_interval: expected a duration such as 500ms, 10s, 2m or 1h "
                   "(a bare number means milliseconds), got '10 seconds'");
}

TEST(ConfigErrors, ZeroStatusIntervalIsOutOfRange) {
  expect_one_error(kDsn + "  status_interval: 0s\n", 3, 20,
                   "postgres.status_interval: must be greater than 0, got '0ms'");
}

TEST(ConfigErrors, BackoffMaxBelowMinNamesBoth) {
  expect_one_error(kDsn + "  reconnect_backoff: {min: 5s, max: 1s}\n", 3, 37,
                   "postgres.reconnect_backoff.max: must be at least "
                   "postgres.reconnect_backoff.min (5s), got '1s'");
}

TEST(ConfigErrors, BadSizeShowsTheAcceptedForms) {
  expect_one_error(kDsn + "limits: {max_inflight_bytes: 256 megs}\n", 3, 30,
                   "limits.max_inflight_bytes: expected a size in bytes such as 268435456, "
                   "256MiB or 64MB, got '256 megs'");
}

TEST(ConfigErrors, ZeroLimitMustBePositive) {
  expect_one_error(kDsn + "limits: {max_inflight_messages: 0}\n", 3, 33,
                   "limits.max_inflight_messages: must be greater than 0, got '0'");
}

TEST(ConfigErrors, TooManyInflightMessagesIsOutOfRange) {
  expect_one_error(kDsn + "limits:\n  max_inflight_messages: 20000000\n", 4, 26,
                   "limits.max_inflight_messages: must be at most 10000000, got '20000000'");
}

TEST(ConfigErrors, UppercaseSlotNameIsInvalid) {
  expect_one_error(kDsn + "  slot: Outbox-Relay\n", 3, 9,
                   "postgres.slot: a replication slot name has 1 to 63 characters, each a "
                   "lowercase letter, a digit or an underscore, got 'Outbox-Relay'");
}

TEST(ConfigErrors, SlotNameLongerThan63IsInvalid) {
  expect_one_error(kDsn + "  slot: " + std::string(64, 'a') + "\n", 3, 9,
                   "postgres.slot: a replication slot name has 1 to 63 characters");
}

TEST(ConfigErrors, PublicationNameStartingWithADigitIsInvalid) {
  expect_one_error(kDsn + "  publication: 1pub\n", 3, 16,
                   "postgres.publication: a publication name has 1 to 63 characters");
}

TEST(ConfigErrors, TableWithTwoDotsIsInvalid) {
  expect_one_error(kDsn + "outbox: {table: db.public.outbox}\n", 3, 17,
                   "outbox.table: expected 'table' or 'schema.table', with at most one dot, "
                   "got 'db.public.outbox'");
}

TEST(ConfigErrors, TableWithAnEmptyPartIsInvalid) {
  expect_one_error(kDsn + "outbox: {table: public.}\n", 3, 17,
                   "outbox.table: expected 'table' or 'schema.table', with no empty part");
}

TEST(ConfigErrors, IgnoredRelationWithoutSchemaMustBeQualified) {
  expect_one_error(kDsn + "outbox: {ignore_relations: [public.audit, audit]}\n", 3, 43,
                   "outbox.ignore_relations[1]: must be schema-qualified (schema.table), got "
                   "'audit'");
}

TEST(ConfigErrors, IgnoredRelationThatIsTheOutboxIsRejected) {
  expect_one_error(kDsn + "outbox: {ignore_relations: [public.outbox]}\n", 3, 29,
                   "is the outbox table itself, got 'public.outbox'");
}

TEST(ConfigErrors, IgnoredRelationListedTwiceIsRejected) {
  expect_one_error(kDsn + "outbox: {ignore_relations: [s.a, s.a]}\n", 3, 34,
                   "is listed twice, got 's.a'");
}

TEST(ConfigErrors, PublicationCheckIntervalBelow100msIsOutOfRange) {
  expect_one_error(kDsn + "  publication_check_interval: 10ms\n", 3, 31,
                   "postgres.publication_check_interval: must be at least 100ms, got '10ms'");
}

TEST(ConfigErrors, ColumnMappedTwiceIsReportedAtTheSecondRole) {
  expect_one_error(kDsn + "outbox:\n  columns:\n    id: event_id\n    key: event_id\n", 6, 10,
                   "outbox.columns.key: column 'event_id' is mapped twice, also as columns.id");
}

TEST(ConfigErrors, ColumnMappedOntoAnotherRolesDefaultSaysSo) {
  expect_one_error(kDsn + "outbox: {columns: {payload: id}}\n", 3, 29,
                   "outbox.columns.payload: column 'id' is mapped twice, also as columns.id "
                   "(its default)");
}

TEST(ConfigErrors, HeaderColumnListedTwice) {
  expect_one_error(kDsn + "outbox:\n  header_columns: [tenant, region, tenant]\n", 4, 36,
                   "outbox.header_columns[2]: column 'tenant' is listed twice");
}

TEST(ConfigErrors, HeaderNameOfTheRelaysOwnIsRefused) {
  expect_one_error(kDsn + "outbox:\n  header_columns: {eventType: type, outbox-id: id}\n", 4, 37,
                   "outbox.header_columns.outbox-id: header names starting with 'outbox-' are "
                   "the relay's own");
}

TEST(ConfigErrors, HeaderNameThatIsNotPrintableAscii) {
  expect_one_error(kDsn + "outbox:\n  header_columns:\n    \"tab\\there\": type\n", 5, 5,
                   "outbox.header_columns.tab\there: a header name is printable ASCII characters");
  expect_one_error(kDsn + "outbox:\n  header_columns:\n    \u00e9t\u00e9: type\n", 5, 5,
                   "a header name is printable ASCII characters");
}

TEST(ConfigErrors, HeaderMappedToAnEmptyColumn) {
  expect_one_error(kDsn + "outbox:\n  header_columns:\n    eventType: ''\n", 5, 16,
                   "outbox.header_columns.eventType: a column name must not be empty");
}

TEST(ConfigErrors, HeaderNamedTwice) {
  expect_one_error(kDsn + "outbox:\n  header_columns:\n    eventType: type\n    eventType: kind\n",
                   6, 5, "duplicate key 'outbox.header_columns.eventType'");
}

TEST(ConfigErrors, HeaderColumnsGivenAsOneString) {
  expect_one_error(kDsn + "outbox: {header_columns: tenant}\n", 3, 26,
                   "outbox.header_columns: expected a sequence of columns or a mapping of header "
                   "name to column, got a string");
}

TEST(ConfigErrors, UnknownNullPayloadPolicy) {
  expect_one_error(kDsn + "outbox: {null_payload: skip}\n", 3, 24,
                   "outbox.null_payload: expected one of dead_letter, tombstone, got 'skip'");
}

TEST(ConfigErrors, UnterminatedTopicTemplatePlaceholder) {
  expect_one_error(kDsn + "outbox: {topic_template: 'events.${topic'}\n", 3, 26,
                   "outbox.topic_template: unterminated '${' at character 8, "
                   "got 'events.${topic'");
}

TEST(ConfigErrors, TopicTemplatePlaceholderMustBeAnIdentifier) {
  expect_one_error(kDsn + "outbox: {topic_template: 'a.${my-col}'}\n", 3, 26,
                   "outbox.topic_template: placeholder '${my-col}' is not a column name");
}

TEST(ConfigErrors, TopicTemplateStrayClosingBrace) {
  expect_one_error(kDsn + "outbox: {topic_template: 'a}b'}\n", 3, 26,
                   "outbox.topic_template: '}' without a matching '${' at character 2");
}

TEST(ConfigErrors, TopicTemplateLiteralMustBeTopicCharacters) {
  expect_one_error(kDsn + "outbox: {topic_template: 'a/${t}'}\n", 3, 26,
                   "character '/', which is not allowed in a Kafka topic name");
}

TEST(ConfigErrors, DeadLetterTopicWithASpaceIsInvalid) {
  expect_one_error(kDsn + "outbox:\n  dead_letter_topic: dead letters\n", 4, 22,
                   "outbox.dead_letter_topic: a Kafka topic name has 1 to 249 characters");
}

TEST(ConfigErrors, DeadLetterTopicLongerThan249IsInvalid) {
  expect_one_error(kDsn + "outbox: {dead_letter_topic: " + std::string(250, 't') + "}\n", 3, 29,
                   "outbox.dead_letter_topic: a Kafka topic name has 1 to 249 characters");
}

TEST(ConfigErrors, ListenWithoutPortIsNotHostPort) {
  expect_one_error(kDsn + "http: {listen: localhost}\n", 3, 16,
                   "http.listen: expected host:port, or \"\" to disable, got 'localhost'");
}

TEST(ConfigErrors, ListenWithPortOutOfRange) {
  expect_one_error(kDsn + "http: {listen: '0.0.0.0:70000'}\n", 3, 16,
                   "http.listen: expected host:port with a port from 0 to 65535");
}

TEST(ConfigErrors, DuplicateKeyNamesTheFirstOccurrence) {
  expect_one_error(kDsn + "  slot: a\n  slot: b\n", 4, 3,
                   "duplicate key 'postgres.slot' (first defined at line 3, column 3)");
}

TEST(ConfigErrors, DuplicateSectionIsReported) {
  expect_one_error(kDsn + "log: {}\nlog: {}\n", 4, 1,
                   "duplicate key 'log' (first defined at line 3, column 1)");
}

TEST(ConfigErrors, YamlSyntaxErrorCarriesTheParserPosition) {
  expect_one_error(kDsn + "kafka: {brokers: [a, b}\n", 3, 23, "invalid YAML: ");
}

TEST(ConfigErrors, UnquotedVariableInAFlowMappingGetsAHint) {
  expect_one_error(kDsn + "kafka: {brokers: ${BROKERS}}\n", 3, 19,
                   "invalid YAML: end of map flow not found (inside {...} or [...], quote a "
                   "value that contains ${VAR})");
}

TEST(ConfigErrors, BadIndentationIsASyntaxError) {
  expect_one_error("postgres:\n  dsn: x\n slot: y\n", 3, 2, "invalid YAML: end of map not found");
}

TEST(ConfigErrors, TopLevelSequenceIsNotAMapping) {
  expect_one_error("- postgres\n- kafka\n", 1, 1,
                   "expected a mapping at the top level, got a sequence");
}

TEST(ConfigErrors, TopLevelScalarIsNotAMapping) {
  expect_one_error("just text\n", 1, 1, "expected a mapping at the top level, got a string");
}

TEST(ConfigErrors, EmptyDocumentIsReported) {
  expect_one_error("", 1, 1, "the configuration is empty");
}

TEST(ConfigErrors, CommentsOnlyIsEmpty) {
  expect_one_error("# nothing here\n\n", 1, 1, "the configuration is empty");
}

TEST(ConfigErrors, SecondDocumentIsReportedAtItsSeparator) {
  expect_one_error(kDsn + "---\nlog: {}\n", 3, 1, "expected one YAML document, found more");
}

TEST(ConfigErrors, ExplicitDocumentMarkersAroundOneDocumentAreFine) {
  auto loaded = config::load_string("---\n" + kDsn + "...\n---\n", kFile, no_env);
  EXPECT_TRUE(std::holds_alternative<config::Config>(loaded));
}

// yaml-cpp 0.7's LoadAll loops forever on this input; found by fuzzing.
TEST(ConfigErrors, StrayCommaAtDocumentLevelIsASyntaxError) {
  expect_one_error(",a: {b}\n", 1, 1, "invalid YAML: unexpected ','");
  expect_one_error(kDsn + "---\n,\n", 4, 1, "invalid YAML: unexpected ','");
}

TEST(ConfigErrors, MergeKeysAreNotSupported) {
  const auto diagnostics = errors_of("postgres:\n  <<: {dsn: x}\n");
  ASSERT_EQ(diagnostics.size(), 2u);
  EXPECT_EQ(diagnostics[0].format(), "relay.yaml:1:1: postgres: missing required key 'dsn'");
  EXPECT_EQ(diagnostics[1].format(),
            "relay.yaml:2:3: unknown key '<<' in 'postgres'; YAML merge keys are not supported");
}

TEST(ConfigErrors, NullValueIsReportedAtItsKey) {
  expect_one_error(kDsn + "  slot:\nkafka: {}\n", 3, 3,
                   "postgres.slot: expected a string, got null");
}

TEST(ConfigErrors, PropertyValueMustBeAScalarAndIsNotEchoed) {
  expect_one_error(kDsn + "kafka:\n  properties:\n    sasl.password: [hunter2]\n", 5, 20,
                   "kafka.properties.sasl.password: expected a scalar (a string, number or "
                   "boolean), got a sequence");
  const auto diagnostics =
      errors_of(kDsn + "kafka:\n  properties:\n    sasl.password: [hunter2]\n");
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].message.find("hunter2"), std::string::npos);
}

TEST(ConfigErrors, BootstrapServersPropertyConflictsWithBrokers) {
  expect_one_error(kDsn + "kafka: {properties: {bootstrap.servers: 'k:9092'}}\n", 3, 41,
                   "kafka.properties.bootstrap.servers: set the brokers with kafka.brokers");
}

TEST(ConfigErrors, DurationLongerThanADayIsOutOfRange) {
  expect_one_error(kDsn + "kafka: {drain_timeout: 2d}\n", 3, 24, "expected a duration");
  expect_one_error(kDsn + "kafka: {drain_timeout: 25h}\n", 3, 24,
                   "kafka.drain_timeout: must be at most 24h, got '25h'");
}

TEST(ConfigErrors, HugeNumberIsOutOfRangeNotMalformed) {
  expect_one_error(kDsn + "limits: {max_inflight_messages: 99999999999999999999}\n", 3, 33,
                   "limits.max_inflight_messages: number is too large");
}

TEST(ConfigErrors, FourMistakesYieldFourDiagnosticsInFileOrder) {
  const std::string yaml =
      "postgres:\n"              // 1
      "  dsn: host=db\n"         // 2
      "  slot: Bad-Slot\n"       // 3  invalid slot name
      "  create_slot: maybe\n"   // 4  not a boolean
      "kafka:\n"                 // 5
      "  drain_timeout: soon\n"  // 6  bad duration
      "outbox:\n"                // 7
      "  on_bad_rows: halt\n";   // 8  unknown key
  const auto diagnostics = errors_of(yaml);
  ASSERT_EQ(diagnostics.size(), 4u);
  EXPECT_EQ(diagnostics[0].format(),
            "relay.yaml:3:9: postgres.slot: a replication slot name has 1 to 63 characters, each "
            "a lowercase letter, a digit or an underscore, got 'Bad-Slot'");
  EXPECT_EQ(diagnostics[1].format(),
            "relay.yaml:4:16: postgres.create_slot: expected a boolean (true or false), "
            "got 'maybe'");
  EXPECT_EQ(diagnostics[2].line, 6);
  EXPECT_EQ(diagnostics[2].column, 18);
  EXPECT_EQ(diagnostics[3].format(),
            "relay.yaml:8:3: unknown key 'on_bad_rows' in 'outbox'; did you mean 'on_bad_row'?");
}

TEST(ConfigErrors, FixtureFileWithFourMistakesReportsAllOfThem) {
  const std::string path = std::string(OUTBOX_TEST_DATA_DIR) + "/config/four_mistakes.yaml";
  auto loaded = config::load_file(path);
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  const auto& diagnostics = std::get<config::LoadFailure>(loaded).diagnostics;
  ASSERT_EQ(diagnostics.size(), 4u);
  for (const auto& d : diagnostics) {
    EXPECT_EQ(d.file, path);
    EXPECT_GT(d.line, 0) << d.format();
  }
  EXPECT_EQ(diagnostics[0].format(), path + ":5:1: postgres: missing required key 'dsn'");
  EXPECT_EQ(diagnostics[1].format(), path +
                                         ":9:20: postgres.status_interval: expected a duration "
                                         "such as 500ms, 10s, 2m or 1h (a bare number means "
                                         "milliseconds), got '1 second'");
  EXPECT_EQ(diagnostics[2].format(), path +
                                         ":13:22: outbox.dead_letter_topic: a Kafka topic "
                                         "name has 1 to 249 characters, each a letter, a "
                                         "digit, '.', '_' or '-', got 'dead letters'");
  EXPECT_EQ(diagnostics[3].format(),
            path + ":16:11: log.format: expected one of text, json, got 'yaml'");
}

TEST(ConfigErrors, MissingFileIsReportedWithoutPosition) {
  auto loaded = config::load_file("/nonexistent/outbox-relay.yaml");
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  const auto& diagnostics = std::get<config::LoadFailure>(loaded).diagnostics;
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].format(),
            "/nonexistent/outbox-relay.yaml: cannot open the configuration file: No such file or "
            "directory");
}

TEST(ConfigErrors, DirectoryIsNotAConfigFile) {
  auto loaded = config::load_file(OUTBOX_TEST_DATA_DIR);
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  EXPECT_NE(std::get<config::LoadFailure>(loaded).diagnostics.at(0).message.find("directory"),
            std::string::npos);
}

TEST(ConfigErrors, EmptyFileIsReportedAtItsStart) {
  const std::string path = std::string(OUTBOX_TEST_DATA_DIR) + "/config/empty.yaml";
  auto loaded = config::load_file(path);
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  const auto& diagnostics = std::get<config::LoadFailure>(loaded).diagnostics;
  ASSERT_EQ(diagnostics.size(), 1u);
  EXPECT_EQ(diagnostics[0].format(),
            path + ":1:1: the configuration is empty; it needs at least postgres.dsn");
}

TEST(ConfigErrors, DiagnosticWithoutPositionFormatsWithoutNumbers) {
  EXPECT_EQ((Diagnostic{"a.yaml", 0, 0, "gone"}).format(), "a.yaml: gone");
  EXPECT_EQ((Diagnostic{"a.yaml", 3, 7, "bad"}).format(), "a.yaml:3:7: bad");
}

}  // namespace
