#pragma once

// The envelope of an event the application writes as a logical decoding
// message (pg_logical_emit_message(true, <outbox.message_prefix>, content)),
// as sql/04-outbox-emit.sql's outbox.emit() builds it. Version 1, integers
// big-endian (int4send), lengths in bytes, -1 for an absent (SQL NULL) field:
//
//   Byte1   version                 1
//   Int32   topic length  n        then n bytes: the Kafka topic
//   Int32   key length    n | -1   then n bytes: the record key
//   Int32   partition              -1: chosen from the key (murmur2)
//   Int32   id length     n | -1   then n bytes: outbox-id; -1: the
//                                  message's LSN stands in
//   Int32   headers length n | -1  then n bytes: headers as JSON, an object
//                                  or a [{"key":…,"value":…}] array, as the
//                                  outbox table's headers column
//   Int32   payload length n | -1  then n bytes: the record value, as is
//
// and nothing after it. Binary framing so that a payload of any bytes is
// carried without escaping and read as a view, never copied or scanned; the
// headers stay JSON so that they read exactly as a table row's do.
//
// Pure and total: any bytes in, a view of them or an error naming the field
// and offset out. The parser checks the framing only; what the fields mean
// (a null topic, a negative partition, headers that are not JSON) is the
// router's to judge, as it is for a row.

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace relay {

inline constexpr uint8_t kEnvelopeVersion = 1;

// Views into the message content given to parse_envelope().
struct MessageEnvelope {
  std::optional<std::string_view> topic;
  std::optional<std::string_view> key;
  int32_t partition = -1;
  std::optional<std::string_view> id;
  std::optional<std::string_view> headers;
  std::optional<std::string_view> payload;
};

// The envelope in `content`; on failure errc::bad_row, with a one-line
// reason that names the field and its offset.
common::Result<MessageEnvelope> parse_envelope(std::string_view content);

}  // namespace relay
