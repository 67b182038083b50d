#pragma once

// Writes a message envelope (src/relay/message_envelope.h) the way
// sql/04-outbox-emit.sql's outbox.envelope() does, for tests and the fuzzer.

#include <cstdint>
#include <optional>
#include <string>

namespace relay::testing {

struct EnvelopeFields {
  std::optional<std::string> topic = "orders";
  std::optional<std::string> key;
  int32_t partition = -1;
  std::optional<std::string> id;
  std::optional<std::string> headers;
  std::optional<std::string> payload = "{}";
};

inline void put_int32(std::string& out, int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
}

inline void put_field(std::string& out, const std::optional<std::string>& value) {
  if (!value) {
    put_int32(out, -1);
    return;
  }
  put_int32(out, static_cast<int32_t>(value->size()));
  out += *value;
}

inline std::string write_envelope(const EnvelopeFields& f, uint8_t version = 1) {
  std::string out(1, static_cast<char>(version));
  put_field(out, f.topic);
  put_field(out, f.key);
  put_int32(out, f.partition);
  put_field(out, f.id);
  put_field(out, f.headers);
  put_field(out, f.payload);
  return out;
}

}  // namespace relay::testing
