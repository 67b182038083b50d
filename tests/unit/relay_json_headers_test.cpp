// The headers column's JSON read into Kafka headers, without a router:
// both shapes, values as written, and every way a document is refused.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/errc.h"
#include "relay/json_headers.h"

namespace relay {
namespace {

const std::string kNotHeaders = "headers is not a JSON object or [{key,value}] array: ";

common::Result<std::vector<Header>> read(JsonHeaderReader& reader, const std::string& json) {
  reader.document() = json;
  std::vector<Header> out;
  if (auto r = reader.read(out); !r) return r.error();
  return out;
}

// "k=v, k2=<null>": headers in order, comparable in one EXPECT_EQ.
std::string read_shown(const std::string& json) {
  JsonHeaderReader reader;
  auto headers = read(reader, json);
  EXPECT_TRUE(headers.ok()) << json << ": " << headers.error().describe();
  if (!headers) return "";
  std::string out;
  for (const auto& h : *headers) {
    if (!out.empty()) out += ", ";
    out += h.key + "=" + (h.value ? *h.value : "<null>");
  }
  return out;
}

// The reason after the common prefix, checking the code and the prefix.
std::string refusal(const std::string& json) {
  JsonHeaderReader reader;
  auto headers = read(reader, json);
  EXPECT_FALSE(headers.ok()) << json;
  if (headers) return "";
  EXPECT_EQ(headers.error().code, errc::bad_row) << json;
  const std::string& message = headers.error().message;
  EXPECT_EQ(message.rfind(kNotHeaders, 0), 0u) << message;
  return message.substr(std::min(message.size(), kNotHeaders.size()));
}

TEST(JsonHeaderReader, ObjectKeepsDocumentOrderDuplicatesAndEmptyKeys) {
  EXPECT_EQ(read_shown(R"({"z": "1", "a": "2", "a": "3", "": "e"})"), "z=1, a=2, a=3, =e");
}

TEST(JsonHeaderReader, ArrayOfKeyValueObjectsWithMissingValueAsNull) {
  EXPECT_EQ(
      read_shown(R"([{"key": "k", "value": "v"}, {"value": null, "key": "n"}, {"key": "m"}])"),
      "k=v, n=<null>, m=<null>");
}

TEST(JsonHeaderReader, NonStringValuesAreTheirMinifiedJsonAsWritten) {
  EXPECT_EQ(read_shown(R"({"n": 1.50, "b": false, "o": { "a" : [ 1 , "\u0001" ] }})"),
            "n=1.50, b=false, o={\"a\":[1,\"\\u0001\"]}");
}

TEST(JsonHeaderReader, StringsAreUnescaped) {
  EXPECT_EQ(read_shown(R"({"a": "x\ty\"\u00e9"})"), "a=x\ty\"é");
}

TEST(JsonHeaderReader, EmptyDocumentsAddNothingAndWhitespaceAfterIsAllowed) {
  EXPECT_EQ(read_shown("{}"), "");
  EXPECT_EQ(read_shown("[] \n\t"), "");
}

TEST(JsonHeaderReader, OtherShapesAreRefusedWithWhatTheyAre) {
  EXPECT_EQ(refusal("true"), "the document is a boolean");
  EXPECT_EQ(refusal(R"(["a"])"), "element 0 is a string, expected {\"key\": ..., \"value\": ...}");
  EXPECT_EQ(refusal(R"([{"key": "a"}, {"value": "b"}])"), "element 1 has no \"key\"");
  EXPECT_EQ(refusal(R"([{"key": "a", "value": 1, "value": 2}])"),
            "element 0 has more than one \"value\"");
  EXPECT_EQ(refusal(R"([{"key": "a", "k\"": 1}])"),
            "element 0 has member \"k\\\"\", expected only \"key\" and \"value\"");
}

TEST(JsonHeaderReader, NumbersOutsideTheGrammarAndTrailingContentAreRefused) {
  for (const char* json :
       {R"({"a": 01})", R"({"a": 1.})", R"({"a": -})", R"([{"key": "k", "value": 2e}])"}) {
    EXPECT_EQ(refusal(json), "Problem while parsing a number") << json;
  }
  EXPECT_EQ(refusal(R"({"a": "1"}})"), "Unexpected trailing content in the JSON input.");
}

TEST(JsonHeaderReader, OneReaderReadsDocumentAfterDocumentEvenAfterARefusal) {
  JsonHeaderReader reader;
  ASSERT_TRUE(read(reader, R"({"a": "1", "b": "2"})").ok());
  ASSERT_FALSE(read(reader, "{not json").ok());
  auto headers = read(reader, R"({"c": "3"})");
  ASSERT_TRUE(headers.ok()) << headers.error().describe();
  ASSERT_EQ(headers->size(), 1u);
  EXPECT_EQ((*headers)[0].key, "c");
}

TEST(JsonHeaderReader, CopyStartsWithItsOwnEmptyDocument) {
  JsonHeaderReader reader;
  reader.document() = R"({"a": "1"})";
  JsonHeaderReader copy = reader;
  std::vector<Header> out;
  ASSERT_FALSE(copy.read(out).ok());
  ASSERT_TRUE(reader.read(out).ok());
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace relay
