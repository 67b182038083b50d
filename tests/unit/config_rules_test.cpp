// The value grammars on their own: integers, booleans, durations, sizes,
// names, the topic template and the "did you mean" distance.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/errc.h"
#include "config/names.h"
#include "config/suggest.h"
#include "config/topic_template.h"
#include "config/units.h"

namespace {

using namespace std::chrono_literals;

template <typename T>
std::error_code code_of(const common::Result<T>& r) {
  return r.ok() ? std::error_code{} : r.error().code;
}

TEST(ConfigUnits, IntegersAreDecimalOnly) {
  EXPECT_EQ(*config::parse_integer("42"), 42);
  EXPECT_EQ(*config::parse_integer("+7"), 7);
  EXPECT_EQ(*config::parse_integer("-3"), -3);
  EXPECT_EQ(*config::parse_integer("-9223372036854775808"), INT64_MIN);
  EXPECT_EQ(*config::parse_integer("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(code_of(config::parse_integer("9223372036854775808")), config::errc::out_of_range);
  for (const char* bad : {"", "-", "1e6", "0x10", "1_000", " 1", "1.0", "+-1"}) {
    EXPECT_EQ(code_of(config::parse_integer(bad)), config::errc::malformed) << bad;
  }
}

TEST(ConfigUnits, BooleansAreTheCoreSchemaOnes) {
  EXPECT_TRUE(*config::parse_bool("true"));
  EXPECT_TRUE(*config::parse_bool("TRUE"));
  EXPECT_FALSE(*config::parse_bool("False"));
  for (const char* bad : {"yes", "no", "on", "off", "1", "0", "y", "tRUE", ""}) {
    EXPECT_FALSE(config::parse_bool(bad).ok()) << bad;
  }
}

TEST(ConfigUnits, DurationsTakeOneUnitOrMilliseconds) {
  EXPECT_EQ(*config::parse_duration("0"), 0ms);
  EXPECT_EQ(*config::parse_duration("1500"), 1500ms);
  EXPECT_EQ(*config::parse_duration("500ms"), 500ms);
  EXPECT_EQ(*config::parse_duration("10s"), 10s);
  EXPECT_EQ(*config::parse_duration("10 s"), 10s);
  EXPECT_EQ(*config::parse_duration("2m"), 2min);
  EXPECT_EQ(*config::parse_duration("3h"), 3h);
  for (const char* bad : {"", "s", "-1s", "1.5s", "10S", "1m30s", "10 seconds", "5d", "10  s"}) {
    EXPECT_EQ(code_of(config::parse_duration(bad)), config::errc::malformed) << bad;
  }
  EXPECT_EQ(code_of(config::parse_duration("9999999999999999h")), config::errc::out_of_range);
  EXPECT_EQ(code_of(config::parse_duration("99999999999999999999")), config::errc::out_of_range);
}

TEST(ConfigUnits, SizesTakeDecimalAndBinaryUnits) {
  EXPECT_EQ(*config::parse_size("0"), 0u);
  EXPECT_EQ(*config::parse_size("123"), 123u);
  EXPECT_EQ(*config::parse_size("123B"), 123u);
  EXPECT_EQ(*config::parse_size("2kB"), 2000u);
  EXPECT_EQ(*config::parse_size("2KB"), 2000u);
  EXPECT_EQ(*config::parse_size("64MB"), 64000000u);
  EXPECT_EQ(*config::parse_size("64mb"), 64000000u);
  EXPECT_EQ(*config::parse_size("3GB"), 3000000000u);
  EXPECT_EQ(*config::parse_size("1TB"), 1000000000000u);
  EXPECT_EQ(*config::parse_size("4KiB"), 4096u);
  EXPECT_EQ(*config::parse_size("256MiB"), 268435456u);
  EXPECT_EQ(*config::parse_size("256 MiB"), 268435456u);
  EXPECT_EQ(*config::parse_size("2GiB"), 2147483648u);
  EXPECT_EQ(*config::parse_size("1TiB"), 1099511627776u);
  for (const char* bad : {"", "MiB", "1.5GiB", "-1", "10 megabytes", "1M", "1Mi", "0x100"}) {
    EXPECT_EQ(code_of(config::parse_size(bad)), config::errc::malformed) << bad;
  }
  EXPECT_EQ(code_of(config::parse_size("99999999TiB")), config::errc::out_of_range);
}

TEST(ConfigUnits, FormattingPicksTheLargestExactUnitAndParsesBack) {
  EXPECT_EQ(config::format_duration(0ms), "0ms");
  EXPECT_EQ(config::format_duration(200ms), "200ms");
  EXPECT_EQ(config::format_duration(1500ms), "1500ms");
  EXPECT_EQ(config::format_duration(30s), "30s");
  EXPECT_EQ(config::format_duration(120s), "2m");
  EXPECT_EQ(config::format_duration(24h), "24h");
  EXPECT_EQ(config::format_size(0), "0");
  EXPECT_EQ(config::format_size(1000), "1kB");
  EXPECT_EQ(config::format_size(268435456), "256MiB");
  EXPECT_EQ(config::format_size(64000000), "64MB");
  EXPECT_EQ(config::format_size(1500), "1500");
  EXPECT_EQ(config::format_size(2000), "2kB");
  EXPECT_EQ(config::format_size(1024000), "1024kB");
  EXPECT_EQ(config::format_size(3 * 1024), "3KiB");
  for (uint64_t bytes : std::vector<uint64_t>{1, 1024, 1536, 1ULL << 40, 5ULL << 41, UINT64_MAX}) {
    EXPECT_EQ(*config::parse_size(config::format_size(bytes)), bytes);
  }
}

TEST(ConfigNames, SlotNamesFollowPostgres) {
  EXPECT_TRUE(config::check_slot_name("outbox_relay").ok());
  EXPECT_TRUE(config::check_slot_name("1slot").ok());
  EXPECT_TRUE(config::check_slot_name(std::string(63, 'a')).ok());
  for (const std::string& bad :
       std::vector<std::string>{"", "Slot", "my-slot", "slot name", std::string(64, 'a')}) {
    EXPECT_EQ(code_of(config::check_slot_name(bad)), config::errc::invalid_name) << bad;
  }
}

TEST(ConfigNames, PublicationNamesAreLowercaseIdentifiers) {
  EXPECT_TRUE(config::check_publication_name("outbox_pub").ok());
  EXPECT_TRUE(config::check_publication_name("_p1").ok());
  for (const char* bad : {"", "1pub", "Pub", "pub-1", "pub.x"}) {
    EXPECT_FALSE(config::check_publication_name(bad).ok()) << bad;
  }
}

TEST(ConfigNames, TableNamesHaveAtMostOneDot) {
  EXPECT_TRUE(config::check_table_name("outbox").ok());
  EXPECT_TRUE(config::check_table_name("public.outbox").ok());
  for (const char* bad : {"", ".", "public.", ".outbox", "a.b.c", "a..b"}) {
    EXPECT_FALSE(config::check_table_name(bad).ok()) << bad;
  }
}

TEST(ConfigNames, TopicNamesFollowKafka) {
  EXPECT_TRUE(config::check_topic_name("outbox.dead-letter").ok());
  EXPECT_TRUE(config::check_topic_name("A_b-9.z").ok());
  EXPECT_TRUE(config::check_topic_name(std::string(249, 't')).ok());
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "a b", "a/b", "é", std::string(250, 't')}) {
    EXPECT_FALSE(config::check_topic_name(bad).ok()) << bad;
  }
}

TEST(ConfigNames, ListenAddresses) {
  for (const char* good : {"", "127.0.0.1:9187", "0.0.0.0:0", "localhost:65535", "[::]:9187",
                           "[fe80::1%eth0]:80", "relay_1.example.com:8080"}) {
    EXPECT_TRUE(config::check_listen_address(good).ok()) << good;
  }
  for (const char* bad : {"9187", ":9187", "host:", "host:-1", "host:65536", "host:+80", "host:80x",
                          "::1:9187", "[::1:9187", "[]:80", "a b:80"}) {
    EXPECT_FALSE(config::check_listen_address(bad).ok()) << bad;
  }
}

using config::TemplatePart;
constexpr auto kLiteral = TemplatePart::Kind::kLiteral;
constexpr auto kColumn = TemplatePart::Kind::kColumn;

TEST(ConfigTopicTemplate, SplitsLiteralsAndColumns) {
  auto parts = config::parse_topic_template("orders.${aggregate_type}.v${version}");
  ASSERT_TRUE(parts.ok()) << parts.error().message;
  const std::vector<TemplatePart> expected = {
      {kLiteral, "orders."}, {kColumn, "aggregate_type"}, {kLiteral, ".v"}, {kColumn, "version"}};
  EXPECT_EQ(*parts, expected);
  EXPECT_EQ(*config::parse_topic_template("fixed-topic"),
            (std::vector<TemplatePart>{{kLiteral, "fixed-topic"}}));
  EXPECT_EQ(*config::parse_topic_template("${a}${b}"),
            (std::vector<TemplatePart>{{kColumn, "a"}, {kColumn, "b"}}));
}

TEST(ConfigTopicTemplate, SyntaxErrorsNameTheCharacter) {
  auto message = [](std::string_view text) {
    auto parts = config::parse_topic_template(text);
    return parts.ok() ? std::string("ok") : parts.error().message;
  };
  EXPECT_EQ(message("a.${b"), "unterminated '${' at character 3");
  EXPECT_EQ(message("a.${}"), "empty placeholder '${}' at character 3");
  EXPECT_EQ(message("${9x}"),
            "placeholder '${9x}' is not a column name (letters, digits and underscores, not "
            "starting with a digit) at character 1");
  EXPECT_EQ(message("a$b"), "'$' that does not start a ${column} placeholder at character 2");
  EXPECT_EQ(message("$${x}"), "'$' that does not start a ${column} placeholder at character 1");
  EXPECT_EQ(message("a}"), "'}' without a matching '${' at character 2");
  EXPECT_EQ(message("{a}"),
            "character '{', which is not allowed in a Kafka topic name (letters, digits, '.', "
            "'_', '-') at character 1");
  EXPECT_EQ(message(std::string("a\x01")),
            "byte 0x01, which is not allowed in a Kafka topic name (letters, digits, '.', '_', "
            "'-') at character 2");
  EXPECT_NE(message("").find("empty"), std::string::npos);
  EXPECT_NE(message(std::string(250, 'x')).find("longer"), std::string::npos);
  EXPECT_EQ(message(std::string(249, 'x') + "${c}"), "ok");
}

TEST(ConfigSuggest, EditDistanceCountsAdjacentSwapsAsOne) {
  EXPECT_EQ(config::edit_distance("", ""), 0u);
  EXPECT_EQ(config::edit_distance("slot", "slot"), 0u);
  EXPECT_EQ(config::edit_distance("slto", "slot"), 1u);
  EXPECT_EQ(config::edit_distance("kafak", "kafka"), 1u);
  EXPECT_EQ(config::edit_distance("sot", "slot"), 1u);
  EXPECT_EQ(config::edit_distance("slots", "slot"), 1u);
  EXPECT_EQ(config::edit_distance("plot", "slot"), 1u);
  EXPECT_EQ(config::edit_distance("ca", "abc"), 3u);  // optimal string alignment
  EXPECT_EQ(config::edit_distance("", "abc"), 3u);
}

TEST(ConfigSuggest, ClosestMatchWithinTwoEdits) {
  constexpr std::string_view kKeys[] = {"dsn", "slot", "publication", "create_slot"};
  EXPECT_EQ(config::closest_match("slto", kKeys), "slot");
  EXPECT_EQ(config::closest_match("publicaton", kKeys), "publication");
  EXPECT_EQ(config::closest_match("create-slot", kKeys), "create_slot");
  EXPECT_EQ(config::closest_match("DSN", kKeys), std::nullopt);  // three substitutions
  EXPECT_EQ(config::closest_match("hostname", kKeys), std::nullopt);
}

}  // namespace
