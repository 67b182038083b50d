// Router: configured names → Relation messages → Insert tuples → records.
// Tuples are built from the exact bytes pgoutput sends, in text and binary.
#include <gtest/gtest.h>

#include <cstdint>
#include <deque>
#include <initializer_list>
#include <string>
#include <vector>

#include "relay/errc.h"
#include "relay/router.h"

namespace relay {
namespace {

constexpr wal::Oid kTimestamptz = 1184;
constexpr wal::RelId kOutboxRelid = 16384;
constexpr std::string_view kId = "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77";

std::string bytes(std::initializer_list<uint8_t> b) {
  return std::string(b.begin(), b.end());
}

std::string be(uint64_t v, size_t width) {
  std::string out(width, '\0');
  for (size_t i = 0; i < width; ++i) out[width - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

const std::string kIdBinary = bytes({0x8a, 0x7c, 0x3e, 0x0e, 0x5b, 0x1f, 0x4c, 0x8a, 0x9f, 0x3e,
                                     0x2d, 0x6b, 0x1a, 0x0c, 0x9e, 0x77});

// A TupleData under construction; values borrow strings it keeps alive.
class Tuple {
 public:
  Tuple& text(std::string s) { return add(ValueKind::kText, std::move(s)); }
  Tuple& binary(std::string s) { return add(ValueKind::kBinary, std::move(s)); }
  Tuple& null() { return add(ValueKind::kNull, ""); }
  Tuple& kind(char k) { return add(static_cast<ValueKind>(k), ""); }

  std::span<const RawValue> values() const { return values_; }
  RawValue& operator[](size_t i) { return values_[i]; }
  void set_text(size_t i, std::string s) {
    values_[i] = RawValue{ValueKind::kText, storage_.emplace_back(std::move(s))};
  }
  void set_null(size_t i) { values_[i] = RawValue{ValueKind::kNull, {}}; }

 private:
  Tuple& add(ValueKind kind, std::string s) {
    values_.push_back(RawValue{kind, storage_.emplace_back(std::move(s))});
    return *this;
  }
  std::deque<std::string> storage_;  // stable addresses as it grows
  std::vector<RawValue> values_;
};

// The table of sql/01-outbox-table.sql.
RelationDesc outbox_relation(wal::RelId relid = kOutboxRelid) {
  return RelationDesc{relid,
                      "public",
                      "outbox",
                      {{"id", pg_type::kUuid, -1},
                       {"topic", pg_type::kText, -1},
                       {"key", pg_type::kText, -1},
                       {"partition", pg_type::kInt4, -1},
                       {"headers", pg_type::kJsonb, -1},
                       {"payload", pg_type::kBytea, -1},
                       {"created_at", kTimestamptz, -1}}};
}

// A text-mode row of outbox_relation() (binary=false, or types without send).
Tuple text_row(std::string headers = "{\"h\": \"v\"}") {
  Tuple t;
  t.text(std::string(kId)).text("orders").text("k-1").text("3").text(std::move(headers));
  t.text("\\x68656c6c6f").text("2024-05-01 10:00:00.123456+00");
  return t;
}

// The same row as binary=true sends it.
Tuple binary_row(std::string headers_json = "{\"h\": \"v\"}") {
  Tuple t;
  t.binary(kIdBinary).binary("orders").binary("k-1").binary(be(3, 4));
  t.binary(bytes({0x01}) + headers_json).binary("hello").binary(be(768222000123456ull, 8));
  return t;
}

RowContext row_ctx() {
  return RowContext{wal::Lsn(0x16B374D848ull), wal::Lsn(0x16B374D900ull), 1234,
                    wal::PgTimestamp{768222000123456}};
}

Router make_router(const config::OutboxConfig& cfg = {}) {
  auto r = Router::create(cfg);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return std::move(r).value();
}

Router bound_router(const config::OutboxConfig& cfg = {},
                    const RelationDesc& relation = outbox_relation()) {
  Router router = make_router(cfg);
  auto b = router.bind(relation);
  EXPECT_TRUE(b.ok()) << b.error().describe();
  return router;
}

OutboxRecord expect_record(common::Result<RouteOutcome> r) {
  EXPECT_TRUE(r.ok()) << r.error().describe();
  if (!r.ok()) return {};
  auto* bad = std::get_if<BadRow>(&*r);
  EXPECT_EQ(bad, nullptr) << bad->reason;
  if (bad != nullptr) return {};
  return std::get<OutboxRecord>(std::move(*r));
}

BadRow expect_bad_row(common::Result<RouteOutcome> r) {
  EXPECT_TRUE(r.ok()) << r.error().describe();
  if (!r.ok()) return {};
  auto* bad = std::get_if<BadRow>(&*r);
  EXPECT_NE(bad, nullptr) << "routed to " << std::get<OutboxRecord>(*r).topic;
  return bad == nullptr ? BadRow{} : std::move(*bad);
}

common::Error expect_error(common::Result<RouteOutcome> r) {
  EXPECT_FALSE(r.ok());
  return r.ok() ? common::Error{} : r.error();
}

// "k=v, k2=<null>": headers in order, comparable in one EXPECT_EQ.
std::string show(const std::vector<Header>& headers) {
  std::string out;
  for (const auto& h : headers) {
    if (!out.empty()) out += ", ";
    out += h.key + "=" + (h.value ? *h.value : "<null>");
  }
  return out;
}

const std::string kRelayHeaders =
    "outbox-id=8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77, outbox-lsn=16/B374D848, outbox-xid=1234";

// ---- table matching -------------------------------------------------------

TEST(RouterMatches, DefaultTableMatchesPublicOutboxOnly) {
  Router router = make_router();
  EXPECT_TRUE(router.matches(outbox_relation()));
  RelationDesc other = outbox_relation();
  other.nspname = "app";
  EXPECT_FALSE(router.matches(other));
  other = outbox_relation();
  other.relname = "outbox2";
  EXPECT_FALSE(router.matches(other));
}

TEST(RouterMatches, UnqualifiedTableIsInSchemaPublic) {
  config::OutboxConfig cfg;
  cfg.table = "events_outbox";
  RelationDesc r = outbox_relation();
  r.relname = "events_outbox";
  EXPECT_TRUE(make_router(cfg).matches(r));
}

TEST(RouterMatches, UnquotedNamesFoldToLowerCaseAsPostgresDoes) {
  config::OutboxConfig cfg;
  cfg.table = "Sales.Outbox";
  Router router = make_router(cfg);
  RelationDesc folded = outbox_relation();
  folded.nspname = "sales";
  EXPECT_TRUE(router.matches(folded));
  RelationDesc mixed = folded;
  mixed.nspname = "Sales";
  mixed.relname = "Outbox";
  EXPECT_FALSE(router.matches(mixed));
}

TEST(RouterMatches, QuotedNamesKeepTheirCaseAndDots) {
  config::OutboxConfig cfg;
  cfg.table = "\"Sales\".\"Out.box\"";
  Router router = make_router(cfg);
  RelationDesc r = outbox_relation();
  r.nspname = "Sales";
  r.relname = "Out.box";
  EXPECT_TRUE(router.matches(r));
  r.nspname = "sales";
  EXPECT_FALSE(router.matches(r));
}

TEST(RouterCreate, UnterminatedQuotedTableNameIsAConfigError) {
  config::OutboxConfig cfg;
  cfg.table = "public.\"Outbox";
  auto r = Router::create(cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_config);
}

TEST(RouterCreate, UnparsableTopicTemplateIsAConfigError) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${";
  auto r = Router::create(cfg);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_config);
  EXPECT_EQ(r.error().message.rfind("outbox.topic_template: ", 0), 0u) << r.error().message;
}

// ---- records --------------------------------------------------------------

TEST(RouterRoute, TextTupleBuildsRecordWithRowHeadersThenRelayHeaders) {
  Router router = bound_router();
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));
  EXPECT_EQ(rec.topic, "orders");
  EXPECT_EQ(rec.key, std::optional<std::string>("k-1"));
  EXPECT_EQ(rec.partition, 3);
  EXPECT_EQ(rec.payload, "hello");
  EXPECT_EQ(show(rec.headers), "h=v, " + kRelayHeaders);
}

TEST(RouterRoute, BinaryTupleBuildsTheSameRecordAsText) {
  Router router = bound_router();
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, binary_row().values(), row_ctx()));
  EXPECT_EQ(rec.topic, "orders");
  EXPECT_EQ(rec.key, std::optional<std::string>("k-1"));
  EXPECT_EQ(rec.partition, 3);
  EXPECT_EQ(rec.payload, "hello");
  EXPECT_EQ(show(rec.headers), "h=v, " + kRelayHeaders);
}

TEST(RouterRoute, BinaryRequestedButTypeWithoutSendArrivesAsTextAndStillDecodes) {
  Router router = bound_router();
  Tuple t = binary_row();
  t.set_text(0, std::string(kId));  // mixed kinds within one tuple
  t.set_text(3, "3");
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(rec.partition, 3);
  EXPECT_EQ(show(rec.headers), "h=v, " + kRelayHeaders);
}

TEST(RouterRoute, OutboxLsnIsTheCommitLsnNotTheInsertPosition) {
  Router router = bound_router();
  RowContext ctx = row_ctx();
  ctx.commit_lsn = wal::Lsn(0x1ull << 32 | 0xA);
  ctx.lsn = wal::Lsn(0x2ull << 32);
  ctx.xid = 4000000000u;
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, text_row().values(), ctx));
  ASSERT_GE(rec.headers.size(), 3u);
  EXPECT_EQ(show({rec.headers.end() - 2, rec.headers.end()}),
            "outbox-lsn=1/A, outbox-xid=4000000000");
}

TEST(RouterRoute, RelayHeadersFollowEachTransactionsCommitLsnAndXid) {
  Router router = bound_router();
  RowContext first = row_ctx();
  RowContext second = row_ctx();
  second.commit_lsn = wal::Lsn(0x17ull << 32);
  second.xid = 1235;
  auto lsn_and_xid = [&](const RowContext& ctx) {
    OutboxRecord rec = expect_record(router.route(kOutboxRelid, text_row("{}").values(), ctx));
    return show({rec.headers.end() - 2, rec.headers.end()});
  };
  EXPECT_EQ(lsn_and_xid(first), "outbox-lsn=16/B374D848, outbox-xid=1234");
  EXPECT_EQ(lsn_and_xid(first), "outbox-lsn=16/B374D848, outbox-xid=1234");
  EXPECT_EQ(lsn_and_xid(second), "outbox-lsn=17/0, outbox-xid=1235");
  second.xid = 1234;  // xid wraparound: same xid, another transaction
  EXPECT_EQ(lsn_and_xid(second), "outbox-lsn=17/0, outbox-xid=1234");
}

TEST(RouterRoute, TopicValidAfterAnInvalidOneIsStillRouted) {
  Router router = bound_router();
  Tuple bad = text_row();
  bad.set_text(1, "orders!");
  expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));
  expect_bad_row(router.route(kOutboxRelid, bad.values(), row_ctx()));
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx())).topic,
            "orders");
}

TEST(RouterRoute, NullKeyPartitionAndHeadersMeanNoKeyPartitionerAndOnlyRelayHeaders) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(2);
  t.set_null(3);
  t.set_null(4);
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(rec.key, std::nullopt);
  EXPECT_EQ(rec.partition, -1);
  EXPECT_EQ(show(rec.headers), kRelayHeaders);
}

TEST(RouterRoute, EmptyKeyIsAnEmptyKeyNotNoKey) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_text(2, "");
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).key,
            std::optional<std::string>(""));
}

TEST(RouterRoute, PayloadOfEveryTextTypeIsItsUtf8Bytes) {
  for (wal::Oid type : {pg_type::kText, pg_type::kVarchar, pg_type::kJson, pg_type::kJsonb}) {
    RelationDesc rel = outbox_relation();
    rel.columns[5].type_oid = type;
    Router router = bound_router({}, rel);
    Tuple t = text_row();
    t.set_text(5, "{\"a\": \"ü\"}");
    EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).payload,
              "{\"a\": \"ü\"}")
        << type;
  }
}

TEST(RouterRoute, JsonbPayloadInBinaryLosesOnlyTheVersionByte) {
  RelationDesc rel = outbox_relation();
  rel.columns[5].type_oid = pg_type::kJsonb;
  Router router = bound_router({}, rel);
  Tuple t = binary_row();
  t[5] = RawValue{ValueKind::kBinary, "\x01{\"a\": [1, 2]}"};
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).payload,
            "{\"a\": [1, 2]}");
}

TEST(RouterRoute, ByteaKeyIsRawBytesAndIntegerKeyIsDecimalText) {
  RelationDesc rel = outbox_relation();
  rel.columns[2].type_oid = pg_type::kBytea;
  Router bytea_router = bound_router({}, rel);
  Tuple t = binary_row();
  t[2] = RawValue{ValueKind::kBinary, std::string_view("\x00\xff", 2)};
  EXPECT_EQ(expect_record(bytea_router.route(kOutboxRelid, t.values(), row_ctx())).key,
            std::optional<std::string>(std::string("\x00\xff", 2)));

  rel.columns[2].type_oid = pg_type::kInt8;
  Router int_router = bound_router({}, rel);
  const std::string wire = be(9000000000ull, 8);
  t[2] = RawValue{ValueKind::kBinary, wire};
  EXPECT_EQ(expect_record(int_router.route(kOutboxRelid, t.values(), row_ctx())).key,
            std::optional<std::string>("9000000000"));
}

TEST(RouterRoute, IntegerIdIsDecimalTextInOutboxIdHeader) {
  RelationDesc rel = outbox_relation();
  rel.columns[0].type_oid = pg_type::kInt8;
  Router router = bound_router({}, rel);
  Tuple t = binary_row();
  const std::string wire = be(9000000000ull, 8);
  t[0] = RawValue{ValueKind::kBinary, wire};
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(rec.headers[1].key, "outbox-id");
  EXPECT_EQ(rec.headers[1].value, std::optional<std::string>("9000000000"));
}

TEST(RouterRoute, Int8PartitionFitsAndInt2PartitionReads) {
  RelationDesc rel = outbox_relation();
  rel.columns[3].type_oid = pg_type::kInt8;
  Router router = bound_router({}, rel);
  Tuple t = binary_row();
  const std::string wire = be(2, 8);
  t[3] = RawValue{ValueKind::kBinary, wire};
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).partition, 2);

  rel.columns[3].type_oid = pg_type::kInt2;
  Router int2_router = bound_router({}, rel);
  const std::string wire2 = be(7, 2);
  t[3] = RawValue{ValueKind::kBinary, wire2};
  EXPECT_EQ(expect_record(int2_router.route(kOutboxRelid, t.values(), row_ctx())).partition, 7);
}

TEST(RouterRoute, RoutingManyRowsReusesTheParserWithoutLeakingHeaders) {
  Router router = bound_router();
  for (int i = 0; i < 3; ++i) {
    Tuple t = text_row("{\"n\": \"" + std::to_string(i) + "\"}");
    EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers),
              "n=" + std::to_string(i) + ", " + kRelayHeaders);
  }
  // A long document, then a short one: the buffer's tail must not matter.
  Tuple longer = text_row("{\"a\": \"" + std::string(5000, 'x') + "\"}");
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, longer.values(), row_ctx())).headers.size(),
            4u);
  Tuple shorter = text_row("{}");
  EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, shorter.values(), row_ctx())).headers),
            kRelayHeaders);
}

TEST(RouterRoute, CopiedRouterRoutesWithItsOwnParser) {
  Router original = bound_router();
  Router copy = original;
  Router moved = std::move(original);
  EXPECT_EQ(show(expect_record(copy.route(kOutboxRelid, text_row().values(), row_ctx())).headers),
            "h=v, " + kRelayHeaders);
  EXPECT_EQ(show(expect_record(moved.route(kOutboxRelid, text_row().values(), row_ctx())).headers),
            "h=v, " + kRelayHeaders);
}

// ---- headers --------------------------------------------------------------

std::string route_headers(const std::string& json, wal::Oid headers_type = pg_type::kJsonb) {
  RelationDesc rel = outbox_relation();
  rel.columns[4].type_oid = headers_type;
  Router router = bound_router({}, rel);
  Tuple t = text_row(json);
  return show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers);
}

BadRow route_bad_headers(const std::string& json, wal::Oid headers_type = pg_type::kText) {
  RelationDesc rel = outbox_relation();
  rel.columns[4].type_oid = headers_type;
  Router router = bound_router({}, rel);
  Tuple t = text_row(json);
  return expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
}

TEST(RouterHeaders, ObjectValuesKeepDocumentOrderIncludingDuplicates) {
  EXPECT_EQ(route_headers("{\"z\": \"1\", \"a\": \"2\", \"m\": \"3\", \"a\": \"4\"}"),
            "z=1, a=2, m=3, a=4, " + kRelayHeaders);
}

TEST(RouterHeaders, ObjectStringIsUnescapedAndNullIsANullHeader) {
  EXPECT_EQ(route_headers("{\"a\": \"x y\\n\\u00e9\", \"b\": null, \"\": \"empty key\"}"),
            "a=x y\né, b=<null>, =empty key, " + kRelayHeaders);
}

TEST(RouterHeaders, ObjectNumbersAndBooleansAreTheirJsonTextAsWritten) {
  EXPECT_EQ(route_headers("{\"i\": 2, \"f\": 1.50, \"e\": -1E+2, \"big\": "
                          "123456789012345678901234567890, \"t\": true, \"no\": false}"),
            "i=2, f=1.50, e=-1E+2, big=123456789012345678901234567890, t=true, no=false, " +
                kRelayHeaders);
}

TEST(RouterHeaders, ObjectNestedValuesAreMinifiedJson) {
  EXPECT_EQ(
      route_headers("{\"o\": { \"a\" : [ 1 , 2.0 , {\"q\\\"\": \"\\\"x\\\"\"} ], \"n\" : null },"
                    " \"arr\": [ ], \"obj\": { } }",
                    pg_type::kJson),
      "o={\"a\":[1,2.0,{\"q\\\"\":\"\\\"x\\\"\"}],\"n\":null}, arr=[], obj={}, " + kRelayHeaders);
}

TEST(RouterHeaders, ArrayOfKeyValueObjectsKeepsOrderAndDuplicateKeys) {
  EXPECT_EQ(
      route_headers("[{\"key\": \"z\", \"value\": \"2\"}, {\"key\": \"z\", \"value\": \"3\"}, "
                    "{\"value\": \"v\", \"key\": \"a\"}]"),
      "z=2, z=3, a=v, " + kRelayHeaders);
}

TEST(RouterHeaders, ArrayValueNullOrMissingIsANullHeader) {
  EXPECT_EQ(route_headers("[{\"key\": \"n\", \"value\": null}, {\"key\": \"m\"}]"),
            "n=<null>, m=<null>, " + kRelayHeaders);
}

TEST(RouterHeaders, ArrayNonStringValueIsItsJsonText) {
  EXPECT_EQ(
      route_headers("[{\"key\": \"n\", \"value\": 10}, {\"key\": \"o\", \"value\": {\"a\": 1}}]"),
      "n=10, o={\"a\":1}, " + kRelayHeaders);
}

TEST(RouterHeaders, EmptyObjectAndEmptyArrayAddNoHeaders) {
  EXPECT_EQ(route_headers("{}"), kRelayHeaders);
  EXPECT_EQ(route_headers("[]"), kRelayHeaders);
}

TEST(RouterHeaders, TextColumnHoldingJsonIsParsedToo) {
  EXPECT_EQ(route_headers("{\"h\": \"v\"}", pg_type::kText), "h=v, " + kRelayHeaders);
}

TEST(RouterHeaders, ArrayElementWithoutKeyIsABadRow) {
  BadRow bad = route_bad_headers("[{\"key\": \"a\", \"value\": \"1\"}, {\"value\": \"2\"}]",
                                 pg_type::kJsonb);
  EXPECT_EQ(bad.reason,
            "headers is not a JSON object or [{key,value}] array: element 1 has no \"key\"");
}

TEST(RouterHeaders, ArrayElementThatIsNotAnObjectIsABadRow) {
  EXPECT_EQ(route_bad_headers("[\"a\"]").reason,
            "headers is not a JSON object or [{key,value}] array: element 0 is a string, "
            "expected {\"key\": ..., \"value\": ...}");
}

TEST(RouterHeaders, ArrayElementWithNonStringKeyOrUnknownMemberIsABadRow) {
  EXPECT_EQ(route_bad_headers("[{\"key\": 1, \"value\": \"v\"}]").reason,
            "headers is not a JSON object or [{key,value}] array: element 0 has a non-string "
            "\"key\"");
  EXPECT_EQ(route_bad_headers("[{\"key\": null}]").reason,
            "headers is not a JSON object or [{key,value}] array: element 0 has a non-string "
            "\"key\"");
  EXPECT_EQ(route_bad_headers("[{\"key\": \"k\", \"vaule\": \"v\"}]").reason,
            "headers is not a JSON object or [{key,value}] array: element 0 has member "
            "\"vaule\", expected only \"key\" and \"value\"");
  EXPECT_EQ(route_bad_headers("[{\"key\": \"k\", \"key\": \"j\"}]").reason,
            "headers is not a JSON object or [{key,value}] array: element 0 has more than one "
            "\"key\"");
}

TEST(RouterHeaders, ScalarDocumentIsABadRow) {
  EXPECT_EQ(route_bad_headers("\"just a string\"", pg_type::kJsonb).reason,
            "headers is not a JSON object or [{key,value}] array: the document is a string");
  EXPECT_EQ(route_bad_headers("42").reason,
            "headers is not a JSON object or [{key,value}] array: the document is a number");
  EXPECT_EQ(route_bad_headers("null").reason,
            "headers is not a JSON object or [{key,value}] array: the document is null");
}

TEST(RouterHeaders, InvalidJsonIsABadRowCarryingSimdjsonsReason) {
  const std::string prefix = "headers is not a JSON object or [{key,value}] array: ";
  for (const char* json : {"{not json", "{\"a\": \"x\"", "{\"a\": [1, 2}", "{\"a\": 1,}", "", "   ",
                           "{\"a\": tru}", "{\"a\": nul}", "{\"a\": \"\\q\"}",
                           "{\"a\": \"raw\ncontrol\"}", "[{\"key\": \"k\", \"value\": [1,]}]"}) {
    BadRow bad = route_bad_headers(json);
    EXPECT_EQ(bad.reason.rfind(prefix, 0), 0u) << json << " → " << bad.reason;
    EXPECT_GT(bad.reason.size(), prefix.size()) << json;
  }
  EXPECT_EQ(route_bad_headers("{\"a\" 1}").reason,
            prefix +
                "The JSON document has an improper structure: missing or superfluous commas, "
                "braces, missing keys, etc.");
}

TEST(RouterHeaders, NumbersOutsideTheJsonGrammarAreABadRow) {
  // simdjson hands these back as number tokens without checking them.
  for (const char* json : {"{\"a\": 1x}", "{\"a\": -}", "{\"a\": 01}", "{\"a\": 1.}", "{\"a\": 1e}",
                           "{\"a\": -1e+}", "{\"a\": {\"b\": 0x1}}"}) {
    EXPECT_EQ(route_bad_headers(json).reason,
              "headers is not a JSON object or [{key,value}] array: Problem while parsing a number")
        << json;
  }
  // These do not even start a number token.
  for (const char* json : {"{\"a\": .5}", "{\"a\": [+1]}"}) {
    EXPECT_EQ(route_bad_headers(json).reason.rfind("headers is not a JSON object", 0), 0u) << json;
  }
}

TEST(RouterHeaders, TrailingContentAfterTheDocumentIsABadRow) {
  for (const char* json : {"{\"a\": \"1\"}}", "[] []", "[{\"key\": \"a\"}]]"}) {
    EXPECT_EQ(route_bad_headers(json).reason,
              "headers is not a JSON object or [{key,value}] array: Unexpected trailing content "
              "in the JSON input.")
        << json;
  }
  // simdjson words these differently, but refuses them all the same.
  for (const char* json : {"{\"a\": \"1\"} x", "{} 1"}) {
    EXPECT_EQ(route_bad_headers(json).reason.rfind("headers is not a JSON object", 0), 0u) << json;
  }
  EXPECT_EQ(route_headers("{\"a\": \"1\"}  \n", pg_type::kText), "a=1, " + kRelayHeaders);
}

TEST(RouterHeaders, HeaderColumnsFollowJsonHeadersAndPrecedeRelayHeaders) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"tenant"}, {"trace_id"}, {"seq"}};
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"tenant", pg_type::kVarchar, 24});
  rel.columns.push_back({"trace_id", pg_type::kUuid, -1});
  rel.columns.push_back({"seq", pg_type::kInt8, -1});
  Router router = bound_router(cfg, rel);
  // A jsonb column's text as PostgreSQL sends it: keys sorted, shorter first.
  Tuple t = binary_row("{\"g\": \"w\", \"hh\": \"v\"}");
  t.binary("acme").binary(kIdBinary).binary(be(42, 8));
  EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers),
            "g=w, hh=v, tenant=acme, trace_id=" + std::string(kId) + ", seq=42, " + kRelayHeaders);
}

TEST(RouterHeaders, NullHeaderColumnIsANullHeaderValue) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"tenant"}};
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"tenant", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row("{}");
  t.null();
  EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers),
            "tenant=<null>, " + kRelayHeaders);
}

TEST(RouterHeaders, HeaderColumnsGoUnderTheirConfiguredNames) {
  // Debezium's table.fields.additional.placement=type:header:eventType, and
  // its id header (table.field.event.id) beside outbox-id.
  config::OutboxConfig cfg;
  cfg.header_columns = {{"type", "eventType"}, {"id", "id"}, {"tenant"}};
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"type", pg_type::kVarchar, 259});
  rel.columns.push_back({"tenant", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = binary_row("{}");
  t.binary("OrderCreated").binary("acme");
  EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers),
            "eventType=OrderCreated, id=" + std::string(kId) + ", tenant=acme, " + kRelayHeaders);
}

TEST(RouterHeaders, RenamedHeaderColumnIsResolvedLikeAnyColumn) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"\"Type\"", "eventType"}};
  RelationDesc rel = outbox_relation();
  EXPECT_NE(make_router(cfg).bind(rel).error().message.find("header column 'Type' is not in"),
            std::string::npos);
  rel.columns.push_back({"Type", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row("{}");
  t.text("OrderCreated");
  EXPECT_EQ(show(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).headers),
            "eventType=OrderCreated, " + kRelayHeaders);
}

// ---- null payloads --------------------------------------------------------

TEST(RouterNullPayload, TombstonePolicyMakesANullValueWithKeyAndHeaders) {
  config::OutboxConfig cfg;
  cfg.null_payload = config::NullPayloadPolicy::kTombstone;
  Router router = bound_router(cfg);
  Tuple t = binary_row();
  t[5] = RawValue{ValueKind::kNull, {}};
  OutboxRecord r = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_TRUE(r.null_value);
  EXPECT_EQ(r.payload, "");
  EXPECT_EQ(r.topic, "orders");
  EXPECT_EQ(r.key, std::optional<std::string>("k-1"));
  EXPECT_EQ(r.partition, 3);
  EXPECT_EQ(show(r.headers), "h=v, " + kRelayHeaders);
}

TEST(RouterNullPayload, EmptyPayloadIsNotATombstone) {
  config::OutboxConfig cfg;
  cfg.null_payload = config::NullPayloadPolicy::kTombstone;
  Router router = bound_router(cfg);
  Tuple t = binary_row();
  t[5] = RawValue{ValueKind::kBinary, {}};
  OutboxRecord r = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_FALSE(r.null_value);
  EXPECT_EQ(r.payload, "");
}

TEST(RouterNullPayload, RowsWithAPayloadAreNoTombstones) {
  config::OutboxConfig cfg;
  cfg.null_payload = config::NullPayloadPolicy::kTombstone;
  Router router = bound_router(cfg);
  OutboxRecord r = expect_record(router.route(kOutboxRelid, binary_row().values(), row_ctx()));
  EXPECT_FALSE(r.null_value);
  EXPECT_EQ(r.payload, "hello");
}

TEST(RouterNullPayload, TombstoneRowWithAnotherFaultIsStillABadRow) {
  config::OutboxConfig cfg;
  cfg.null_payload = config::NullPayloadPolicy::kTombstone;
  Router router = bound_router(cfg);
  Tuple t = text_row();
  t.set_null(5);
  t.set_null(1);
  EXPECT_EQ(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx())).reason,
            "topic is null");
}

// ---- topics ---------------------------------------------------------------

TEST(RouterTopic, TemplateRendersColumnValuesIntoTheTopic) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${aggregate_type}.v${version}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregate_type", pg_type::kText, -1});
  rel.columns.push_back({"version", pg_type::kInt4, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = binary_row();
  t.binary("invoice").binary(be(2, 4));
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).topic,
            "orders.invoice.v2");
}

TEST(RouterTopic, TemplateNeedsNoTopicColumn) {
  config::OutboxConfig cfg;
  cfg.topic_template = "events.${kind}";
  RelationDesc rel = outbox_relation();
  rel.columns[1] = {"kind", pg_type::kVarchar, 36};
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.set_text(1, "created");
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).topic,
            "events.created");
}

TEST(RouterTopic, TemplatePlaceholdersFoldLikeUnquotedColumnNames) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${AggregateType}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregatetype", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.text("invoice");
  EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).topic,
            "orders.invoice");
}

TEST(RouterTopic, NullTemplatePlaceholderIsABadRowTopicIsNull) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${aggregate_type}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregate_type", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.null();
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "topic is null: column 'aggregate_type' of topic_template is null");
  EXPECT_EQ(bad.details, "column 'aggregate_type' of type text (OID 25)");
  EXPECT_EQ(bad.original_topic, std::nullopt);
}

TEST(RouterTopic, TemplateRenderingAnInvalidTopicIsABadRow) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${aggregate_type}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregate_type", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.text("in voice");
  EXPECT_EQ(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx())).reason,
            "topic 'orders.in voice' is not a valid Kafka topic name: a Kafka topic name has 1 to "
            "249 characters, each a letter, a digit, '.', '_' or '-'");
  t.set_text(7, std::string(243, 'x'));  // "orders." + 243 = 250 characters
  EXPECT_NE(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()))
                .reason.find("is not a valid Kafka topic name"),
            std::string::npos);
}

TEST(RouterTopic, NullTopicColumnIsABadRowTopicIsNull) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(1);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "topic is null");
  EXPECT_EQ(bad.row_id, kId);
  EXPECT_EQ(bad.details, "column 'topic' of type text (OID 25)");
  EXPECT_EQ(bad.source_table, "public.outbox");
  EXPECT_EQ(bad.payload, std::optional<std::string>("hello"));
  EXPECT_EQ(bad.original_topic, std::nullopt);
}

TEST(RouterTopic, TopicNamesKafkaRefusesAreBadRows) {
  Router router = bound_router();
  for (std::string topic :
       {std::string(""), std::string("."), std::string(".."), std::string("a b"),
        std::string("a/b"), std::string("ü"), std::string(250, 't')}) {
    Tuple t = text_row();
    t.set_text(1, topic);
    BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
    EXPECT_NE(bad.reason.find("is not a valid Kafka topic name"), std::string::npos) << topic;
  }
}

TEST(RouterTopic, TopicNamesKafkaAcceptsPassIncludingTheLongest) {
  Router router = bound_router();
  for (std::string topic :
       {std::string("a"), std::string("..."), std::string("A-b_c.9"), std::string(249, 't')}) {
    Tuple t = text_row();
    t.set_text(1, topic);
    EXPECT_EQ(expect_record(router.route(kOutboxRelid, t.values(), row_ctx())).topic, topic);
  }
}

TEST(RouterTopic, InvalidTopicInMessageIsQuotedSafely) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_text(1, "evil\nlevel=info forged");
  EXPECT_EQ(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()))
                .reason.rfind("topic 'evil\\x0alevel=info forged' is not", 0),
            0u);
}

// ---- other bad rows ------------------------------------------------------

TEST(RouterBadRow, NullPayloadIsABadRowWithoutPayload) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(5);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "payload is null");
  EXPECT_EQ(bad.row_id, kId);
  EXPECT_EQ(bad.payload, std::nullopt);
}

TEST(RouterBadRow, NullIdIsABadRowWithEmptyRowId) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(0);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "id is null");
  EXPECT_EQ(bad.row_id, "");
}

TEST(RouterBadRow, NegativePartitionIsABadRow) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_text(3, "-2");
  EXPECT_EQ(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx())).reason,
            "partition is negative: -2");
}

TEST(RouterBadRow, Int8PartitionBeyondInt32IsABadRow) {
  RelationDesc rel = outbox_relation();
  rel.columns[3].type_oid = pg_type::kInt8;
  Router router = bound_router({}, rel);
  Tuple t = text_row();
  t.set_text(3, "3000000000");
  EXPECT_EQ(expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx())).reason,
            "partition is out of the int32 range: column 'partition' of type int8 (OID 20): value "
            "3000000000 does not fit in an int32");
}

TEST(RouterBadRow, BadHeadersKeepPayloadAndOriginalTopicForTheDeadLetter) {
  Router router = bound_router();
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, text_row("[1]").values(), row_ctx()));
  EXPECT_EQ(bad.row_id, kId);
  EXPECT_EQ(bad.payload, std::optional<std::string>("hello"));
  EXPECT_EQ(bad.original_topic, std::optional<std::string>("orders"));
  EXPECT_EQ(bad.details, "column 'headers' of type jsonb (OID 3802)");
}

// ---- protocol errors ------------------------------------------------------

TEST(RouterProtocol, UnknownRelidIsAnErrorNotABadRow) {
  Router router = bound_router();
  common::Error e = expect_error(router.route(99, text_row().values(), row_ctx()));
  EXPECT_EQ(e.code, errc::unknown_relation);
  EXPECT_EQ(e.message,
            "Insert at lsn=16/B374D900 for relation OID 99, which no Relation message bound");
}

TEST(RouterProtocol, RouteBeforeAnyBindIsUnknownRelation) {
  Router router = make_router();
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, text_row().values(), row_ctx())).code,
            errc::unknown_relation);
}

TEST(RouterProtocol, ClearBindingsForgetsRelationsUntilBoundAgain) {
  Router router = bound_router();
  router.clear_bindings();
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, text_row().values(), row_ctx())).code,
            errc::unknown_relation);
  ASSERT_TRUE(router.bind(outbox_relation()).ok());
  expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));
}

TEST(RouterProtocol, TupleWithOtherColumnCountThanRelationIsAnError) {
  Router router = bound_router();
  Tuple t = text_row();
  t.text("extra");
  common::Error e = expect_error(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(e.code, errc::protocol_violation);
  EXPECT_EQ(e.message,
            "Insert into public.outbox at lsn=16/B374D900 has 8 columns, its Relation message "
            "has 7");
}

TEST(RouterProtocol, UnchangedToastInAnInsertIsAnErrorEvenInAnUnmappedColumn) {
  Router router = bound_router();
  Tuple t = text_row();
  t[6] = RawValue{ValueKind::kUnchanged, {}};
  common::Error e = expect_error(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(e.code, errc::protocol_violation);
  EXPECT_EQ(e.message,
            "Insert into public.outbox at lsn=16/B374D900: column 'created_at' is unchanged TOAST "
            "('u'), which only an UPDATE may send");
}

TEST(RouterProtocol, UnknownKindByteIsAnError) {
  Router router = bound_router();
  Tuple t = text_row();
  t[4] = RawValue{static_cast<ValueKind>('x'), {}};
  common::Error e = expect_error(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(e.code, errc::protocol_violation);
  EXPECT_EQ(e.message,
            "Insert into public.outbox at lsn=16/B374D900: column 'headers' has kind 'x', "
            "expected 'n', 't' or 'b'");
}

TEST(RouterProtocol, MalformedValueIsAnErrorNotABadRow) {
  Router router = bound_router();
  Tuple t = binary_row();
  const std::string short_uuid = kIdBinary.substr(0, 15);
  t[0] = RawValue{ValueKind::kBinary, short_uuid};
  common::Error e = expect_error(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(e.code, errc::malformed_value);
  EXPECT_EQ(e.message,
            "Insert into public.outbox at lsn=16/B374D900: column 'id' of type uuid (OID 2950): "
            "binary value has 15 bytes, expected 16");

  Tuple bad_hex = text_row();
  bad_hex.set_text(5, "\\x0g");
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, bad_hex.values(), row_ctx())).code,
            errc::malformed_value);

  Tuple bad_jsonb = binary_row();
  bad_jsonb[4] = RawValue{ValueKind::kBinary, "\x02{}"};
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, bad_jsonb.values(), row_ctx())).code,
            errc::malformed_value);
}

// ---- binding --------------------------------------------------------------

common::Error bind_error(const config::OutboxConfig& cfg, const RelationDesc& rel) {
  Router router = make_router(cfg);
  auto r = router.bind(rel);
  EXPECT_FALSE(r.ok());
  return r.ok() ? common::Error{} : r.error();
}

RelationDesc without(std::initializer_list<std::string_view> names) {
  RelationDesc rel = outbox_relation();
  std::erase_if(rel.columns, [&](const ColumnDesc& c) {
    for (auto n : names) {
      if (c.name == n) return true;
    }
    return false;
  });
  return rel;
}

TEST(RouterBind, MissingPayloadColumnNamesTheColumnAndTheTable) {
  common::Error e = bind_error({}, without({"payload"}));
  EXPECT_EQ(e.code, errc::invalid_mapping);
  EXPECT_EQ(e.message,
            "outbox column 'payload' (mapped as payload) is not in relation public.outbox");
}

TEST(RouterBind, MissingRequiredColumnsAreAllReported) {
  config::OutboxConfig cfg;
  cfg.columns.id = "event_id";
  EXPECT_EQ(bind_error(cfg, without({"topic"})).message,
            "outbox column 'event_id' (mapped as id) is not in relation public.outbox; "
            "outbox column 'topic' (mapped as topic) is not in relation public.outbox");
}

TEST(RouterBind, DefaultKeyPartitionAndHeadersMayBeAbsent) {
  Router router = bound_router({}, without({"key", "partition", "headers"}));
  Tuple t;
  t.text(std::string(kId)).text("orders").text("\\x6869").text("2024-05-01 10:00:00+00");
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(rec.key, std::nullopt);
  EXPECT_EQ(rec.partition, -1);
  EXPECT_EQ(rec.payload, "hi");
  EXPECT_EQ(show(rec.headers), kRelayHeaders);
}

TEST(RouterBind, DroppingAnOptionalColumnThatWasReadIsAnError) {
  Router router = make_router();
  ASSERT_TRUE(router.bind(outbox_relation()).ok());
  router.clear_bindings();
  auto again = router.bind(without({"key"}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message,
            "outbox column 'key' (mapped as key) was dropped from relation public.outbox");
  Tuple t = text_row();
  auto routed = router.route(kOutboxRelid, t.values(), row_ctx());
  EXPECT_FALSE(routed.ok());
}

TEST(RouterBind, OptionalColumnAbsentFromTheStartStaysOptionalOnRebind) {
  Router router = make_router();
  ASSERT_TRUE(router.bind(without({"key"})).ok());
  ASSERT_TRUE(router.bind(without({"key"})).ok());
}

TEST(RouterBind, ExplicitlyConfiguredOptionalColumnsMustExist) {
  config::OutboxConfig cfg;
  cfg.columns.key = "aggregate_id";
  cfg.columns.partition = "part";
  cfg.columns.headers = "meta";
  EXPECT_EQ(bind_error(cfg, outbox_relation()).message,
            "outbox column 'aggregate_id' (mapped as key) is not in relation public.outbox; "
            "outbox column 'part' (mapped as partition) is not in relation public.outbox; "
            "outbox column 'meta' (mapped as headers) is not in relation public.outbox");
}

TEST(RouterBind, HeaderColumnsAndTemplatePlaceholdersMustExist) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"tenant"}};
  cfg.topic_template = "orders.${aggregate_type}";
  EXPECT_EQ(bind_error(cfg, outbox_relation()).message,
            "topic_template placeholder ${aggregate_type} names column 'aggregate_type', which "
            "is not in relation public.outbox; header column 'tenant' is not in relation "
            "public.outbox");
}

TEST(RouterBind, ColumnTypeItsRoleCannotReadIsAnError) {
  RelationDesc rel = outbox_relation();
  rel.columns[3].type_oid = pg_type::kText;
  common::Error e = bind_error({}, rel);
  EXPECT_EQ(e.code, errc::invalid_mapping);
  EXPECT_EQ(e.message,
            "outbox column 'partition' (mapped as partition) in relation public.outbox has type "
            "text (OID 25); a partition column must be int2, int4 or int8");

  rel = outbox_relation();
  rel.columns[5].type_oid = pg_type::kUuid;
  rel.columns[1].type_oid = pg_type::kInt4;
  EXPECT_EQ(bind_error({}, rel).message,
            "outbox column 'topic' (mapped as topic) in relation public.outbox has type int4 (OID "
            "23); a topic column must be text, varchar, bpchar or name; outbox column 'payload' "
            "(mapped as payload) in relation public.outbox has type uuid (OID 2950); a payload "
            "column must be bytea, text, varchar, json or jsonb");
}

TEST(RouterBind, UnsupportedTypeOfAHeaderColumnOrPlaceholderIsAnError) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"created_at"}};
  cfg.topic_template = "t.${payload}";
  EXPECT_EQ(bind_error(cfg, outbox_relation()).message,
            "topic_template placeholder ${payload} in relation public.outbox has type bytea (OID "
            "17); a topic_template placeholder column must be text, varchar, bpchar, name, uuid, "
            "int2, int4 or int8; header column 'created_at' in relation public.outbox has type "
            "OID 1184; a header column column must be text, varchar, bpchar, name, json, jsonb, "
            "uuid, int2, int4 or int8");
}

TEST(RouterBind, DefaultOptionalColumnPresentWithUnusableTypeIsStillAnError) {
  RelationDesc rel = outbox_relation();
  rel.columns[4].type_oid = pg_type::kInt4;
  EXPECT_EQ(bind_error({}, rel).message,
            "outbox column 'headers' (mapped as headers) in relation public.outbox has type int4 "
            "(OID 23); a headers column must be json, jsonb, text or varchar");
}

TEST(RouterBind, ConfiguredColumnNamesFoldUnlessQuoted) {
  config::OutboxConfig cfg;
  cfg.columns.payload = "Payload";
  bound_router(cfg, outbox_relation());

  cfg.columns.payload = "\"Payload\"";
  EXPECT_EQ(bind_error(cfg, outbox_relation()).message,
            "outbox column 'Payload' (mapped as payload) is not in relation public.outbox");
  RelationDesc rel = outbox_relation();
  rel.columns[5].name = "Payload";
  bound_router(cfg, rel);
}

TEST(RouterBind, RelationOfAnotherTableIsRefused) {
  RelationDesc rel = outbox_relation();
  rel.relname = "orders";
  EXPECT_EQ(bind_error({}, rel).message,
            "relation public.orders is not the outbox table public.outbox");
}

TEST(RouterBind, ReBindAfterAddColumnReadsTheNewLayout) {
  config::OutboxConfig cfg;
  cfg.header_columns = {{"tenant"}};
  Router router = make_router();
  ASSERT_TRUE(router.bind(outbox_relation()).ok());
  expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));

  // ALTER TABLE outbox ADD COLUMN tenant text: the server sends Relation again.
  RelationDesc altered = outbox_relation();
  altered.columns.push_back({"tenant", pg_type::kText, -1});
  ASSERT_TRUE(router.bind(altered).ok());
  Tuple t = text_row();
  t.text("acme");
  expect_record(router.route(kOutboxRelid, t.values(), row_ctx()));
  // A tuple of the old layout no longer fits.
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, text_row().values(), row_ctx())).code,
            errc::protocol_violation);

  Router with_header = make_router(cfg);
  ASSERT_FALSE(with_header.bind(outbox_relation()).ok());
  ASSERT_TRUE(with_header.bind(altered).ok());
  EXPECT_EQ(show(expect_record(with_header.route(kOutboxRelid, t.values(), row_ctx())).headers),
            "h=v, tenant=acme, " + kRelayHeaders);
}

TEST(RouterBind, ReBindAfterDropColumnMapsByNameDespiteShiftedPositions) {
  Router router = make_router();
  RelationDesc before = outbox_relation();
  before.columns.insert(before.columns.begin() + 1, {"legacy", pg_type::kText, -1});
  ASSERT_TRUE(router.bind(before).ok());
  Tuple old_row;
  old_row.text(std::string(kId)).text("legacy-value").text("orders").text("k-1").text("3");
  old_row.text("{}").text("\\x6869").text("2024-05-01 10:00:00+00");
  OutboxRecord rec = expect_record(router.route(kOutboxRelid, old_row.values(), row_ctx()));
  EXPECT_EQ(rec.topic, "orders");

  // ALTER TABLE outbox DROP COLUMN legacy: every later column moves left.
  ASSERT_TRUE(router.bind(outbox_relation()).ok());
  rec = expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));
  EXPECT_EQ(rec.topic, "orders");
  EXPECT_EQ(rec.key, std::optional<std::string>("k-1"));
  EXPECT_EQ(rec.partition, 3);
  EXPECT_EQ(rec.payload, "hello");
}

TEST(RouterBind, ReBindThatFailsLeavesTheRelationUnbound) {
  Router router = bound_router();
  ASSERT_FALSE(router.bind(without({"payload"})).ok());
  EXPECT_EQ(expect_error(router.route(kOutboxRelid, text_row().values(), row_ctx())).code,
            errc::unknown_relation);
}

TEST(RouterBind, TwoRelidsOfTheTableAreBoundIndependently) {
  // A table dropped and recreated under the same name gets a new OID.
  Router router = bound_router();
  RelationDesc recreated = without({"created_at"});
  recreated.relid = kOutboxRelid + 1;
  ASSERT_TRUE(router.bind(recreated).ok());
  Tuple t;
  t.text(std::string(kId)).text("orders").text("k").text("1").text("{}").text("\\x");
  EXPECT_EQ(expect_record(router.route(kOutboxRelid + 1, t.values(), row_ctx())).partition, 1);
  expect_record(router.route(kOutboxRelid, text_row().values(), row_ctx()));
}

// ---- dead letters ---------------------------------------------------------

TEST(RouterDeadLetter, RecordCarriesPayloadKeyAndExactHeaders) {
  Router router = bound_router();
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, text_row("[1]").values(), row_ctx()));
  OutboxRecord dlq = Router::dead_letter(bad, row_ctx(), "outbox.dead-letter");
  EXPECT_EQ(dlq.topic, "outbox.dead-letter");
  EXPECT_EQ(dlq.key, std::optional<std::string>(kId));
  EXPECT_EQ(dlq.partition, -1);
  EXPECT_EQ(dlq.payload, "hello");
  EXPECT_EQ(show(dlq.headers),
            kRelayHeaders +
                ", outbox-error=headers is not a JSON object or [{key,value}] array: element 0 "
                "is a number, expected {\"key\": ..., \"value\": ...}, "
                "outbox-source-table=public.outbox, outbox-original-topic=orders");
}

TEST(RouterDeadLetter, NullTopicRowHasANullOriginalTopicHeader) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(1);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  OutboxRecord dlq = Router::dead_letter(bad, row_ctx(), "dlq");
  EXPECT_EQ(dlq.payload, "hello");
  EXPECT_EQ(show(dlq.headers),
            kRelayHeaders +
                ", outbox-error=topic is null, outbox-source-table=public.outbox, "
                "outbox-original-topic=<null>");
}

TEST(RouterDeadLetter, NullPayloadRowCarriesTheTopicItNamed) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(5);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.details, "column 'payload' of type bytea (OID 17)");
  OutboxRecord dlq = Router::dead_letter(bad, row_ctx(), "dlq");
  EXPECT_EQ(dlq.payload, "");
  EXPECT_FALSE(dlq.null_value);
  EXPECT_EQ(show(dlq.headers),
            kRelayHeaders +
                ", outbox-error=payload is null, "
                "outbox-source-table=public.outbox, outbox-original-topic=orders");
}

TEST(RouterDeadLetter, NullPayloadRowCarriesItsRenderedTemplateTopic) {
  config::OutboxConfig cfg;
  cfg.topic_template = "outbox.event.${aggregatetype}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregatetype", pg_type::kVarchar, 259});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.set_null(5);
  t.text("Order");
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "payload is null");
  EXPECT_EQ(bad.original_topic, std::optional<std::string>("outbox.event.Order"));
  EXPECT_EQ(bad.details, "column 'payload' of type bytea (OID 17)");
}

TEST(RouterDeadLetter, InvalidTopicRowCarriesTheTopicItNamed) {
  config::OutboxConfig cfg;
  cfg.topic_template = "orders.${aggregate_type}";
  RelationDesc rel = outbox_relation();
  rel.columns.push_back({"aggregate_type", pg_type::kText, -1});
  Router router = bound_router(cfg, rel);
  Tuple t = text_row();
  t.text("in voice");
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  OutboxRecord dlq = Router::dead_letter(bad, row_ctx(), "dlq");
  EXPECT_EQ(dlq.payload, "hello");
  EXPECT_EQ(show(dlq.headers),
            kRelayHeaders +
                ", outbox-error=topic 'orders.in voice' is not a valid Kafka topic name: a Kafka "
                "topic name has 1 to 249 characters, each a letter, a digit, '.', '_' or '-', "
                "outbox-source-table=public.outbox, outbox-original-topic=orders.in voice");
}

TEST(RouterDeadLetter, NullIdRowStillCarriesItsTopic) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(0);
  t.set_null(5);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  EXPECT_EQ(bad.reason, "id is null");
  EXPECT_EQ(bad.details, "column 'id' of type uuid (OID 2950)");
  EXPECT_EQ(bad.original_topic, std::optional<std::string>("orders"));
}

TEST(RouterDeadLetter, NullIdRowHasNoKeyAndANullIdHeader) {
  Router router = bound_router();
  Tuple t = text_row();
  t.set_null(0);
  BadRow bad = expect_bad_row(router.route(kOutboxRelid, t.values(), row_ctx()));
  OutboxRecord dlq = Router::dead_letter(bad, row_ctx(), "dlq");
  EXPECT_EQ(dlq.key, std::nullopt);
  EXPECT_EQ(dlq.payload, "");
  EXPECT_EQ(show(dlq.headers),
            "outbox-id=<null>, outbox-lsn=16/B374D848, outbox-xid=1234, outbox-error=id is null, "
            "outbox-source-table=public.outbox, outbox-original-topic=orders");
}

}  // namespace
}  // namespace relay
