#include "wal/copy_protocol.h"

#include <cstdint>

#include "wal/byte_reader.h"

namespace wal {

namespace {

common::Result<CopyMessage> read_xlog_data(ByteReader& r) {
  XLogData m;
  WAL_TRY_ASSIGN(m.wal_start, r.read_lsn("wal_start"));
  WAL_TRY_ASSIGN(m.wal_end, r.read_lsn("wal_end"));
  WAL_TRY_ASSIGN(m.send_time, r.read_timestamp("send_time"));
  WAL_TRY_ASSIGN(m.data, r.read_bytes(r.remaining(), "data"));
  return CopyMessage(m);
}

common::Result<CopyMessage> read_keepalive(ByteReader& r) {
  PrimaryKeepalive m;
  WAL_TRY_ASSIGN(m.wal_end, r.read_lsn("wal_end"));
  WAL_TRY_ASSIGN(m.send_time, r.read_timestamp("send_time"));
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t reply, r.read_u8("reply_requested"));
  // walsender writes "requestReply ? 1 : 0"; anything else is not a keepalive
  // we understand.
  if (reply > 1) {
    return make_error(errc::invalid_value, "reply_requested " + describe_byte(reply) +
                                               " at offset " + std::to_string(at) +
                                               " is neither 0 nor 1");
  }
  m.reply_requested = reply == 1;
  WAL_TRY(r.expect_end("keepalive"));
  return CopyMessage(m);
}

void put_int64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

}  // namespace

common::Result<CopyMessage> parse_copy_data(std::string_view payload) {
  ByteReader r(payload);
  WAL_TRY_ASSIGN(uint8_t type, r.read_u8("CopyData type"));
  switch (static_cast<char>(type)) {
    case XLogData::kType: {
      auto m = read_xlog_data(r);
      if (!m) return with_context("XLogData", m.error());
      return m;
    }
    case PrimaryKeepalive::kType: {
      auto m = read_keepalive(r);
      if (!m) return with_context("keepalive", m.error());
      return m;
    }
    default:
      return make_error(errc::unknown_message,
                        "unknown CopyData message type " + describe_byte(type));
  }
}

std::string encode_standby_status_update(Lsn write, Lsn flush, Lsn apply, PgTimestamp now,
                                         bool reply_requested) {
  std::string out;
  out.reserve(kStandbyStatusUpdateSize);
  out.push_back('r');
  put_int64(out, write.value());
  put_int64(out, flush.value());
  put_int64(out, apply.value());
  put_int64(out, static_cast<uint64_t>(now.micros));
  out.push_back(reply_requested ? 1 : 0);
  OUTBOX_ASSERT(out.size() == kStandbyStatusUpdateSize);
  return out;
}

}  // namespace wal
