// Secrets never reach check-config's output or a log line.

#include <gtest/gtest.h>

#include <string>

#include "config/config.h"

namespace {

using config::redact_dsn;

TEST(ConfigRedactDsn, ConninfoPasswordUnquoted) {
  EXPECT_EQ(redact_dsn("host=db user=relay password=hunter2 dbname=app"),
            "host=db user=relay password=**** dbname=app");
}

TEST(ConfigRedactDsn, ConninfoPasswordQuotedWithEscapesAndSpaces) {
  EXPECT_EQ(redact_dsn(R"(password='it\'s a secret' host=db)"), "password=**** host=db");
  EXPECT_EQ(redact_dsn(R"(host=db password = 'x y\\' port=5432)"),
            "host=db password = **** port=5432");
}

TEST(ConfigRedactDsn, ConninfoPasswordAtTheEndAndEmpty) {
  EXPECT_EQ(redact_dsn("host=db password=secret"), "host=db password=****");
  EXPECT_EQ(redact_dsn("host=db password=''"), "host=db password=****");
}

TEST(ConfigRedactDsn, ConninfoSslPasswordIsASecretToo) {
  EXPECT_EQ(redact_dsn("host=db sslpassword=keypass sslmode=verify-full"),
            "host=db sslpassword=**** sslmode=verify-full");
}

TEST(ConfigRedactDsn, KeywordsThatOnlyContainPasswordAreKept) {
  EXPECT_EQ(redact_dsn("host=db passfile=/home/relay/.pgpass user=password"),
            "host=db passfile=/home/relay/.pgpass user=password");
}

TEST(ConfigRedactDsn, QuotedPasswordFollowedDirectlyByAPairKeepsThePair) {
  EXPECT_EQ(redact_dsn("password='x'host=db"), "password=**** host=db");
}

TEST(ConfigRedactDsn, RedactingTwiceChangesNothing) {
  for (const char* dsn : {"host=db password='a b'port=1", "postgresql://u:p@h/d?password=x",
                          "host=db junk", "dbname='host=x password=y'", "password=\\ x=y", ""}) {
    EXPECT_EQ(redact_dsn(redact_dsn(dsn)), redact_dsn(dsn)) << dsn;
  }
}

TEST(ConfigRedactDsn, UnterminatedQuoteHidesTheRest) {
  EXPECT_EQ(redact_dsn("host=db password='abc host=x"), "host=db password=****");
}

TEST(ConfigRedactDsn, MalformedConninfoHidesTheRest) {
  EXPECT_EQ(redact_dsn("host=db secret-without-equals password"), "host=db ****");
}

TEST(ConfigRedactDsn, DbnameHoldingAConnectionStringIsHidden) {
  EXPECT_EQ(redact_dsn("dbname='postgresql://u:p@h/db' user=x"), "dbname=**** user=x");
  EXPECT_EQ(redact_dsn("dbname=app"), "dbname=app");
}

TEST(ConfigRedactDsn, UriUserinfoPassword) {
  EXPECT_EQ(redact_dsn("postgresql://relay:hunter2@db:5432/app?sslmode=require"),
            "postgresql://relay:****@db:5432/app?sslmode=require");
  EXPECT_EQ(redact_dsn("postgres://relay:pw@db/app"), "postgres://relay:****@db/app");
}

TEST(ConfigRedactDsn, UriWithoutPasswordIsUnchanged) {
  EXPECT_EQ(redact_dsn("postgresql://relay@db:5432/app"), "postgresql://relay@db:5432/app");
  EXPECT_EQ(redact_dsn("postgresql://db:5432/app"), "postgresql://db:5432/app");
  EXPECT_EQ(redact_dsn("postgresql://"), "postgresql://");
}

TEST(ConfigRedactDsn, UriPasswordWithUnencodedAtAndSlash) {
  EXPECT_EQ(redact_dsn("postgresql://relay:p@ss/w@db/app"), "postgresql://relay:****@db/app");
}

TEST(ConfigRedactDsn, UriQueryPasswords) {
  EXPECT_EQ(redact_dsn("postgresql://db/app?user=relay&password=pw&sslpassword=kp"),
            "postgresql://db/app?user=relay&password=****&sslpassword=****");
  EXPECT_EQ(redact_dsn("postgresql://db/app?pass%77ord=pw"), "postgresql://db/app?pass%77ord=****");
}

TEST(ConfigRedactDsn, EmptyAndPasswordlessConninfoAreUnchanged) {
  EXPECT_EQ(redact_dsn(""), "");
  EXPECT_EQ(redact_dsn("  host=db  port=5432 "), "  host=db  port=5432 ");
}

TEST(ConfigSecretProperty, MatchesPasswordsSecretsAndOauthbearer) {
  for (const char* key :
       {"sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret", "SASL.PASSWORD", "ssl.key.pem"}) {
    EXPECT_TRUE(config::is_secret_property(key)) << key;
  }
  for (const char* key : {"sasl.username", "linger.ms", "security.protocol", "ssl.ca.location"}) {
    EXPECT_FALSE(config::is_secret_property(key)) << key;
  }
}

TEST(ConfigDescribeRedaction, HidesDsnPasswordAndSecretProperties) {
  auto loaded = config::load_string(R"(
postgres:
  dsn: "host=db user=relay password=pg-secret-1"
kafka:
  properties:
    sasl.username: relay
    sasl.password: kafka-secret-2
    sasl.oauthbearer.client.secret: kafka-secret-3
    ssl.key.password: kafka-secret-4
)",
                                    "r.yaml", [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(std::holds_alternative<config::Config>(loaded));
  const std::string text = config::describe(std::get<config::Config>(loaded));
  for (const char* secret : {"pg-secret-1", "kafka-secret-2", "kafka-secret-3", "kafka-secret-4"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " leaked:\n" << text;
  }
  EXPECT_NE(text.find("password=****"), std::string::npos) << text;
  EXPECT_NE(text.find("sasl.password: \"****\""), std::string::npos) << text;
  EXPECT_NE(text.find("sasl.username: relay"), std::string::npos) << text;
}

// C0 8C is an overlong form of a form feed: it must not come out as one,
// or the DSN would load back split at whitespace the file never had.
TEST(ConfigDescribeRedaction, MalformedUtf8IsReplacedNotDecoded) {
  const auto no_env = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto loaded = config::load_string(
      "postgres:\n  dsn: \"host=db dbname=a\xC0\x8C\xFF" "b password=pg-secret-1\"\n", "r.yaml",
      no_env);
  ASSERT_TRUE(std::holds_alternative<config::Config>(loaded));
  const std::string text = config::describe(std::get<config::Config>(loaded));
  EXPECT_NE(text.find("dbname=a\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" "b password=****"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("\\f"), std::string::npos) << text;
  EXPECT_EQ(text.find("pg-secret-1"), std::string::npos) << text;
  auto again = config::load_string(text, "describe", no_env);
  ASSERT_TRUE(std::holds_alternative<config::Config>(again)) << text;
  EXPECT_EQ(config::describe(std::get<config::Config>(again)), text);
}

TEST(ConfigDescribeRedaction, ErrorsNeverQuoteTheDsn) {
  auto loaded = config::load_string("postgres:\n  dsn: {password: hunter2}\n", "r.yaml",
                                    [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(std::holds_alternative<config::LoadFailure>(loaded));
  for (const auto& d : std::get<config::LoadFailure>(loaded).diagnostics) {
    EXPECT_EQ(d.message.find("hunter2"), std::string::npos) << d.format();
  }
}

// The messages below are libpq's own (libpq 15), for the DSNs beside them.
using config::redact_libpq_message;

TEST(ConfigRedactLibpqMessage, PercentEncodedPasswordTokenIsHidden) {
  EXPECT_EQ(redact_libpq_message(R"(invalid percent-encoded token: "se%zzcret")",
                                 "postgresql://relay:se%zzcret@db/app"),
            R"(invalid percent-encoded token: "****")");
}

TEST(ConfigRedactLibpqMessage, WholeUriQuotedIsHidden) {
  const std::string dsn = "postgresql://relay:hunter2@[::1/app";
  const std::string out = redact_libpq_message(
      "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"" +
          dsn + "\"",
      dsn);
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_EQ(
      out,
      R"(end of string reached when looking for matching "]" in IPv6 host address in URI: "****")");
}

TEST(ConfigRedactLibpqMessage, HalfOfAnUnquotedPasswordWithASpaceIsHidden) {
  EXPECT_EQ(redact_libpq_message(R"(missing "=" after "def" in connection info string)",
                                 "host=db password=abc def"),
            R"(missing "=" after "****" in connection info string)");
}

TEST(ConfigRedactLibpqMessage, PieceOfAPasswordWithASlashIsHidden) {
  EXPECT_EQ(redact_libpq_message(R"(invalid port number: "pa")", "postgresql://u:pa/ss@db/app"),
            R"(invalid port number: "****")");
}

TEST(ConfigRedactLibpqMessage, PasswordHoldingAQuoteIsHiddenWhole) {
  const std::string out = redact_libpq_message(R"(invalid percent-encoded token: "a"b%zz")",
                                               R"(postgresql://u:a"b%zz@db)");
  EXPECT_EQ(out, R"(invalid percent-encoded token: "****")");
}

TEST(ConfigRedactLibpqMessage, QuotedPiecesWithoutSecretsAreKept) {
  EXPECT_EQ(redact_libpq_message(R"(invalid sslmode value: "verfy-full")",
                                 "host=db password=x sslmode=verfy-full"),
            R"(invalid sslmode value: "verfy-full")");
  EXPECT_EQ(
      redact_libpq_message(
          R"(connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  password authentication failed for user "relay")",
          "host=db user=relay password=relay"),
      R"(connection to server at "db" (10.0.0.1), port 5432 failed: FATAL:  password authentication failed for user "relay")");
}

}  // namespace
