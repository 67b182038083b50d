#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "wal/copy_protocol.h"

namespace wal {
namespace {

std::string be64(uint64_t v) {
  std::string s;
  for (int i = 7; i >= 0; --i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

std::string keepalive(uint64_t wal_end, int64_t send_time, uint8_t reply) {
  return "k" + be64(wal_end) + be64(static_cast<uint64_t>(send_time)) +
         std::string(1, static_cast<char>(reply));
}

std::string xlog_data(uint64_t start, uint64_t end, int64_t send_time, std::string_view data) {
  return "w" + be64(start) + be64(end) + be64(static_cast<uint64_t>(send_time)) + std::string(data);
}

TEST(CopyProtocol, XLogDataDecodesHeaderAndBorrowsThePayload) {
  const std::string payload = xlog_data(0x16B374D848, 0x16B3750000, 767882096789000, "B-message");
  auto msg = parse_copy_data(payload);
  ASSERT_TRUE(msg.ok()) << msg.error().describe();
  const auto* x = std::get_if<XLogData>(&*msg);
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->wal_start, Lsn(0x16B374D848));
  EXPECT_EQ(x->wal_end, Lsn(0x16B3750000));
  EXPECT_EQ(x->send_time.micros, 767882096789000);
  EXPECT_EQ(x->data, "B-message");
  EXPECT_EQ(x->data.data(), payload.data() + 25);
}

TEST(CopyProtocol, XLogDataWithEmptyPayloadIsAccepted) {
  auto msg = parse_copy_data(xlog_data(1, 2, 3, ""));
  ASSERT_TRUE(msg.ok());
  EXPECT_TRUE(std::get<XLogData>(*msg).data.empty());
}

TEST(CopyProtocol, EveryPrefixOfTheXLogDataHeaderIsTruncated) {
  const std::string payload = xlog_data(1, 2, 3, "");
  for (size_t len = 0; len < payload.size(); ++len) {
    auto msg = parse_copy_data(std::string_view(payload).substr(0, len));
    ASSERT_FALSE(msg.ok()) << len;
    EXPECT_EQ(msg.error().code, errc::truncated) << msg.error().describe();
  }
}

TEST(CopyProtocol, KeepaliveDecodesWalEndTimeAndReplyRequest) {
  auto msg = parse_copy_data(keepalive(0x2A0000, -7, 1));
  ASSERT_TRUE(msg.ok()) << msg.error().describe();
  const auto* k = std::get_if<PrimaryKeepalive>(&*msg);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->wal_end, Lsn(0x2A0000));
  EXPECT_EQ(k->send_time.micros, -7);
  EXPECT_TRUE(k->reply_requested);
  EXPECT_FALSE(std::get<PrimaryKeepalive>(*parse_copy_data(keepalive(1, 1, 0))).reply_requested);
}

TEST(CopyProtocol, KeepaliveWithReplyByteOtherThanZeroOrOneIsInvalid) {
  auto msg = parse_copy_data(keepalive(1, 1, 2));
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().code, errc::invalid_value);
  EXPECT_EQ(msg.error().message, "keepalive: reply_requested 0x02 at offset 17 is neither 0 nor 1");
}

TEST(CopyProtocol, EveryPrefixOfAKeepaliveIsTruncated) {
  const std::string payload = keepalive(1, 2, 1);
  ASSERT_EQ(payload.size(), 18u);
  for (size_t len = 0; len < payload.size(); ++len) {
    auto msg = parse_copy_data(std::string_view(payload).substr(0, len));
    ASSERT_FALSE(msg.ok()) << len;
    EXPECT_EQ(msg.error().code, errc::truncated) << msg.error().describe();
  }
}

TEST(CopyProtocol, KeepaliveWithTrailingBytesIsRejected) {
  auto msg = parse_copy_data(keepalive(1, 2, 0) + "x");
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().code, errc::trailing_data);
  EXPECT_EQ(msg.error().message, "keepalive: 1 unexpected bytes after keepalive at offset 18");
}

TEST(CopyProtocol, UnknownTypeByteIsAnErrorNamingTheByte) {
  auto msg = parse_copy_data("r" + std::string(33, '\0'));
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().code, errc::unknown_message);
  EXPECT_EQ(msg.error().message, "unknown CopyData message type 'r' (0x72)");
  auto nul = parse_copy_data(std::string(1, '\0'));
  ASSERT_FALSE(nul.ok());
  EXPECT_EQ(nul.error().message, "unknown CopyData message type 0x00");
}

TEST(CopyProtocol, EmptyCopyDataIsTruncated) {
  auto msg = parse_copy_data("");
  ASSERT_FALSE(msg.ok());
  EXPECT_EQ(msg.error().code, errc::truncated);
}

TEST(CopyProtocol, StandbyStatusUpdateIs34BytesInProtocolOrder) {
  const std::string msg =
      encode_standby_status_update(Lsn(0x0102030405060708), Lsn(0x1112131415161718),
                                   Lsn(0x2122232425262728), PgTimestamp{767882096789000}, true);
  ASSERT_EQ(msg.size(), 34u);
  ASSERT_EQ(msg.size(), kStandbyStatusUpdateSize);
  EXPECT_EQ(msg[0], 'r');
  EXPECT_EQ(msg.substr(1, 8), be64(0x0102030405060708));   // write
  EXPECT_EQ(msg.substr(9, 8), be64(0x1112131415161718));   // flush
  EXPECT_EQ(msg.substr(17, 8), be64(0x2122232425262728));  // apply
  EXPECT_EQ(msg.substr(25, 8), be64(767882096789000));
  EXPECT_EQ(msg[33], '\x01');
}

TEST(CopyProtocol, StandbyStatusUpdateWithoutReplyRequestEndsInZero) {
  const std::string msg =
      encode_standby_status_update(Lsn(1), Lsn(1), Lsn(1), PgTimestamp{-1}, false);
  ASSERT_EQ(msg.size(), 34u);
  EXPECT_EQ(msg[33], '\0');
  EXPECT_EQ(msg.substr(25, 8), std::string(8, '\xff'));
}

}  // namespace
}  // namespace wal
