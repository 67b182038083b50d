#include "relay/value_codec.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>

#include "relay/errc.h"

namespace relay {

namespace {

// The supported types, grouped by how their values are laid out on the wire.
enum class Family { kTextLike, kJson, kJsonb, kUuid, kInt2, kInt4, kInt8, kBytea, kUnsupported };

Family family_of(wal::Oid type_oid) {
  switch (type_oid) {
    case pg_type::kText:
    case pg_type::kVarchar:
    case pg_type::kBpchar:
    case pg_type::kName:
      return Family::kTextLike;
    case pg_type::kJson:
      return Family::kJson;
    case pg_type::kJsonb:
      return Family::kJsonb;
    case pg_type::kUuid:
      return Family::kUuid;
    case pg_type::kInt2:
      return Family::kInt2;
    case pg_type::kInt4:
      return Family::kInt4;
    case pg_type::kInt8:
      return Family::kInt8;
    case pg_type::kBytea:
      return Family::kBytea;
    default:
      return Family::kUnsupported;
  }
}

bool is_integer(Family f) {
  return f == Family::kInt2 || f == Family::kInt4 || f == Family::kInt8;
}

// int2send/int4send/int8send write exactly this many bytes.
size_t integer_width(Family f) {
  switch (f) {
    case Family::kInt2:
      return 2;
    case Family::kInt4:
      return 4;
    default:
      return 8;
  }
}

bool fits(Family f, int64_t v) {
  switch (f) {
    case Family::kInt2:
      return v >= std::numeric_limits<int16_t>::min() && v <= std::numeric_limits<int16_t>::max();
    case Family::kInt4:
      return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    default:
      return true;
  }
}

constexpr char kLowerHex[] = "0123456789abcdef";
// uuid_out prints the 16 bytes as hex with a '-' before bytes 4, 6, 8 and 10.
constexpr size_t kUuidBytes = 16;
constexpr size_t kUuidTextChars = 36;
constexpr bool is_uuid_dash_position(size_t i) {
  return i == 8 || i == 13 || i == 18 || i == 23;
}
// jsonb_send's format version; jsonb_recv refuses any other.
constexpr char kJsonbVersion = 1;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string column_prefix(const ColumnDesc& column) {
  return fmt::format("column '{}' of type {}", column.name, describe_type(column.type_oid));
}

common::Error column_error(errc code, const ColumnDesc& column, std::string_view what) {
  return make_error(code, fmt::format("{}: {}", column_prefix(column), what));
}

common::Error malformed(const ColumnDesc& column, std::string_view what) {
  return column_error(errc::malformed_value, column, what);
}

common::Error unsupported(const ColumnDesc& column, ValueForm form) {
  return column_error(errc::unsupported_type, column,
                      fmt::format("cannot be read {}", describe_form(form)));
}

common::Result<void> check_kind(const ColumnDesc& column, RawValue value) {
  if (value.kind == ValueKind::kText || value.kind == ValueKind::kBinary) return {};
  const char kind = static_cast<char>(value.kind);
  return column_error(errc::protocol_violation, column,
                      fmt::format("expected a text ('t') or binary ('b') value, got kind {}",
                                  quote_value(std::string_view(&kind, 1))));
}

std::string_view kind_word(ValueKind kind) {
  return kind == ValueKind::kText ? "text" : "binary";
}

common::Result<void> append_uuid(const ColumnDesc& column, RawValue value, std::string& out) {
  if (value.kind == ValueKind::kText) {
    bool canonical = value.data.size() == kUuidTextChars;
    for (size_t i = 0; canonical && i < value.data.size(); ++i) {
      canonical = is_uuid_dash_position(i) ? value.data[i] == '-' : hex_value(value.data[i]) >= 0;
    }
    if (!canonical) {
      return malformed(column, fmt::format("text value {} is not a uuid in 8-4-4-4-12 form",
                                           quote_value(value.data)));
    }
    out.append(value.data);
    return {};
  }
  if (value.data.size() != kUuidBytes) {
    return malformed(column, fmt::format("binary value has {} bytes, expected {}",
                                         value.data.size(), kUuidBytes));
  }
  std::array<char, kUuidTextChars> text;
  size_t j = 0;
  for (size_t i = 0; i < kUuidBytes; ++i) {
    if (is_uuid_dash_position(j)) text[j++] = '-';
    const auto byte = static_cast<unsigned char>(value.data[i]);
    text[j++] = kLowerHex[byte >> 4];
    text[j++] = kLowerHex[byte & 0xf];
  }
  out.append(text.data(), text.size());
  return {};
}

common::Result<std::string_view> jsonb_text(const ColumnDesc& column, RawValue value) {
  if (value.kind == ValueKind::kText) return value.data;
  if (value.data.empty())
    return malformed(column, "binary value is empty, expected a version byte");
  if (value.data.front() != kJsonbVersion) {
    return malformed(column, fmt::format("binary value has format version {}, expected {}",
                                         static_cast<unsigned>(static_cast<uint8_t>(value.data[0])),
                                         static_cast<unsigned>(kJsonbVersion)));
  }
  return value.data.substr(1);
}

common::Result<void> append_hex_bytea(const ColumnDesc& column, std::string_view text,
                                      std::string& out) {
  if (!text.starts_with("\\x")) {
    return malformed(column, "text value does not start with \\x (bytea_output must be hex)");
  }
  const std::string_view hex = text.substr(2);
  if (hex.size() % 2 != 0) {
    return malformed(column,
                     fmt::format("text value has an odd number of hex digits ({})", hex.size()));
  }
  const size_t base = out.size();
  out.resize(base + hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      const size_t bad = hi < 0 ? i : i + 1;
      return malformed(column, fmt::format("text value has {} at offset {}, expected a hex digit",
                                           quote_value(hex.substr(bad, 1)), bad + 2));
    }
    out[base + i / 2] = static_cast<char>((hi << 4) | lo);
  }
  return {};
}

}  // namespace

std::string quote_value(std::string_view text, size_t max_chars) {
  std::string out = "'";
  const size_t shown = std::min(text.size(), max_chars);
  for (size_t i = 0; i < shown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kLowerHex[c >> 4];
      out += kLowerHex[c & 0xf];
    }
  }
  out += '\'';
  if (shown < text.size()) out += fmt::format("... ({} bytes)", text.size());
  return out;
}

std::string_view describe_form(ValueForm form) {
  switch (form) {
    case ValueForm::kText:
      return "as text";
    case ValueForm::kBytes:
      return "as bytes";
    case ValueForm::kInt32:
      return "as an int32";
  }
  return "in an unknown form";
}

std::string_view type_name(wal::Oid type_oid) {
  switch (type_oid) {
    case pg_type::kBytea:
      return "bytea";
    case pg_type::kName:
      return "name";
    case pg_type::kInt8:
      return "int8";
    case pg_type::kInt2:
      return "int2";
    case pg_type::kInt4:
      return "int4";
    case pg_type::kText:
      return "text";
    case pg_type::kJson:
      return "json";
    case pg_type::kBpchar:
      return "bpchar";
    case pg_type::kVarchar:
      return "varchar";
    case pg_type::kUuid:
      return "uuid";
    case pg_type::kJsonb:
      return "jsonb";
    default:
      return "";
  }
}

std::string describe_type(wal::Oid type_oid) {
  const std::string_view name = type_name(type_oid);
  if (name.empty()) return fmt::format("OID {}", type_oid);
  return fmt::format("{} (OID {})", name, type_oid);
}

bool can_decode(wal::Oid type_oid, ValueForm form) {
  const Family f = family_of(type_oid);
  switch (form) {
    case ValueForm::kText:
      return f != Family::kBytea && f != Family::kUnsupported;
    case ValueForm::kBytes:
      return f == Family::kBytea || f == Family::kTextLike || f == Family::kJson ||
             f == Family::kJsonb;
    case ValueForm::kInt32:
      return is_integer(f);
  }
  return false;
}

common::Result<void> append_text(const ColumnDesc& column, RawValue value, std::string& out) {
  if (auto kind = check_kind(column, value); !kind) return kind;
  const Family f = family_of(column.type_oid);
  switch (f) {
    case Family::kTextLike:
    case Family::kJson:
      out.append(value.data);
      return {};
    case Family::kJsonb: {
      auto text = jsonb_text(column, value);
      if (!text) return text.error();
      out.append(*text);
      return {};
    }
    case Family::kUuid:
      return append_uuid(column, value, out);
    case Family::kInt2:
    case Family::kInt4:
    case Family::kInt8: {
      auto n = decode_integer(column, value);
      if (!n) return n.error();
      // int*out prints plain decimal, so a validated text value is already
      // what we would print; only binary values need formatting.
      if (value.kind == ValueKind::kText) {
        out.append(value.data);
        return {};
      }
      std::array<char, 24> digits;
      auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), *n);
      OUTBOX_ASSERT(ec == std::errc());
      out.append(digits.data(), end);
      return {};
    }
    case Family::kBytea:
    case Family::kUnsupported:
      break;
  }
  return unsupported(column, ValueForm::kText);
}

common::Result<void> append_bytes(const ColumnDesc& column, RawValue value, std::string& out) {
  if (auto kind = check_kind(column, value); !kind) return kind;
  switch (family_of(column.type_oid)) {
    case Family::kBytea:
      if (value.kind == ValueKind::kBinary) {
        out.append(value.data);
        return {};
      }
      return append_hex_bytea(column, value.data, out);
    case Family::kTextLike:
    case Family::kJson:
    case Family::kJsonb:
      return append_text(column, value, out);
    case Family::kUuid:
    case Family::kInt2:
    case Family::kInt4:
    case Family::kInt8:
    case Family::kUnsupported:
      break;
  }
  return unsupported(column, ValueForm::kBytes);
}

common::Result<int64_t> decode_integer(const ColumnDesc& column, RawValue value) {
  if (auto kind = check_kind(column, value); !kind) return kind.error();
  const Family f = family_of(column.type_oid);
  if (!is_integer(f)) return unsupported(column, ValueForm::kInt32);
  if (value.kind == ValueKind::kBinary) {
    if (value.data.size() != integer_width(f)) {
      return malformed(column, fmt::format("binary value has {} bytes, expected {}",
                                           value.data.size(), integer_width(f)));
    }
    uint64_t bits = 0;
    for (char c : value.data) bits = (bits << 8) | static_cast<unsigned char>(c);
    // Two's complement of the type's width, as int*send wrote it.
    switch (f) {
      case Family::kInt2:
        return int64_t{static_cast<int16_t>(bits)};
      case Family::kInt4:
        return int64_t{static_cast<int32_t>(bits)};
      default:
        return static_cast<int64_t>(bits);
    }
  }
  int64_t n = 0;
  const char* begin = value.data.data();
  const char* end = begin + value.data.size();
  auto [ptr, ec] = std::from_chars(begin, end, n);
  if (value.data.empty() || ec != std::errc() || ptr != end || !fits(f, n)) {
    return malformed(column, fmt::format("{} value {} is not a valid {}", kind_word(value.kind),
                                         quote_value(value.data), type_name(column.type_oid)));
  }
  return n;
}

common::Result<int32_t> decode_int32(const ColumnDesc& column, RawValue value) {
  auto n = decode_integer(column, value);
  if (!n) return n.error();
  if (*n < std::numeric_limits<int32_t>::min() || *n > std::numeric_limits<int32_t>::max()) {
    return column_error(errc::out_of_range, column,
                        fmt::format("value {} does not fit in an int32", *n));
  }
  return static_cast<int32_t>(*n);
}

}  // namespace relay
