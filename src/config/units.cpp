#include "config/units.h"

#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include "config/errc.h"

namespace config {
namespace {

struct Unit {
  std::string_view suffix;
  uint64_t factor;
};

constexpr std::array kDurationUnits = {
    Unit{"ms", 1},
    Unit{"s", 1000},
    Unit{"m", 60 * 1000},
    Unit{"h", 60 * 60 * 1000},
};

constexpr uint64_t kKiB = 1024;
constexpr std::array kSizeUnits = {
    Unit{"b", 1},
    Unit{"kb", 1000},
    Unit{"mb", 1000 * 1000},
    Unit{"gb", 1000 * 1000 * 1000},
    Unit{"tb", 1000ULL * 1000 * 1000 * 1000},
    Unit{"kib", kKiB},
    Unit{"mib", kKiB* kKiB},
    Unit{"gib", kKiB* kKiB* kKiB},
    Unit{"tib", kKiB* kKiB* kKiB* kKiB},
};

constexpr std::string_view kDurationForm =
    "expected a duration such as 500ms, 10s, 2m or 1h (a bare number means milliseconds)";
constexpr std::string_view kSizeForm = "expected a size in bytes such as 268435456, 256MiB or 64MB";

common::Error malformed(std::string_view what) {
  return common::make_error(errc::malformed, std::string(what));
}

common::Error out_of_range(std::string_view what) {
  return common::make_error(errc::out_of_range, std::string(what));
}

// Splits "250ms" into "250" and "ms"; the unit may follow one space.
std::pair<std::string_view, std::string_view> split_number(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string_view unit = text.substr(digits);
  if (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return {text.substr(0, digits), unit};
}

// Digits only; the caller has already split off any sign and unit.
common::Result<uint64_t> parse_digits(std::string_view digits, std::string_view form) {
  if (digits.empty()) return malformed(form);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec == std::errc::result_out_of_range) return out_of_range("number is too large");
  if (ec != std::errc() || end != digits.data() + digits.size()) return malformed(form);
  return value;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) return false;
  }
  return true;
}

// number * factor, refusing results that do not fit in `max`.
common::Result<uint64_t> scale(uint64_t number, uint64_t factor, uint64_t max) {
  if (number > max / factor) return out_of_range("value is too large");
  return number * factor;
}

}  // namespace

common::Result<int64_t> parse_integer(std::string_view text) {
  constexpr std::string_view kForm = "expected an integer";
  bool negative = false;
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  auto magnitude = parse_digits(text, kForm);
  if (!magnitude) return magnitude.error();
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  if (*magnitude > kMax + (negative ? 1 : 0)) return out_of_range("number is too large");
  if (!negative) return static_cast<int64_t>(*magnitude);
  // -(2^63) has no positive counterpart, so negate in unsigned arithmetic.
  return static_cast<int64_t>(0 - *magnitude);
}

common::Result<bool> parse_bool(std::string_view text) {
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  return malformed("expected a boolean (true or false)");
}

common::Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto [digits, suffix] = split_number(text);
  auto number = parse_digits(digits, kDurationForm);
  if (!number) return number.error();
  uint64_t factor = 0;
  if (suffix.empty()) factor = 1;
  for (const Unit& unit : kDurationUnits) {
    if (suffix == unit.suffix) factor = unit.factor;
  }
  if (factor == 0) return malformed(kDurationForm);
  constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  auto ms = scale(*number, factor, kMax);
  if (!ms) return ms.error();
  return std::chrono::milliseconds(static_cast<int64_t>(*ms));
}

common::Result<uint64_t> parse_size(std::string_view text) {
  auto [digits, suffix] = split_number(text);
  auto number = parse_digits(digits, kSizeForm);
  if (!number) return number.error();
  if (suffix.empty()) return *number;
  for (const Unit& unit : kSizeUnits) {
    if (equals_ignoring_case(suffix, unit.suffix)) {
      return scale(*number, unit.factor, std::numeric_limits<uint64_t>::max());
    }
  }
  return malformed(kSizeForm);
}

std::string format_duration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0ms";
  for (auto unit = kDurationUnits.rbegin(); unit != kDurationUnits.rend(); ++unit) {
    const auto factor = static_cast<int64_t>(unit->factor);
    if (ms % factor == 0) return std::to_string(ms / factor) + std::string(unit->suffix);
  }
  return std::to_string(ms) + "ms";
}

std::string format_size(uint64_t bytes) {
  // Spelling of each unit on output; parse_size ignores case.
  constexpr std::array<std::pair<uint64_t, std::string_view>, 8> kUnits = {{
      {kKiB * kKiB * kKiB * kKiB, "TiB"},
      {kKiB * kKiB * kKiB, "GiB"},
      {kKiB * kKiB, "MiB"},
      {kKiB, "KiB"},
      {1000ULL * 1000 * 1000 * 1000, "TB"},
      {1000 * 1000 * 1000, "GB"},
      {1000 * 1000, "MB"},
      {1000, "kB"},
  }};
  const std::string plain = std::to_string(bytes);
  if (bytes == 0) return plain;
  // The shortest exact spelling; binary units come first, so they win ties,
  // and a unit wins a tie with the bare number.
  std::string best;
  for (const auto& [factor, suffix] : kUnits) {
    if (bytes % factor != 0) continue;
    std::string candidate = std::to_string(bytes / factor) + std::string(suffix);
    if (best.empty() || candidate.size() < best.size()) best = std::move(candidate);
  }
  return !best.empty() && best.size() <= plain.size() ? best : plain;
}

}  // namespace config
