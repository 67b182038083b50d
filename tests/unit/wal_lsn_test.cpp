#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "wal/lsn.h"

namespace wal {
namespace {

TEST(Lsn, ParseReadsUpperAndLowerHalves) {
  auto lsn = Lsn::parse("16/B374D848");
  ASSERT_TRUE(lsn);
  EXPECT_EQ(lsn->value(), 0x16B374D848ull);
}

TEST(Lsn, ParseAcceptsLowerCaseHex) {
  EXPECT_EQ(Lsn::parse("16/b374d848"), Lsn(0x16B374D848ull));
}

TEST(Lsn, ParseAcceptsZeroPaddedHalves) {
  EXPECT_EQ(Lsn::parse("00000016/0B374D84"), Lsn(0x160B374D84ull));
  EXPECT_EQ(Lsn::parse("00000000/00000000"), Lsn(0));
  EXPECT_EQ(Lsn::parse("0016/00B374D8"), Lsn(0x1600B374D8ull));
}

TEST(Lsn, ParseAcceptsTheExtremes) {
  EXPECT_EQ(Lsn::parse("0/0"), Lsn(0));
  EXPECT_EQ(Lsn::parse("FFFFFFFF/FFFFFFFF"), Lsn(UINT64_MAX));
}

TEST(Lsn, ParseRejectsMalformedText) {
  for (const char* bad : {"",
                          "/",
                          "0",
                          "16",
                          "16/",
                          "/B374D848",
                          "16//B374D848",
                          "16/B374D848/0",
                          "G/0",
                          "0/G",
                          "0x16/0",
                          "16/0x1",
                          " 16/0",
                          "16/0 ",
                          "16 /0",
                          "+16/0",
                          "-16/0",
                          "16/-0",
                          "123456789/0",  // nine digits overflow 32 bits
                          "0/100000000",  // so do these
                          "16.B374D848",
                          "16/B374D848\n"}) {
    EXPECT_FALSE(Lsn::parse(bad)) << '"' << bad << '"';
  }
}

TEST(Lsn, ParseRejectsEmbeddedNul) {
  EXPECT_FALSE(Lsn::parse(std::string("16/B3\0", 6)));
}

TEST(Lsn, ToStringIsUpperCaseWithoutPadding) {
  EXPECT_EQ(Lsn(0x16B374D848ull).to_string(), "16/B374D848");
  EXPECT_EQ(Lsn(0x160B374D84ull).to_string(), "16/B374D84");
  EXPECT_EQ(Lsn(0).to_string(), "0/0");
  EXPECT_EQ(Lsn(0x100000000ull).to_string(), "1/0");
  EXPECT_EQ(Lsn(UINT64_MAX).to_string(), "FFFFFFFF/FFFFFFFF");
  EXPECT_EQ(Lsn(0x10000000F0ull).to_string(), "10/F0");
  EXPECT_EQ(Lsn(0x0000000A00000001ull).to_string(), "A/1");
  EXPECT_EQ(Lsn(0x8000000000000000ull).to_string(), "80000000/0");
}

TEST(Lsn, FormatThenParseRoundTrips) {
  for (uint64_t v : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000},
                     uint64_t{0x16B374D848}, UINT64_MAX - 1, UINT64_MAX}) {
    EXPECT_EQ(Lsn::parse(Lsn(v).to_string()), Lsn(v)) << v;
  }
}

TEST(Lsn, OrdersByPositionNotByText) {
  // "9/0" sorts after "10/0" as text but is before it in the WAL.
  EXPECT_LT(*Lsn::parse("9/0"), *Lsn::parse("10/0"));
  EXPECT_LT(*Lsn::parse("0/FFFFFFFF"), *Lsn::parse("1/0"));
  EXPECT_TRUE(Lsn().is_zero());
  EXPECT_FALSE(Lsn(1).is_zero());
}

TEST(PgTimestamp, PostgresEpochIsUnixSecond946684800) {
  EXPECT_EQ(PgTimestamp{0}.unix_micros(), 946684800ll * 1000000);
  EXPECT_EQ(PgTimestamp::from_unix_micros(946684800ll * 1000000).micros, 0);
}

TEST(PgTimestamp, UnixConversionRoundTripsIncludingBeforeTheEpoch) {
  for (int64_t pg : {int64_t{-1000000}, int64_t{0}, int64_t{767882096789000}}) {
    EXPECT_EQ(PgTimestamp::from_unix_micros(PgTimestamp{pg}.unix_micros()).micros, pg);
  }
  // 2024-05-01 12:34:56.789 UTC
  EXPECT_EQ(PgTimestamp::from_unix_micros(1714566896789000).micros, 767882096789000);
}

}  // namespace
}  // namespace wal
