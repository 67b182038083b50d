#pragma once

// Kafka's default partitioner for keyed records, as the Java client computes
// it (org.apache.kafka.common.utils.Utils.murmur2 and toPositive): tests use
// it to predict the partition a key must land in, so that the relay's
// placement agrees with Java producers and Kafka Streams.
//
// Header-only so that hermetic unit tests can check it against Kafka's own
// test vectors without linking the server harness.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace harness {

// MurmurHash2, 32-bit, seed 0x9747b28c, bytes read little-endian in 4-byte
// blocks. Java computes it on signed ints with >>>; unsigned arithmetic
// gives the same bits.
inline int32_t murmur2(std::string_view data) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* b = reinterpret_cast<const unsigned char*>(data.data());
  const auto length = static_cast<uint32_t>(data.size());
  uint32_t h = kSeed ^ length;
  const size_t blocks = length / 4;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t at = i * 4;
    uint32_t k = uint32_t{b[at]} | uint32_t{b[at + 1]} << 8 | uint32_t{b[at + 2]} << 16 |
                 uint32_t{b[at + 3]} << 24;
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const size_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= uint32_t{b[tail + 2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint32_t{b[tail + 1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint32_t{b[tail]};
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

// Utils.toPositive: clears the sign bit rather than taking abs(), so that
// INT32_MIN maps to 0 instead of overflowing.
inline int32_t to_positive(int32_t n) {
  return n & 0x7fffffff;
}

// The partition the Java client's default partitioner picks for a non-null
// key on a topic with `partitions` partitions.
inline int32_t murmur2_partition(std::string_view key, int32_t partitions) {
  return to_positive(murmur2(key)) % partitions;
}

}  // namespace harness
