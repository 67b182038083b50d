#include "wal/lsn.h"


namespace wal {

namespace {

std::optional<uint32_t> parse_hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
    v = (v << 4) | d;
  }
  return v;
}

}  // namespace

std::optional<Lsn> Lsn::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = parse_hex32(text.substr(0, slash));
  auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return Lsn((static_cast<uint64_t>(*hi) << 32) | *lo);
}

std::string Lsn::to_string() const {
  // "%X/%X" without snprintf, which costs a thousand instructions per call
  // on a path that formats every transaction's LSN.
  static constexpr char kHex[] = "0123456789ABCDEF";
  char buf[17];
  char* p = buf;
  auto put = [&p](uint32_t half) {
    int shift = 28;
    while (shift > 0 && ((half >> shift) & 0xf) == 0) shift -= 4;
    for (; shift >= 0; shift -= 4) *p++ = kHex[(half >> shift) & 0xf];
  };
  put(static_cast<uint32_t>(value_ >> 32));
  *p++ = '/';
  put(static_cast<uint32_t>(value_));
  return std::string(buf, p);
}

}  // namespace wal
