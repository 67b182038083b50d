#include "relay/message_envelope.h"

#include <string>

#include "relay/errc.h"
#include "wal/byte_reader.h"

namespace relay {

namespace {

// Int32 length, then that many bytes; -1 is an absent field.
common::Result<std::optional<std::string_view>> read_field(wal::ByteReader& r,
                                                           std::string_view what) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(int32_t len, r.read_i32(std::string(what) + " length"));
  if (len == -1) return std::optional<std::string_view>();
  if (len < 0) {
    return wal::make_error(wal::errc::invalid_value,
                           std::string(what) + " length " + std::to_string(len) + " at offset " +
                               std::to_string(at) + " is negative (only -1, absent, is allowed)");
  }
  WAL_TRY_ASSIGN(std::string_view bytes, r.read_bytes(static_cast<size_t>(len), what));
  return std::optional<std::string_view>(bytes);
}

common::Result<MessageEnvelope> read_envelope(wal::ByteReader& r) {
  WAL_TRY_ASSIGN(uint8_t version, r.read_u8("version"));
  if (version != kEnvelopeVersion) {
    return wal::make_error(wal::errc::unsupported, "version " + wal::describe_byte(version) +
                                                       " at offset 0; this relay "
                                                       "reads version " +
                                                       std::to_string(kEnvelopeVersion));
  }
  MessageEnvelope e;
  WAL_TRY_ASSIGN(e.topic, read_field(r, "topic"));
  WAL_TRY_ASSIGN(e.key, read_field(r, "key"));
  WAL_TRY_ASSIGN(e.partition, r.read_i32("partition"));
  WAL_TRY_ASSIGN(e.id, read_field(r, "id"));
  WAL_TRY_ASSIGN(e.headers, read_field(r, "headers"));
  WAL_TRY_ASSIGN(e.payload, read_field(r, "payload"));
  WAL_TRY(r.expect_end("payload"));
  return e;
}

}  // namespace

common::Result<MessageEnvelope> parse_envelope(std::string_view content) {
  wal::ByteReader r(content);
  auto e = read_envelope(r);
  if (!e) return make_error(errc::bad_row, "message envelope: " + e.error().message);
  return e;
}

}  // namespace relay
