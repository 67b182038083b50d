#pragma once

#include <compare>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wal {

// A position in the write-ahead log. PostgreSQL prints it as two hexadecimal
// halves, "%X/%X", upper then lower 32 bits, without zero padding.
class Lsn {
 public:
  constexpr Lsn() = default;
  constexpr explicit Lsn(uint64_t value) : value_(value) {}

  constexpr uint64_t value() const { return value_; }
  constexpr bool is_zero() const { return value_ == 0; }

  // Accepts "16/B374D848" and zero-padded forms such as "00000016/0B374D84".
  static std::optional<Lsn> parse(std::string_view text);
  std::string to_string() const;

  constexpr auto operator<=>(const Lsn&) const = default;

 private:
  uint64_t value_ = 0;
};

// Microseconds since 2000-01-01 00:00:00 UTC, the replication protocol's clock.
struct PgTimestamp {
  int64_t micros = 0;

  static constexpr int64_t kUnixEpochOffsetSeconds = 946684800;
  int64_t unix_micros() const { return micros + kUnixEpochOffsetSeconds * 1000000; }
  static PgTimestamp from_unix_micros(int64_t unix_us) {
    return PgTimestamp{unix_us - kUnixEpochOffsetSeconds * 1000000};
  }
  auto operator<=>(const PgTimestamp&) const = default;
};

// Now, as PostgreSQL's replication protocol counts time.
inline PgTimestamp pg_now() {
  auto now = std::chrono::system_clock::now().time_since_epoch();
  return PgTimestamp::from_unix_micros(
      std::chrono::duration_cast<std::chrono::microseconds>(now).count());
}

using Xid = uint32_t;
using RelId = uint32_t;
using Oid = uint32_t;

}  // namespace wal
