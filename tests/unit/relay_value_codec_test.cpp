// Column values in both pgoutput forms, byte for byte as the send functions
// write them (PostgreSQL src/backend/utils/adt: textsend, uuid_send,
// int8send, jsonb_send, byteasend).
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>

#include "relay/errc.h"
#include "relay/value_codec.h"

namespace relay {
namespace {

std::string bytes(std::initializer_list<uint8_t> b) {
  return std::string(b.begin(), b.end());
}

std::string be(uint64_t v, size_t width) {
  std::string out(width, '\0');
  for (size_t i = 0; i < width; ++i) out[width - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

ColumnDesc col(std::string name, wal::Oid type) {
  return ColumnDesc{std::move(name), type, -1};
}
RawValue text(std::string_view s) {
  return RawValue{ValueKind::kText, s};
}
RawValue binary(std::string_view s) {
  return RawValue{ValueKind::kBinary, s};
}

std::string as_text(const ColumnDesc& c, RawValue v) {
  std::string out;
  auto r = append_text(c, v, out);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return out;
}

std::string as_bytes(const ColumnDesc& c, RawValue v) {
  std::string out;
  auto r = append_bytes(c, v, out);
  EXPECT_TRUE(r.ok()) << r.error().describe();
  return out;
}

common::Error text_error(const ColumnDesc& c, RawValue v) {
  std::string out;
  auto r = append_text(c, v, out);
  EXPECT_FALSE(r.ok());
  return r.ok() ? common::Error{} : r.error();
}

common::Error bytes_error(const ColumnDesc& c, RawValue v) {
  std::string out;
  auto r = append_bytes(c, v, out);
  EXPECT_FALSE(r.ok());
  return r.ok() ? common::Error{} : r.error();
}

common::Error integer_error(const ColumnDesc& c, RawValue v) {
  auto r = decode_integer(c, v);
  EXPECT_FALSE(r.ok());
  return r.ok() ? common::Error{} : r.error();
}

// ---- text-like types ------------------------------------------------------

TEST(ValueCodecText, TextLikeTypesInEitherFormReadAsTheSameCharacters) {
  for (wal::Oid type : {pg_type::kText, pg_type::kVarchar, pg_type::kBpchar, pg_type::kName}) {
    const ColumnDesc c = col("topic", type);
    EXPECT_EQ(as_text(c, text("orders.créé")), "orders.créé") << type;
    EXPECT_EQ(as_text(c, binary("orders.créé")), "orders.créé") << type;
    EXPECT_EQ(as_bytes(c, text("p ü")), "p ü") << type;
    EXPECT_EQ(as_bytes(c, binary("p ü")), "p ü") << type;
  }
}

TEST(ValueCodecText, BpcharKeepsItsPaddingBecauseThatIsItsValue) {
  EXPECT_EQ(as_text(col("k", pg_type::kBpchar), text("ab   ")), "ab   ");
}

TEST(ValueCodecText, AppendTextAppendsToWhatIsAlreadyThere) {
  std::string out = "orders.";
  ASSERT_TRUE(append_text(col("t", pg_type::kText), text("eu"), out).ok());
  EXPECT_EQ(out, "orders.eu");
}

TEST(ValueCodecText, EmptyTextValueIsAnEmptyStringNotAnError) {
  EXPECT_EQ(as_text(col("t", pg_type::kText), text("")), "");
  EXPECT_EQ(as_bytes(col("t", pg_type::kText), binary("")), "");
}

// ---- json and jsonb -------------------------------------------------------

TEST(ValueCodecJson, JsonInEitherFormIsItsTextUnchanged) {
  const ColumnDesc c = col("payload", pg_type::kJson);
  EXPECT_EQ(as_text(c, text("{\"a\" : [1, 2]}")), "{\"a\" : [1, 2]}");
  EXPECT_EQ(as_text(c, binary("{\"a\" : [1, 2]}")), "{\"a\" : [1, 2]}");
  EXPECT_EQ(as_bytes(c, binary("{\"j\":true}")), "{\"j\":true}");
}

TEST(ValueCodecJson, JsonbTextFormIsItsText) {
  EXPECT_EQ(as_text(col("h", pg_type::kJsonb), text("{\"a\": [1, 2]}")), "{\"a\": [1, 2]}");
}

TEST(ValueCodecJson, JsonbBinaryFormDropsTheVersionByte) {
  const ColumnDesc c = col("h", pg_type::kJsonb);
  const std::string wire = bytes({0x01}) + "{\"a\": [1, 2]}";
  EXPECT_EQ(as_text(c, binary(wire)), "{\"a\": [1, 2]}");
  EXPECT_EQ(as_bytes(c, binary(wire)), "{\"a\": [1, 2]}");
}

TEST(ValueCodecJson, JsonbBinaryWithVersionOtherThanOneIsMalformed) {
  const ColumnDesc c = col("headers", pg_type::kJsonb);
  const std::string wire = bytes({0x02}) + "{}";
  const common::Error e = text_error(c, binary(wire));
  EXPECT_EQ(e.code, errc::malformed_value);
  EXPECT_EQ(e.message,
            "column 'headers' of type jsonb (OID 3802): binary value has format version 2, "
            "expected 1");
  EXPECT_EQ(bytes_error(c, binary(wire)).code, errc::malformed_value);
}

TEST(ValueCodecJson, JsonbBinaryWithoutVersionByteIsMalformed) {
  const common::Error e = text_error(col("headers", pg_type::kJsonb), binary(""));
  EXPECT_EQ(e.code, errc::malformed_value);
  EXPECT_NE(e.message.find("empty"), std::string::npos) << e.message;
}

// ---- uuid -----------------------------------------------------------------

TEST(ValueCodecUuid, Binary16BytesPrintCanonicalLowerCase) {
  const std::string wire = bytes({0x8a, 0x7c, 0x3e, 0x0e, 0x5b, 0x1f, 0x4c, 0x8a, 0x9f, 0x3e, 0x2d,
                                  0x6b, 0x1a, 0x0c, 0x9e, 0x77});
  EXPECT_EQ(as_text(col("id", pg_type::kUuid), binary(wire)),
            "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77");
}

TEST(ValueCodecUuid, BinaryAllZeroAndAllOnesFormatEveryNibble) {
  EXPECT_EQ(as_text(col("id", pg_type::kUuid), binary(std::string(16, '\0'))),
            "00000000-0000-0000-0000-000000000000");
  EXPECT_EQ(as_text(col("id", pg_type::kUuid), binary(std::string(16, '\xff'))),
            "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

TEST(ValueCodecUuid, TextFormPassesThrough) {
  EXPECT_EQ(as_text(col("id", pg_type::kUuid), text("8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77")),
            "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e77");
}

TEST(ValueCodecUuid, BinaryOtherThan16BytesIsMalformed) {
  const ColumnDesc c = col("id", pg_type::kUuid);
  for (size_t n : {0u, 15u, 17u}) {
    const common::Error e = text_error(c, binary(std::string(n, '\x01')));
    EXPECT_EQ(e.code, errc::malformed_value) << n;
    EXPECT_EQ(e.message, "column 'id' of type uuid (OID 2950): binary value has " +
                             std::to_string(n) + " bytes, expected 16");
  }
}

TEST(ValueCodecUuid, TextNotIn8_4_4_4_12FormIsMalformed) {
  const ColumnDesc c = col("id", pg_type::kUuid);
  for (const char* bad :
       {"8a7c3e0e5b1f4c8a9f3e2d6b1a0c9e77", "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e7",
        "8a7c3e0e-5b1f-4c8a-9f3e-2d6b1a0c9e7g", "8a7c3e0e-5b1f-4c8a+9f3e-2d6b1a0c9e77"}) {
    EXPECT_EQ(text_error(c, text(bad)).code, errc::malformed_value) << bad;
  }
}

// ---- integers -------------------------------------------------------------

TEST(ValueCodecInteger, BinaryBigEndianReadsAsIntegerAndDecimalText) {
  const ColumnDesc i2 = col("n", pg_type::kInt2);
  const ColumnDesc i4 = col("n", pg_type::kInt4);
  const ColumnDesc i8 = col("n", pg_type::kInt8);
  EXPECT_EQ(*decode_integer(i2, binary(be(0x0102, 2))), 258);
  EXPECT_EQ(*decode_integer(i4, binary(be(0x01020304, 4))), 16909060);
  EXPECT_EQ(*decode_integer(i8, binary(be(9000000000ull, 8))), 9000000000);
  EXPECT_EQ(as_text(i2, binary(be(0x0102, 2))), "258");
  EXPECT_EQ(as_text(i4, binary(be(42, 4))), "42");
  EXPECT_EQ(as_text(i8, binary(be(9000000000ull, 8))), "9000000000");
}

TEST(ValueCodecInteger, BinaryNegativesAreTwosComplementOfTheTypeWidth) {
  EXPECT_EQ(*decode_integer(col("n", pg_type::kInt2), binary(be(0xfffe, 2))), -2);
  EXPECT_EQ(as_text(col("n", pg_type::kInt2), binary(be(0x8000, 2))), "-32768");
  EXPECT_EQ(as_text(col("n", pg_type::kInt4), binary(be(0x80000000u, 4))), "-2147483648");
  EXPECT_EQ(as_text(col("n", pg_type::kInt8), binary(be(0x8000000000000000ull, 8))),
            "-9223372036854775808");
  EXPECT_EQ(as_text(col("n", pg_type::kInt8), binary(be(0x7fffffffffffffffull, 8))),
            "9223372036854775807");
}

TEST(ValueCodecInteger, TextFormReadsAsIntegerAndPassesThroughAsText) {
  EXPECT_EQ(*decode_integer(col("n", pg_type::kInt2), text("-32768")), -32768);
  EXPECT_EQ(*decode_integer(col("n", pg_type::kInt4), text("7")), 7);
  EXPECT_EQ(*decode_integer(col("n", pg_type::kInt8), text("-9223372036854775808")),
            std::numeric_limits<int64_t>::min());
  EXPECT_EQ(as_text(col("n", pg_type::kInt8), text("9000000000")), "9000000000");
}

TEST(ValueCodecInteger, BinaryOfTheWrongWidthIsMalformed) {
  const common::Error e = integer_error(col("partition", pg_type::kInt4), binary(be(1, 8)));
  EXPECT_EQ(e.code, errc::malformed_value);
  EXPECT_EQ(e.message,
            "column 'partition' of type int4 (OID 23): binary value has 8 bytes, expected 4");
  EXPECT_EQ(integer_error(col("n", pg_type::kInt2), binary(be(1, 4))).code, errc::malformed_value);
  EXPECT_EQ(integer_error(col("n", pg_type::kInt8), binary(be(1, 4))).code, errc::malformed_value);
  EXPECT_EQ(text_error(col("n", pg_type::kInt8), binary("")).code, errc::malformed_value);
}

TEST(ValueCodecInteger, TextThatIsNotAnIntegerOfTheTypeIsMalformed) {
  for (const char* bad : {"", "12a", "+1", " 1", "1 ", "0x10", "1.0", "-"}) {
    const common::Error e = integer_error(col("n", pg_type::kInt4), text(bad));
    EXPECT_EQ(e.code, errc::malformed_value) << bad;
  }
  EXPECT_EQ(integer_error(col("n", pg_type::kInt2), text("32768")).message,
            "column 'n' of type int2 (OID 21): text value '32768' is not a valid int2");
  EXPECT_EQ(integer_error(col("n", pg_type::kInt4), text("2147483648")).code,
            errc::malformed_value);
  EXPECT_EQ(integer_error(col("n", pg_type::kInt8), text("9223372036854775808")).code,
            errc::malformed_value);
  EXPECT_EQ(text_error(col("n", pg_type::kInt4), text("12a")).code, errc::malformed_value);
}

TEST(ValueCodecInt32, EveryIntegerTypeInEitherFormFitsWhenInRange) {
  EXPECT_EQ(*decode_int32(col("p", pg_type::kInt2), binary(be(3, 2))), 3);
  EXPECT_EQ(*decode_int32(col("p", pg_type::kInt4), text("2147483647")), 2147483647);
  EXPECT_EQ(*decode_int32(col("p", pg_type::kInt8), binary(be(uint64_t(-2147483648LL), 8))),
            -2147483648);
  EXPECT_EQ(*decode_int32(col("p", pg_type::kInt8), text("5")), 5);
}

TEST(ValueCodecInt32, Int8BeyondInt32IsOutOfRangeNotMalformed) {
  auto r = decode_int32(col("partition", pg_type::kInt8), binary(be(3000000000ull, 8)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::out_of_range);
  EXPECT_EQ(r.error().message,
            "column 'partition' of type int8 (OID 20): value 3000000000 does not fit in an int32");
  EXPECT_EQ(decode_int32(col("p", pg_type::kInt8), text("-2147483649")).error().code,
            errc::out_of_range);
}

// ---- bytea ----------------------------------------------------------------

TEST(ValueCodecBytea, BinaryIsTheRawBytes) {
  const std::string raw = bytes({0x00, 0xff, 0x10, 0x00});
  EXPECT_EQ(as_bytes(col("payload", pg_type::kBytea), binary(raw)), raw);
}

TEST(ValueCodecBytea, TextHexDecodesInEitherCase) {
  const ColumnDesc c = col("payload", pg_type::kBytea);
  EXPECT_EQ(as_bytes(c, text("\\x00ff10")), bytes({0x00, 0xff, 0x10}));
  EXPECT_EQ(as_bytes(c, text("\\xDEADbeef")), bytes({0xde, 0xad, 0xbe, 0xef}));
  EXPECT_EQ(as_bytes(c, text("\\x")), "");
}

TEST(ValueCodecBytea, TextWithoutHexPrefixIsMalformed) {
  // bytea_output=escape would send this; the connection pins hex.
  const common::Error e = bytes_error(col("payload", pg_type::kBytea), text("\\000\\377"));
  EXPECT_EQ(e.code, errc::malformed_value);
  EXPECT_EQ(e.message,
            "column 'payload' of type bytea (OID 17): text value does not start with \\x "
            "(bytea_output must be hex)");
  EXPECT_EQ(bytes_error(col("p", pg_type::kBytea), text("00ff")).code, errc::malformed_value);
  EXPECT_EQ(bytes_error(col("p", pg_type::kBytea), text("")).code, errc::malformed_value);
}

TEST(ValueCodecBytea, TextWithOddDigitCountOrNonHexIsMalformed) {
  const ColumnDesc c = col("payload", pg_type::kBytea);
  EXPECT_EQ(bytes_error(c, text("\\x0ff")).message,
            "column 'payload' of type bytea (OID 17): text value has an odd number of hex digits "
            "(3)");
  EXPECT_EQ(bytes_error(c, text("\\x00fg")).message,
            "column 'payload' of type bytea (OID 17): text value has 'g' at offset 5, expected a "
            "hex digit");
  EXPECT_EQ(bytes_error(c, text("\\x 0")).code, errc::malformed_value);
}

// ---- unsupported types and kinds -------------------------------------------

TEST(ValueCodecUnsupported, FormATypeCannotBeReadInNamesColumnTypeOidAndForm) {
  const common::Error bytea_text = text_error(col("id", pg_type::kBytea), binary("x"));
  EXPECT_EQ(bytea_text.code, errc::unsupported_type);
  EXPECT_EQ(bytea_text.message, "column 'id' of type bytea (OID 17): cannot be read as text");

  const common::Error uuid_bytes = bytes_error(col("payload", pg_type::kUuid), binary("x"));
  EXPECT_EQ(uuid_bytes.message,
            "column 'payload' of type uuid (OID 2950): cannot be read as bytes");

  const common::Error timestamptz = text_error(col("created_at", 1184), text("2024-01-01"));
  EXPECT_EQ(timestamptz.code, errc::unsupported_type);
  EXPECT_EQ(timestamptz.message, "column 'created_at' of type OID 1184: cannot be read as text");

  auto text_as_int = decode_int32(col("partition", pg_type::kText), text("1"));
  ASSERT_FALSE(text_as_int.ok());
  EXPECT_EQ(text_as_int.error().message,
            "column 'partition' of type text (OID 25): cannot be read as an int32");
}

TEST(ValueCodecUnsupported, CanDecodeMatchesWhatTheDecodersAccept) {
  EXPECT_TRUE(can_decode(pg_type::kUuid, ValueForm::kText));
  EXPECT_TRUE(can_decode(pg_type::kInt8, ValueForm::kText));
  EXPECT_TRUE(can_decode(pg_type::kJsonb, ValueForm::kText));
  EXPECT_FALSE(can_decode(pg_type::kBytea, ValueForm::kText));
  EXPECT_TRUE(can_decode(pg_type::kBytea, ValueForm::kBytes));
  EXPECT_TRUE(can_decode(pg_type::kJson, ValueForm::kBytes));
  EXPECT_FALSE(can_decode(pg_type::kUuid, ValueForm::kBytes));
  EXPECT_FALSE(can_decode(pg_type::kInt4, ValueForm::kBytes));
  EXPECT_TRUE(can_decode(pg_type::kInt2, ValueForm::kInt32));
  EXPECT_FALSE(can_decode(pg_type::kText, ValueForm::kInt32));
  EXPECT_FALSE(can_decode(1184, ValueForm::kText));
}

TEST(ValueCodecKinds, NullUnchangedAndUnknownKindsHaveNoValueToDecode) {
  const ColumnDesc c = col("topic", pg_type::kText);
  for (char kind : {'n', 'u', 'x', '\0'}) {
    RawValue v{static_cast<ValueKind>(kind), "abc"};
    EXPECT_EQ(text_error(c, v).code, errc::protocol_violation) << kind;
    EXPECT_EQ(bytes_error(c, v).code, errc::protocol_violation) << kind;
    EXPECT_EQ(integer_error(col("p", pg_type::kInt4), v).code, errc::protocol_violation) << kind;
  }
  EXPECT_EQ(text_error(c, RawValue{ValueKind::kUnchanged, {}}).message,
            "column 'topic' of type text (OID 25): expected a text ('t') or binary ('b') value, "
            "got kind 'u'");
  EXPECT_EQ(text_error(c, RawValue{static_cast<ValueKind>('\x01'), {}}).message,
            "column 'topic' of type text (OID 25): expected a text ('t') or binary ('b') value, "
            "got kind '\\x01'");
}

// ---- messages -------------------------------------------------------------

TEST(ValueCodecQuote, NonPrintableBytesAreEscapedAndLongValuesCut) {
  EXPECT_EQ(quote_value("abc"), "'abc'");
  EXPECT_EQ(quote_value(std::string("a\nb'\\\x00", 6)), "'a\\x0ab\\x27\\x5c\\x00'");
  EXPECT_EQ(quote_value("abcdef", 3), "'abc'... (6 bytes)");
}

TEST(ValueCodecErrc, CategoryNamesTheModuleAndEveryCode) {
  EXPECT_STREQ(make_error_code(errc::bad_row).category().name(), "relay");
  EXPECT_EQ(make_error_code(errc::malformed_value).message(), "malformed column value");
  EXPECT_EQ(make_error_code(errc::unknown_relation).message(), "row for an unknown relation");
}

}  // namespace
}  // namespace relay
