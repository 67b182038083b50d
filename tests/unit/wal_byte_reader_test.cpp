#include <gtest/gtest.h>

#include <cstddef>
#include <span>
#include <string>

#include "wal/byte_reader.h"

namespace wal {
namespace {

TEST(ByteReader, ReadsUnsignedIntegersBigEndian) {
  const std::string buf("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 15);
  ByteReader r(buf);
  EXPECT_EQ(*r.read_u8("a"), 0x01);
  EXPECT_EQ(*r.read_u16("b"), 0x0203);
  EXPECT_EQ(*r.read_u32("c"), 0x04050607u);
  EXPECT_EQ(*r.read_u64("d"), 0x08090a0b0c0d0e0full);
  EXPECT_TRUE(r.at_end());
  EXPECT_EQ(r.offset(), 15u);
}

TEST(ByteReader, ReadsSignedIntegersAsTwosComplement) {
  const std::string buf(
      "\xff\xfe"
      "\xff\xff\xff\xff"
      "\x80\x00\x00\x00\x00\x00\x00\x00"
      "\x7f\xff",
      16);
  ByteReader r(buf);
  EXPECT_EQ(*r.read_i16("a"), -2);
  EXPECT_EQ(*r.read_i32("b"), -1);
  EXPECT_EQ(*r.read_i64("c"), INT64_MIN);
  EXPECT_EQ(*r.read_i16("d"), 0x7fff);
}

TEST(ByteReader, ReadsLsnAndTimestamp) {
  const std::string buf("\x00\x00\x00\x16\xb3\x74\xd8\x48\xff\xff\xff\xff\xff\xf0\xbd\xc0", 16);
  ByteReader r(buf);
  EXPECT_EQ(*r.read_lsn("lsn"), Lsn(0x16B374D848ull));
  EXPECT_EQ(r.read_timestamp("time")->micros, -1000000);
}

TEST(ByteReader, ShortReadFailsNamingFieldSizeAndOffsetWithoutAdvancing) {
  const std::string buf("\x01\x02\x03", 3);
  ByteReader r(buf);
  ASSERT_TRUE(r.read_u8("kind").ok());
  auto v = r.read_u32("relid");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, errc::truncated);
  EXPECT_EQ(v.error().message, "truncated reading relid (4 bytes) at offset 1: 2 bytes left");
  EXPECT_EQ(r.offset(), 1u);
  EXPECT_EQ(*r.read_u16("rest"), 0x0203);
}

TEST(ByteReader, EveryReadOnAnEmptyBufferFails) {
  ByteReader r(std::string_view{});
  EXPECT_FALSE(r.read_u8("x").ok());
  EXPECT_FALSE(r.read_u16("x").ok());
  EXPECT_FALSE(r.read_u32("x").ok());
  EXPECT_FALSE(r.read_u64("x").ok());
  EXPECT_FALSE(r.read_i16("x").ok());
  EXPECT_FALSE(r.read_i32("x").ok());
  EXPECT_FALSE(r.read_i64("x").ok());
  EXPECT_FALSE(r.read_lsn("x").ok());
  EXPECT_FALSE(r.read_timestamp("x").ok());
  EXPECT_FALSE(r.read_cstring("x").ok());
  EXPECT_FALSE(r.read_bytes(1, "x").ok());
  EXPECT_TRUE(r.read_bytes(0, "x").ok());
  EXPECT_TRUE(r.at_end());
}

TEST(ByteReader, CStringStopsAtTheFirstNulAndConsumesIt) {
  const std::string buf("public\0outbox\0\0x", 16);
  ByteReader r(buf);
  EXPECT_EQ(*r.read_cstring("nspname"), "public");
  EXPECT_EQ(*r.read_cstring("relname"), "outbox");
  EXPECT_EQ(*r.read_cstring("empty"), "");
  EXPECT_EQ(r.offset(), 15u);
}

TEST(ByteReader, CStringWithoutNulFailsWithoutAdvancing) {
  ByteReader r(std::string_view("ab\0cdef", 7));
  ASSERT_TRUE(r.read_cstring("first").ok());
  auto s = r.read_cstring("relname");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, errc::truncated);
  EXPECT_EQ(s.error().message, "unterminated string relname at offset 3: no NUL in 4 bytes left");
  EXPECT_EQ(r.offset(), 3u);
}

TEST(ByteReader, CStringViewPointsIntoTheBuffer) {
  const std::string buf("name\0", 5);
  ByteReader r(buf);
  EXPECT_EQ(r.read_cstring("n")->data(), buf.data());
}

TEST(ByteReader, ReadBytesReturnsAViewAndChecksTheLength) {
  const std::string buf("abcdef");
  ByteReader r(buf);
  auto two = r.read_bytes(2, "head");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(*two, "ab");
  EXPECT_EQ(two->data(), buf.data());
  auto too_many = r.read_bytes(5, "value");
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().message,
            "truncated reading value (5 bytes) at offset 2: 4 bytes left");
  EXPECT_EQ(*r.read_bytes(4, "rest"), "cdef");
}

TEST(ByteReader, ReadBytesWithAHugeLengthFailsWithoutOverflow) {
  ByteReader r(std::string_view("abc"));
  ASSERT_TRUE(r.read_u8("x").ok());
  EXPECT_FALSE(r.read_bytes(SIZE_MAX, "value").ok());
  EXPECT_FALSE(r.read_bytes(SIZE_MAX - 1, "value").ok());
  EXPECT_EQ(r.remaining(), 2u);
}

TEST(ByteReader, ExpectEndReportsTrailingBytes) {
  ByteReader r(std::string_view("abc"));
  ASSERT_TRUE(r.read_u8("x").ok());
  auto end = r.expect_end("Commit");
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.error().code, errc::trailing_data);
  EXPECT_EQ(end.error().message, "2 unexpected bytes after Commit at offset 1");
  ASSERT_TRUE(r.read_bytes(2, "rest").ok());
  EXPECT_TRUE(r.expect_end("Commit").ok());
}

TEST(ByteReader, ReadsFromAByteSpan) {
  const std::byte raw[] = {std::byte{0x12}, std::byte{0x34}};
  ByteReader r{std::span<const std::byte>(raw)};
  EXPECT_EQ(*r.read_u16("v"), 0x1234);
}

TEST(ByteReader, DescribeByteShowsPrintableCharactersAndHex) {
  EXPECT_EQ(describe_byte('N'), "'N' (0x4e)");
  EXPECT_EQ(describe_byte(0), "0x00");
  EXPECT_EQ(describe_byte(0xff), "0xff");
  EXPECT_EQ(describe_byte('\n'), "0x0a");
}

TEST(WalErrc, CodesBelongToTheWalCategoryWithReadableNames) {
  std::error_code ec = errc::truncated;
  EXPECT_EQ(ec.category().name(), std::string("wal"));
  EXPECT_EQ(ec.message(), "message truncated");
  EXPECT_EQ(std::error_code(errc::unknown_message).message(), "unknown message type");
  EXPECT_EQ(std::error_code(errc::trailing_data).message(), "trailing bytes after message");
  EXPECT_NE(std::error_code(errc::truncated), std::error_code(errc::invalid_value));
  EXPECT_TRUE(ec == errc::truncated);
}

TEST(WalErrc, WithContextKeepsTheCode) {
  auto e = with_context("Insert", make_error(errc::invalid_value, "bad"));
  EXPECT_EQ(e.code, errc::invalid_value);
  EXPECT_EQ(e.message, "Insert: bad");
}

}  // namespace
}  // namespace wal
