// pgoutput messages built byte by byte from the documented layouts: the
// cases a capture from PostgreSQL 15 cannot produce (proto 4, a streamed
// top-level abort) and every way a message can be malformed.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "wal/errc.h"
#include "wal/pgoutput.h"

namespace wal {
namespace {

// Builds a message the way pq_send* does.
class Bytes {
 public:
  explicit Bytes(char type) { out_.push_back(type); }
  Bytes() = default;

  Bytes& u8(uint8_t v) {
    out_.push_back(static_cast<char>(v));
    return *this;
  }
  Bytes& u16(uint16_t v) { return be(v, 2); }
  Bytes& u32(uint32_t v) { return be(v, 4); }
  Bytes& i32(int32_t v) { return be(static_cast<uint32_t>(v), 4); }
  Bytes& u64(uint64_t v) { return be(v, 8); }
  Bytes& i64(int64_t v) { return be(static_cast<uint64_t>(v), 8); }
  Bytes& str(std::string_view s) {
    out_.append(s);
    out_.push_back('\0');
    return *this;
  }
  Bytes& raw(std::string_view s) {
    out_.append(s);
    return *this;
  }
  // A 't' or 'b' column.
  Bytes& value(char kind, std::string_view v) {
    u8(static_cast<uint8_t>(kind));
    i32(static_cast<int32_t>(v.size()));
    return raw(v);
  }

  const std::string& data() const { return out_; }
  operator std::string_view() const { return out_; }  // NOLINT: test convenience

 private:
  Bytes& be(uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  std::string out_;
};

template <typename T>
std::optional<T> as(const common::Result<Event>& r) {
  if (!r.ok()) {
    ADD_FAILURE() << "decode failed: " << r.error().describe();
    return std::nullopt;
  }
  if (const T* p = std::get_if<T>(&*r)) return *p;
  ADD_FAILURE() << "decoded " << message_type_name(message_type(*r)) << ", expected "
                << message_type_name(T::kType);
  return std::nullopt;
}

void expect_error(const common::Result<Event>& r, errc code, std::string_view fragment) {
  ASSERT_FALSE(r.ok()) << "decoded " << message_type_name(message_type(*r));
  EXPECT_EQ(r.error().code, code) << r.error().describe();
  EXPECT_NE(r.error().message.find(fragment), std::string::npos)
      << "\"" << r.error().message << "\" lacks \"" << fragment << "\"";
}

Bytes stream_start(Xid xid, bool first = true) {
  return std::move(Bytes('S').u32(xid).u8(first ? 1 : 0));
}

PgOutputDecoder in_stream(int proto_version, Xid xid) {
  PgOutputDecoder d(proto_version);
  EXPECT_TRUE(d.decode(stream_start(xid)).ok());
  return d;
}

// ---- transaction boundaries ---------------------------------------------------

TEST(PgOutputDecoder, BeginDecodesFinalLsnCommitTimeAndXid) {
  PgOutputDecoder d(1);
  auto m = as<Begin>(d.decode(Bytes('B').u64(0x16B374D848).i64(767882096789000).u32(750)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->final_lsn, Lsn(0x16B374D848));
  EXPECT_EQ(m->commit_time.micros, 767882096789000);
  EXPECT_EQ(m->xid, 750u);
}

TEST(PgOutputDecoder, BeginWithUnsetFinalLsnIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('B').u64(0).i64(1).u32(750)), errc::invalid_value,
               "Begin: final_lsn at offset 1 is not set");
}

TEST(PgOutputDecoder, CommitWithNonZeroFlagsIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('C').u8(1).u64(1).u64(2).i64(3)), errc::invalid_value,
               "Commit: unrecognized flags 0x01");
}

TEST(PgOutputDecoder, CommitDecodesCommitAndEndLsn) {
  PgOutputDecoder d(1);
  auto m = as<Commit>(d.decode(Bytes('C').u8(0).u64(0x100).u64(0x130).i64(-5)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->commit_lsn, Lsn(0x100));
  EXPECT_EQ(m->end_lsn, Lsn(0x130));
  EXPECT_EQ(m->commit_time.micros, -5);
}

// ---- message types ----------------------------------------------------------

TEST(PgOutputDecoder, EveryUndefinedTypeByteIsAnUnknownMessageNamingTheByte) {
  const std::string known = "BCORYIUDTMSEcAbPKrp";
  for (int b = 0; b < 256; ++b) {
    if (known.find(static_cast<char>(b)) != std::string::npos) continue;
    PgOutputDecoder d(4);
    auto r = d.decode(std::string(1, static_cast<char>(b)) + std::string(40, '\1'));
    ASSERT_FALSE(r.ok()) << b;
    EXPECT_EQ(r.error().code, errc::unknown_message);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", b);
    EXPECT_NE(r.error().message.find(hex), std::string::npos) << r.error().message;
    EXPECT_EQ(message_type_name(static_cast<char>(b)), "unknown");
  }
}

TEST(PgOutputDecoder, UnknownTypeZIsNamedPrintably) {
  PgOutputDecoder d(1);
  expect_error(d.decode("Z"), errc::unknown_message, "unknown message type 'Z' (0x5a)");
}

TEST(PgOutputDecoder, EmptyMessageIsTruncated) {
  PgOutputDecoder d(1);
  expect_error(d.decode(""), errc::truncated, "message type");
}

TEST(PgOutputDecoder, MessageTypeNamesCoverEveryEvent) {
  const std::vector<std::pair<char, std::string_view>> names = {{'B', "Begin"},
                                                                {'C', "Commit"},
                                                                {'O', "Origin"},
                                                                {'R', "Relation"},
                                                                {'Y', "Type"},
                                                                {'I', "Insert"},
                                                                {'U', "Update"},
                                                                {'D', "Delete"},
                                                                {'T', "Truncate"},
                                                                {'M', "Message"},
                                                                {'S', "Stream Start"},
                                                                {'E', "Stream Stop"},
                                                                {'c', "Stream Commit"},
                                                                {'A', "Stream Abort"},
                                                                {'b', "Begin Prepare"},
                                                                {'P', "Prepare"},
                                                                {'K', "Commit Prepared"},
                                                                {'r', "Rollback Prepared"},
                                                                {'p', "Stream Prepare"}};
  EXPECT_EQ(names.size(), std::variant_size_v<Event>);
  for (const auto& [type, name] : names) EXPECT_EQ(message_type_name(type), name);
}

TEST(PgOutputDecoder, DecodesFromAByteSpanToo) {
  PgOutputDecoder d(1);
  const std::string msg = Bytes('O').u64(7).str("origin").data();
  auto m = as<Origin>(d.decode(std::as_bytes(std::span(msg.data(), msg.size()))));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->name, "origin");
  EXPECT_EQ(m->commit_lsn, Lsn(7));
}

// ---- Relation and Type ---------------------------------------------------------

Bytes relation_body(Bytes b, std::string_view nspname, char replident, uint8_t col_flags) {
  b.u32(16384).str(nspname).str("outbox").u8(static_cast<uint8_t>(replident)).u16(2);
  b.u8(col_flags).str("id").u32(20).i32(-1);
  b.u8(0).str("payload").u32(1043).i32(68);
  return b;
}

TEST(PgOutputDecoder, RelationDecodesColumnsAndTheirKeyFlags) {
  PgOutputDecoder d(1);
  auto m = as<Relation>(d.decode(relation_body(Bytes('R'), "public", 'f', 1)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->relid, 16384u);
  EXPECT_EQ(m->nspname, "public");
  EXPECT_EQ(m->relname, "outbox");
  EXPECT_EQ(m->replica_identity, ReplicaIdentity::full);
  ASSERT_EQ(m->columns.size(), 2u);
  EXPECT_TRUE(m->columns[0].is_key());
  EXPECT_FALSE(m->columns[1].is_key());
  EXPECT_EQ(m->columns[1].name, "payload");
  EXPECT_EQ(m->columns[1].type_oid, 1043u);
  EXPECT_EQ(m->columns[1].type_modifier, 68);
}

TEST(PgOutputDecoder, RelationWithEmptyNamespaceMeansPgCatalog) {
  PgOutputDecoder d(1);
  auto m = as<Relation>(d.decode(relation_body(Bytes('R'), "", 'd', 0)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->nspname, "pg_catalog");
}

TEST(PgOutputDecoder, RelationWithUnknownReplicaIdentityIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(relation_body(Bytes('R'), "public", 'x', 0)), errc::invalid_value,
               "Relation: unknown replica_identity 'x' (0x78)");
}

TEST(PgOutputDecoder, RelationColumnWithUnknownFlagBitIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(relation_body(Bytes('R'), "public", 'd', 3)), errc::invalid_value,
               "Relation: column 1: unrecognized flags 0x03");
}

TEST(PgOutputDecoder, RelationWithMoreColumnsThanBytesIsTruncatedBeforeAllocating) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('R').u32(1).str("s").str("t").u8('d').u16(0xffff).u8(0)),
               errc::truncated, "ncolumns 65535");
}

TEST(PgOutputDecoder, TypeDecodesOidAndQualifiedName) {
  PgOutputDecoder d(1);
  auto m = as<Type>(d.decode(Bytes('Y').u32(16390).str("capture").str("mood")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->oid, 16390u);
  EXPECT_EQ(m->nspname, "capture");
  EXPECT_EQ(m->typname, "mood");
  EXPECT_FALSE(m->xid);
}

TEST(PgOutputDecoder, RelationNamesAreOwnedAndOutliveTheBuffer) {
  PgOutputDecoder d(1);
  std::optional<Relation> kept;
  {
    std::string buffer = relation_body(Bytes('R'), "public", 'd', 1).data();
    kept = as<Relation>(d.decode(buffer));
    buffer.assign(buffer.size(), 'X');
  }
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->relname, "outbox");
  EXPECT_EQ(kept->columns[1].name, "payload");
}

// ---- TupleData ------------------------------------------------------------------

TEST(PgOutputDecoder, InsertDecodesEveryColumnKindAndBorrowsTheBuffer) {
  PgOutputDecoder d(1);
  const std::string msg = Bytes('I')
                              .u32(16384)
                              .u8('N')
                              .u16(3)
                              .u8('n')
                              .value('t', "hello")
                              .value('b', std::string("\x00\x01", 2))
                              .data();
  auto m = as<Insert>(d.decode(msg));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->relid, 16384u);
  ASSERT_EQ(m->new_tuple.values.size(), 3u);
  EXPECT_EQ(m->new_tuple.values[0].kind, ColumnKind::null);
  EXPECT_EQ(m->new_tuple.values[1].kind, ColumnKind::text);
  EXPECT_EQ(m->new_tuple.values[1].data, "hello");
  EXPECT_EQ(m->new_tuple.values[2].kind, ColumnKind::binary);
  EXPECT_EQ(m->new_tuple.values[2].data, std::string("\x00\x01", 2));
  // A view into the message, not a copy.
  EXPECT_EQ(m->new_tuple.values[1].data.data(), msg.data() + msg.find("hello"));
}

TEST(PgOutputDecoder, EmptyTextValueIsNotNull) {
  PgOutputDecoder d(1);
  const Bytes msg = Bytes('I').u32(1).u8('N').u16(1).value('t', "");
  auto m = as<Insert>(d.decode(msg));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->new_tuple.values[0].kind, ColumnKind::text);
  EXPECT_TRUE(m->new_tuple.values[0].data.empty());
}

TEST(PgOutputDecoder, InsertWithUnknownColumnKindIsInvalidNamingTheByteAndColumn) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(2).u8('n').u8('z')), errc::invalid_value,
               "Insert: new tuple: column 2: unknown kind 'z' (0x7a) at offset 9");
}

TEST(PgOutputDecoder, ColumnKindZeroIsNamedInHex) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(1).u8(0)), errc::invalid_value,
               "unknown kind 0x00");
}

TEST(PgOutputDecoder, NegativeColumnLengthIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(1).u8('t').i32(-1)), errc::invalid_value,
               "column 1: negative length -1");
}

TEST(PgOutputDecoder, ColumnLengthBeyondTheMessageIsTruncated) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(1).u8('b').i32(0x7fffffff).raw("ab")),
               errc::truncated, "column 1: truncated reading value (2147483647 bytes)");
}

TEST(PgOutputDecoder, TupleWithMoreColumnsThanBytesIsTruncatedBeforeAllocating) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(0xffff).u8('n')), errc::truncated,
               "ncolumns 65535 but only 1 bytes left");
}

TEST(PgOutputDecoder, UnchangedToastInInsertIsAProtocolViolation) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('N').u16(1).u8('u')), errc::protocol_violation,
               "Insert: new tuple: column 1: unchanged TOAST 'u' (0x75)");
}

TEST(PgOutputDecoder, UnchangedToastInUpdateNewTupleIsAccepted) {
  PgOutputDecoder d(1);
  auto m = as<Update>(d.decode(Bytes('U').u32(1).u8('N').u16(2).value('t', "1").u8('u')));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->old_kind);
  EXPECT_EQ(m->new_tuple.values[1].kind, ColumnKind::unchanged_toast);
}

TEST(PgOutputDecoder, UnchangedToastInOldTupleIsAProtocolViolation) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('U').u32(1).u8('O').u16(1).u8('u').u8('N').u16(1).u8('n')),
               errc::protocol_violation, "Update: old tuple: column 1: unchanged TOAST");
  expect_error(d.decode(Bytes('D').u32(1).u8('O').u16(1).u8('u')), errc::protocol_violation,
               "Delete: old tuple: column 1: unchanged TOAST");
}

TEST(PgOutputDecoder, InsertWithoutNewTupleTagIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('I').u32(1).u8('K').u16(0)), errc::invalid_value,
               "Insert: expected tuple type 'N' (0x4e), got 'K' (0x4b) at offset 5");
}

TEST(PgOutputDecoder, UpdateWithKeyTupleThenNewTupleDecodesBoth) {
  PgOutputDecoder d(1);
  const Bytes msg =
      Bytes('U').u32(9).u8('K').u16(2).value('t', "1").u8('n').u8('N').u16(2).value('t', "2").value(
          't', "x");
  auto m = as<Update>(d.decode(msg));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->old_kind, OldTupleKind::key);
  EXPECT_EQ(m->old_tuple.values[0].data, "1");
  EXPECT_EQ(m->new_tuple.values[1].data, "x");
}

TEST(PgOutputDecoder, UpdateWithTwoOldTuplesIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('U').u32(9).u8('K').u16(0).u8('O').u16(0)), errc::invalid_value,
               "expected tuple type 'N' (0x4e), got 'O' (0x4f) at offset 8");
}

TEST(PgOutputDecoder, UpdateWithUnknownTupleTagIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('U').u32(9).u8('X').u16(0)), errc::invalid_value,
               "expected tuple type 'K' (0x4b) or 'O' (0x4f) or 'N' (0x4e), got 'X' (0x58)");
}

TEST(PgOutputDecoder, DeleteRequiresKeyOrOldTuple) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('D').u32(9).u8('N').u16(0)), errc::invalid_value,
               "Delete: expected tuple type 'K' (0x4b) or 'O' (0x4f), got 'N' (0x4e)");
  auto m = as<Delete>(d.decode(Bytes('D').u32(9).u8('O').u16(1).value('t', "1")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->old_kind, OldTupleKind::old);
}

// ---- Truncate and Message ----------------------------------------------------------

TEST(PgOutputDecoder, TruncateDecodesOptionsAndRelids) {
  PgOutputDecoder d(1);
  auto m = as<Truncate>(d.decode(Bytes('T').i32(2).u8(2).u32(10).u32(11)));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->cascade());
  EXPECT_TRUE(m->restart_seqs());
  EXPECT_EQ(m->relids, (std::vector<RelId>{10, 11}));
}

TEST(PgOutputDecoder, TruncateWithNegativeCountIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('T').i32(-1).u8(0)), errc::invalid_value, "negative nrelids -1");
}

TEST(PgOutputDecoder, TruncateWithMoreRelidsThanBytesIsTruncatedBeforeAllocating) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('T').i32(0x7fffffff).u8(0).u32(1)), errc::truncated,
               "nrelids 2147483647 but only 4 bytes left");
}

TEST(PgOutputDecoder, TruncateWithUnknownOptionBitIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('T').i32(0).u8(4)), errc::invalid_value,
               "Truncate: unrecognized flags 0x04");
}

TEST(PgOutputDecoder, MessageDecodesFlagsLsnPrefixAndContent) {
  PgOutputDecoder d(1);
  const Bytes msg =
      Bytes('M').u8(1).u64(0x42).str("outbox").i32(3).raw(std::string_view("a\0b", 3));
  auto m = as<Message>(d.decode(msg));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->transactional());
  EXPECT_EQ(m->lsn, Lsn(0x42));
  EXPECT_EQ(m->prefix, "outbox");
  EXPECT_EQ(m->content, std::string_view("a\0b", 3));
}

TEST(PgOutputDecoder, MessageWithNegativeLengthIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('M').u8(0).u64(1).str("p").i32(-2)), errc::invalid_value,
               "negative content length -2");
}

TEST(PgOutputDecoder, MessageWithUnknownFlagBitIsInvalid) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('M').u8(2).u64(1).str("p").i32(0)), errc::invalid_value,
               "Message: unrecognized flags 0x02");
}

TEST(PgOutputDecoder, StringWithoutNulIsTruncatedNamingTheField) {
  PgOutputDecoder d(1);
  expect_error(d.decode(Bytes('M').u8(0).u64(1).raw("prefix-without-nul")), errc::truncated,
               "Message: unterminated string prefix at offset 10");
}

// ---- streaming (proto >= 2) ---------------------------------------------------------

TEST(PgOutputDecoder, StreamMessagesBeforeProto2AreUnsupported) {
  PgOutputDecoder d(1);
  expect_error(d.decode(stream_start(5)), errc::unsupported,
               "Stream Start: requires proto_version >= 2; this session negotiated 1");
  expect_error(d.decode("E"), errc::unsupported, "Stream Stop");
  expect_error(d.decode(Bytes('A').u32(5).u32(5)), errc::unsupported, "Stream Abort");
  EXPECT_FALSE(d.in_stream());
}

TEST(PgOutputDecoder, StreamStartOpensAChunkWhoseChangesCarryAnXid) {
  PgOutputDecoder d(2);
  auto start = as<StreamStart>(d.decode(stream_start(700, true)));
  ASSERT_TRUE(start);
  EXPECT_EQ(start->xid, 700u);
  EXPECT_TRUE(start->first_segment);
  EXPECT_TRUE(d.in_stream());
  EXPECT_EQ(d.stream_xid(), 700u);

  // A subtransaction's change: its own xid.
  auto ins = as<Insert>(d.decode(Bytes('I').u32(701).u32(16384).u8('N').u16(1).value('t', "v")));
  ASSERT_TRUE(ins);
  EXPECT_EQ(ins->xid, 701u);
  EXPECT_EQ(ins->relid, 16384u);

  auto rel = as<Relation>(d.decode(relation_body(Bytes('R').u32(700), "public", 'd', 1)));
  ASSERT_TRUE(rel);
  EXPECT_EQ(rel->xid, 700u);
  EXPECT_EQ(rel->relid, 16384u);

  auto type = as<Type>(d.decode(Bytes('Y').u32(700).u32(99).str("").str("int4")));
  ASSERT_TRUE(type);
  EXPECT_EQ(type->xid, 700u);
  EXPECT_EQ(type->nspname, "pg_catalog");

  auto upd = as<Update>(d.decode(Bytes('U').u32(700).u32(5).u8('N').u16(0)));
  ASSERT_TRUE(upd);
  EXPECT_EQ(upd->xid, 700u);
  auto del = as<Delete>(d.decode(Bytes('D').u32(700).u32(5).u8('K').u16(0)));
  ASSERT_TRUE(del);
  EXPECT_EQ(del->xid, 700u);
  auto trunc = as<Truncate>(d.decode(Bytes('T').u32(700).i32(1).u8(1).u32(5)));
  ASSERT_TRUE(trunc);
  EXPECT_EQ(trunc->xid, 700u);
  EXPECT_TRUE(trunc->cascade());
  const Bytes message = Bytes('M').u32(700).u8(1).u64(9).str("p").i32(1).raw("c");
  auto msg = as<Message>(d.decode(message));
  ASSERT_TRUE(msg);
  EXPECT_EQ(msg->xid, 700u);
  EXPECT_EQ(msg->content, "c");

  // Origin never carries an xid, even inside a chunk.
  auto origin = as<Origin>(d.decode(Bytes('O').u64(1).str("o")));
  ASSERT_TRUE(origin);

  ASSERT_TRUE(as<StreamStop>(d.decode("E")));
  EXPECT_FALSE(d.in_stream());
  // Outside the chunk the same bytes no longer parse: the xid is not expected.
  expect_error(d.decode(Bytes('I').u32(701).u32(16384).u8('N').u16(1).value('t', "v")),
               errc::invalid_value, "Insert: expected tuple type 'N' (0x4e)");
}

TEST(PgOutputDecoder, StreamedChangeWithInvalidXidIsInvalid) {
  auto d = in_stream(2, 700);
  expect_error(d.decode(Bytes('I').u32(0).u32(1).u8('N').u16(0)), errc::invalid_value,
               "Insert: xid at offset 1 is 0 (InvalidTransactionId)");
}

TEST(PgOutputDecoder, StreamStartWithInvalidXidIsInvalid) {
  PgOutputDecoder d(2);
  expect_error(d.decode(stream_start(0)), errc::invalid_value,
               "Stream Start: xid at offset 1 is 0");
  EXPECT_FALSE(d.in_stream());
}

TEST(PgOutputDecoder, StreamStartWithFirstSegmentOtherThanZeroOrOneIsInvalid) {
  PgOutputDecoder d(2);
  expect_error(d.decode(Bytes('S').u32(5).u8(2)), errc::invalid_value,
               "first_segment 0x02 at offset 5 is neither 0 nor 1");
  EXPECT_FALSE(d.in_stream());
  auto later = as<StreamStart>(d.decode(stream_start(5, false)));
  ASSERT_TRUE(later);
  EXPECT_FALSE(later->first_segment);
}

TEST(PgOutputDecoder, StreamStartInsideAChunkIsAProtocolViolation) {
  auto d = in_stream(2, 700);
  expect_error(d.decode(stream_start(800)), errc::protocol_violation,
               "Stream Start: for xid 800 while the chunk of xid 700 is open");
  EXPECT_EQ(d.stream_xid(), 700u);
}

TEST(PgOutputDecoder, StreamStopOutsideAChunkIsAProtocolViolation) {
  PgOutputDecoder d(2);
  expect_error(d.decode("E"), errc::protocol_violation, "Stream Stop: without Stream Start");
}

TEST(PgOutputDecoder, TransactionBoundariesInsideAChunkAreProtocolViolations) {
  const std::vector<Bytes> boundaries = {
      Bytes('B').u64(1).i64(1).u32(1),
      Bytes('C').u8(0).u64(1).u64(2).i64(3),
      Bytes('c').u32(700).u8(0).u64(1).u64(2).i64(3),
      Bytes('A').u32(700).u32(700),
      Bytes('b').u64(1).u64(2).i64(3).u32(700).str("g"),
      Bytes('P').u8(0).u64(1).u64(2).i64(3).u32(700).str("g"),
      Bytes('K').u8(0).u64(1).u64(2).i64(3).u32(700).str("g"),
      Bytes('r').u8(0).u64(1).u64(2).i64(3).i64(4).u32(700).str("g"),
      Bytes('p').u8(0).u64(1).u64(2).i64(3).u32(700).str("g"),
  };
  for (const auto& msg : boundaries) {
    auto d = in_stream(3, 700);
    const std::string name(message_type_name(msg.data()[0]));
    expect_error(d.decode(msg), errc::protocol_violation,
                 name + ": not allowed inside the streamed chunk of xid 700 (no Stream Stop)");
    EXPECT_TRUE(d.in_stream()) << name;
    // The same message is fine once the chunk is closed.
    ASSERT_TRUE(d.decode("E").ok());
    EXPECT_TRUE(d.decode(msg).ok()) << name;
  }
}

TEST(PgOutputDecoder, StreamCommitDecodesItsFields) {
  PgOutputDecoder d(2);
  auto m = as<StreamCommit>(d.decode(Bytes('c').u32(700).u8(0).u64(0x10).u64(0x20).i64(30)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->xid, 700u);
  EXPECT_EQ(m->commit_lsn, Lsn(0x10));
  EXPECT_EQ(m->end_lsn, Lsn(0x20));
  EXPECT_EQ(m->commit_time.micros, 30);
  expect_error(d.decode(Bytes('c').u32(700).u8(4).u64(0x10).u64(0x20).i64(30)), errc::invalid_value,
               "Stream Commit: unrecognized flags 0x04");
}

TEST(PgOutputDecoder, StreamAbortOfTheTopLevelTransactionHasEqualXidAndSubxid) {
  PgOutputDecoder d(2);
  auto m = as<StreamAbort>(d.decode(Bytes('A').u32(700).u32(700)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->xid, m->subxid);
  EXPECT_FALSE(m->abort_lsn);
  EXPECT_FALSE(m->abort_time);
}

TEST(PgOutputDecoder, StreamAbortWithInvalidSubxidIsInvalid) {
  PgOutputDecoder d(2);
  expect_error(d.decode(Bytes('A').u32(700).u32(0)), errc::invalid_value,
               "Stream Abort: subxid at offset 5 is 0");
}

TEST(PgOutputDecoder, StreamAbortInProto4WithParallelStreamingCarriesAbortLsnAndTime) {
  PgOutputDecoder d(DecoderOptions{4, true});
  auto m = as<StreamAbort>(d.decode(Bytes('A').u32(700).u32(701).u64(0x5000).i64(1234)));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->subxid, 701u);
  EXPECT_EQ(m->abort_lsn, Lsn(0x5000));
  ASSERT_TRUE(m->abort_time);
  EXPECT_EQ(m->abort_time->micros, 1234);
  // Without the two fields the message is short.
  expect_error(d.decode(Bytes('A').u32(700).u32(701)), errc::truncated,
               "Stream Abort: truncated reading abort_lsn (8 bytes) at offset 9: 0 bytes left");
}

TEST(PgOutputDecoder, StreamAbortInProto4WithoutParallelStreamingHasNoAbortFields) {
  PgOutputDecoder d(4);
  auto m = as<StreamAbort>(d.decode(Bytes('A').u32(700).u32(701)));
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->abort_lsn);
  expect_error(d.decode(Bytes('A').u32(700).u32(701).u64(0x5000).i64(1234)), errc::trailing_data,
               "16 unexpected bytes after Stream Abort at offset 9");
}

TEST(PgOutputDecoder, FailedDecodeInsideAChunkLeavesTheChunkOpen) {
  auto d = in_stream(2, 700);
  expect_error(d.decode("E?"), errc::trailing_data, "after Stream Stop");
  EXPECT_TRUE(d.in_stream());
  EXPECT_TRUE(d.decode("E").ok());
  EXPECT_FALSE(d.in_stream());
}

TEST(PgOutputDecoder, ResetForgetsAnOpenChunk) {
  auto d = in_stream(2, 700);
  d.reset();
  EXPECT_FALSE(d.in_stream());
  EXPECT_TRUE(as<Insert>(d.decode(Bytes('I').u32(1).u8('N').u16(0))));
}

// ---- two-phase (proto >= 3) ---------------------------------------------------------

TEST(PgOutputDecoder, TwoPhaseMessagesBeforeProto3AreUnsupported) {
  PgOutputDecoder d(2);
  for (char type : {'b', 'P', 'K', 'r', 'p'}) {
    expect_error(d.decode(std::string(1, type)), errc::unsupported, "requires proto_version >= 3");
  }
}

TEST(PgOutputDecoder, BeginPrepareDecodesLsnsXidAndGid) {
  PgOutputDecoder d(3);
  auto m = as<BeginPrepare>(d.decode(Bytes('b').u64(0x10).u64(0x20).i64(5).u32(9).str("gid-1")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->prepare_lsn, Lsn(0x10));
  EXPECT_EQ(m->end_lsn, Lsn(0x20));
  EXPECT_EQ(m->prepare_time.micros, 5);
  EXPECT_EQ(m->xid, 9u);
  EXPECT_EQ(m->gid, "gid-1");
  expect_error(d.decode(Bytes('b').u64(0x10).u64(0).i64(5).u32(9).str("g")), errc::invalid_value,
               "Begin Prepare: end_lsn at offset 9 is not set");
}

TEST(PgOutputDecoder, PrepareAndStreamPrepareShareTheirLayout) {
  PgOutputDecoder d(3);
  const auto body = [](char type) {
    return Bytes(type).u8(0).u64(0x10).u64(0x20).i64(5).u32(9).str("g");
  };
  auto p = as<Prepare>(d.decode(body('P')));
  auto sp = as<StreamPrepare>(d.decode(body('p')));
  ASSERT_TRUE(p && sp);
  EXPECT_EQ(p->prepare_lsn, sp->prepare_lsn);
  EXPECT_EQ(p->end_lsn, sp->end_lsn);
  EXPECT_EQ(p->gid, sp->gid);
  expect_error(d.decode(Bytes('p').u8(0).u64(0).u64(0x20).i64(5).u32(9).str("g")),
               errc::invalid_value, "Stream Prepare: prepare_lsn at offset 2 is not set");
  expect_error(d.decode(Bytes('P').u8(1).u64(0x10).u64(0x20).i64(5).u32(9).str("g")),
               errc::invalid_value, "Prepare: unrecognized flags 0x01");
}

TEST(PgOutputDecoder, CommitPreparedDecodesItsFields) {
  PgOutputDecoder d(3);
  auto m =
      as<CommitPrepared>(d.decode(Bytes('K').u8(0).u64(0x30).u64(0x40).i64(7).u32(9).str("g")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->commit_lsn, Lsn(0x30));
  EXPECT_EQ(m->end_lsn, Lsn(0x40));
  EXPECT_EQ(m->commit_time.micros, 7);
  EXPECT_EQ(m->gid, "g");
}

TEST(PgOutputDecoder, RollbackPreparedDecodesBothEndsAndBothTimes) {
  PgOutputDecoder d(3);
  auto m = as<RollbackPrepared>(
      d.decode(Bytes('r').u8(0).u64(0x20).u64(0x50).i64(5).i64(8).u32(9).str("g")));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->prepare_end_lsn, Lsn(0x20));
  EXPECT_EQ(m->rollback_end_lsn, Lsn(0x50));
  EXPECT_EQ(m->prepare_time.micros, 5);
  EXPECT_EQ(m->rollback_time.micros, 8);
  expect_error(d.decode(Bytes('r').u8(0).u64(0x20).u64(0).i64(5).i64(8).u32(9).str("g")),
               errc::invalid_value, "rollback_end_lsn at offset 10 is not set");
}

// ---- every prefix of every constructed message ------------------------------------

TEST(PgOutputDecoder, EveryProperPrefixOfProto4ParallelMessagesIsTruncated) {
  const std::vector<Bytes> messages = {
      Bytes('A').u32(700).u32(701).u64(0x5000).i64(1234),
      Bytes('c').u32(700).u8(0).u64(1).u64(2).i64(3),
      Bytes('p').u8(0).u64(1).u64(2).i64(3).u32(700).str("gid"),
      Bytes('r').u8(0).u64(1).u64(2).i64(3).i64(4).u32(700).str("gid"),
  };
  for (const auto& msg : messages) {
    const std::string_view whole = msg;
    for (size_t len = 0; len < whole.size(); ++len) {
      PgOutputDecoder d(DecoderOptions{4, true});
      auto r = d.decode(whole.substr(0, len));
      ASSERT_FALSE(r.ok()) << whole[0] << " prefix " << len;
      EXPECT_EQ(r.error().code, errc::truncated) << r.error().describe();
    }
    PgOutputDecoder d(DecoderOptions{4, true});
    EXPECT_TRUE(d.decode(whole).ok()) << whole[0];
  }
}

// ---- fuzz corpus replay --------------------------------------------------------------

// Replays tests/fuzz/corpus/pgoutput/ (selector byte + message, see
// tests/fuzz/pgoutput_fuzz.cpp) in the ordinary and sanitizer builds, so an
// input the fuzzer once crashed on, saved there, stays a regression test.
TEST(PgOutputFuzzCorpus, EverySeedDecodesOrFailsWithAWalErrorAndKeepsState) {
  const auto dir = std::filesystem::path(OUTBOX_SOURCE_DIR) / "tests/fuzz/corpus/pgoutput";
  int seeds = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string input((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (input.empty()) continue;
    ++seeds;
    const auto selector = static_cast<uint8_t>(input[0]);
    const int proto = 1 + (selector & 3);
    PgOutputDecoder d(DecoderOptions{proto, proto == 4 && (selector & 4) != 0});
    if ((selector & 8) != 0 && proto >= 2) {
      ASSERT_TRUE(d.decode(stream_start(1)).ok());
    }
    const bool was_in_stream = d.in_stream();
    auto ev = d.decode(std::string_view(input).substr(1));
    if (ev.ok()) {
      EXPECT_EQ(message_type(*ev), input[1]) << entry.path();
    } else {
      EXPECT_EQ(&ev.error().code.category(), &category()) << entry.path();
      EXPECT_FALSE(ev.error().message.empty()) << entry.path();
      EXPECT_EQ(d.in_stream(), was_in_stream) << entry.path();
    }
  }
  EXPECT_GT(seeds, 50);
}

}  // namespace
}  // namespace wal
