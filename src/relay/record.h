#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace relay {

struct Header {
  std::string key;
  std::optional<std::string> value;  // Kafka allows null header values

  bool operator==(const Header&) const = default;
};

// One Kafka record built from one outbox row.
struct OutboxRecord {
  std::string topic;
  int32_t partition = -1;  // -1: let the partitioner pick from the key
  std::optional<std::string> key;
  std::vector<Header> headers;
  std::string payload;
  // A tombstone: the value is null (payload is then empty), as Kafka's log
  // compaction and Debezium's tombstones have it.
  bool null_value = false;

  size_t approx_bytes() const {
    size_t n = topic.size() + payload.size() + (key ? key->size() : 0);
    for (const auto& h : headers) n += h.key.size() + (h.value ? h.value->size() : 0);
    return n;
  }
};

}  // namespace relay
