#pragma once

// The one way this module reads wire bytes. Every read is bounds-checked and
// returns a Result whose error names the field and the offset it started at,
// the way PostgreSQL's pq_getmsg* functions ereport "insufficient data left
// in message" instead of reading past the end. Integers are big-endian
// (network order), as pq_sendint* writes them.

#include <bit>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "common/result.h"
#include "wal/errc.h"
#include "wal/lsn.h"

namespace wal {

// A wire byte for an error message: 'N' (0x4e) when printable, else 0x07.
inline std::string describe_byte(uint8_t b) {
  char buf[16];
  if (std::isprint(b) != 0) {
    std::snprintf(buf, sizeof buf, "'%c' (0x%02x)", static_cast<char>(b), b);
  } else {
    std::snprintf(buf, sizeof buf, "0x%02x", b);
  }
  return buf;
}

// Prefixes an error's message with where it happened ("Insert: new tuple:
// column 3: ..."), keeping its code.
inline common::Error with_context(std::string_view context, common::Error e) {
  e.message.insert(0, std::string(context) + ": ");
  return e;
}

// Reads from a buffer it does not own; views it returns point into that buffer.
class ByteReader {
 public:
  explicit ByteReader(std::string_view data) : data_(data) {}
  explicit ByteReader(std::span<const std::byte> data)
      : data_(reinterpret_cast<const char*>(data.data()), data.size()) {}

  size_t offset() const { return pos_; }
  size_t remaining() const { return data_.size() - pos_; }
  bool at_end() const { return pos_ == data_.size(); }

  common::Result<uint8_t> read_u8(std::string_view what) { return read_be<uint8_t>(what); }
  common::Result<uint16_t> read_u16(std::string_view what) { return read_be<uint16_t>(what); }
  common::Result<uint32_t> read_u32(std::string_view what) { return read_be<uint32_t>(what); }
  common::Result<uint64_t> read_u64(std::string_view what) { return read_be<uint64_t>(what); }

  common::Result<int16_t> read_i16(std::string_view what) { return read_signed<int16_t>(what); }
  common::Result<int32_t> read_i32(std::string_view what) { return read_signed<int32_t>(what); }
  common::Result<int64_t> read_i64(std::string_view what) { return read_signed<int64_t>(what); }

  common::Result<Lsn> read_lsn(std::string_view what) {
    if (sizeof(uint64_t) > remaining()) return truncated(what, sizeof(uint64_t));
    const uint64_t v = load_be<uint64_t>(data_.data() + pos_);
    pos_ += sizeof(uint64_t);
    return Lsn(v);
  }

  common::Result<PgTimestamp> read_timestamp(std::string_view what) {
    if (sizeof(uint64_t) > remaining()) return truncated(what, sizeof(uint64_t));
    const uint64_t v = load_be<uint64_t>(data_.data() + pos_);
    pos_ += sizeof(uint64_t);
    return PgTimestamp{static_cast<int64_t>(v)};
  }

  // A NUL-terminated String. The view excludes the NUL; the NUL is consumed.
  common::Result<std::string_view> read_cstring(std::string_view what) {
    const std::string_view rest = data_.substr(pos_);
    const size_t nul = rest.find('\0');
    if (nul == std::string_view::npos) {
      return make_error(errc::truncated, "unterminated string " + std::string(what) +
                                             " at offset " + std::to_string(pos_) + ": no NUL in " +
                                             std::to_string(rest.size()) + " bytes left");
    }
    pos_ += nul + 1;
    return rest.substr(0, nul);
  }

  // Byte(n): the next n bytes, as a view into the buffer.
  common::Result<std::string_view> read_bytes(size_t n, std::string_view what) {
    if (n > remaining()) return truncated(what, n);
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  // A message ends where its layout ends: anything after it means we read a
  // different layout from the one the server wrote.
  common::Result<void> expect_end(std::string_view what) const {
    if (at_end()) return {};
    return make_error(errc::trailing_data, std::to_string(remaining()) +
                                               " unexpected bytes after " + std::string(what) +
                                               " at offset " + std::to_string(pos_));
  }

 private:
  template <typename T>
  common::Result<T> read_be(std::string_view what) {
    if (sizeof(T) > remaining()) return truncated(what, sizeof(T));
    const T v = load_be<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return v;
  }

  template <typename T>
  static T load_be(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::little) {
      if constexpr (sizeof(T) == 2) v = static_cast<T>(__builtin_bswap16(v));
      if constexpr (sizeof(T) == 4) v = static_cast<T>(__builtin_bswap32(v));
      if constexpr (sizeof(T) == 8) v = static_cast<T>(__builtin_bswap64(v));
    }
    return v;
  }

  template <typename S>
  common::Result<S> read_signed(std::string_view what) {
    using U = std::make_unsigned_t<S>;
    if (sizeof(S) > remaining()) return truncated(what, sizeof(S));
    const U v = load_be<U>(data_.data() + pos_);
    pos_ += sizeof(S);
    // Two's complement, as the sender's pq_sendint* wrote it; the conversion
    // is defined modulo 2^N since C++20.
    return static_cast<S>(v);
  }

  [[gnu::cold, gnu::noinline]] common::Error truncated(std::string_view what, size_t need) const {
    return make_error(errc::truncated, "truncated reading " + std::string(what) + " (" +
                                           std::to_string(need) + " bytes) at offset " +
                                           std::to_string(pos_) + ": " +
                                           std::to_string(remaining()) + " bytes left");
  }

  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace wal

// Unwraps a Result into `lhs`, or returns its error from the enclosing
// function (which must return a common::Result). Several statements: use it
// as a statement of its own, never under an unbraced if. Keeps one line per wire
// field, so a reader reads like the layout it decodes:
//   WAL_TRY_ASSIGN(m.final_lsn, r.read_lsn("final_lsn"));
#define WAL_TRY_CONCAT_INNER(a, b) a##b
#define WAL_TRY_CONCAT(a, b) WAL_TRY_CONCAT_INNER(a, b)
#define WAL_TRY_ASSIGN(lhs, expr) WAL_TRY_ASSIGN_IMPL(WAL_TRY_CONCAT(wal_try_, __LINE__), lhs, expr)
#define WAL_TRY_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                        \
  if (!tmp.ok()) return tmp.error();        \
  lhs = std::move(tmp).value()
// The same for a Result<void>.
#define WAL_TRY(expr)                                          \
  do {                                                         \
    auto wal_try_result_ = (expr);                             \
    if (!wal_try_result_.ok()) return wal_try_result_.error(); \
  } while (0)
