// Configured names read as PostgreSQL's parser reads identifiers.
#include <gtest/gtest.h>

#include <string>

#include "relay/errc.h"
#include "relay/sql_identifier.h"

namespace relay {
namespace {

std::string resolved(std::string_view text) {
  auto r = resolve_identifier(text, "name");
  EXPECT_TRUE(r.ok()) << text << ": " << r.error().describe();
  return r.ok() ? *r : "";
}

TEST(SqlIdentifier, UnquotedFoldsAsciiLettersOnly) {
  EXPECT_EQ(resolved("Outbox_Ä"), "outbox_Ä");
}

TEST(SqlIdentifier, QuotedKeepsCaseDotsAndDoubledQuotes) {
  EXPECT_EQ(resolved(R"("My.Table")"), "My.Table");
  EXPECT_EQ(resolved(R"("a""b")"), "a\"b");
}

TEST(SqlIdentifier, EmptyOrUnterminatedIsAConfigErrorNamingIt) {
  for (std::string_view bad : {"", "\"", "\"\"", "\"open", "\"a\"b"}) {
    auto r = resolve_identifier(bad, "outbox.columns.id");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, errc::invalid_config);
    EXPECT_EQ(r.error().message.rfind("outbox.columns.id ", 0), 0u) << r.error().message;
  }
}

TEST(SqlIdentifier, QualifyingDotIsTheFirstOutsideQuotes) {
  EXPECT_EQ(find_qualifying_dot("s.t"), 1u);
  EXPECT_EQ(find_qualifying_dot(R"("a.b".t)"), 5u);
  EXPECT_EQ(find_qualifying_dot(R"("a.b")"), std::string_view::npos);
  EXPECT_EQ(find_qualifying_dot("t"), std::string_view::npos);
}

}  // namespace
}  // namespace relay
