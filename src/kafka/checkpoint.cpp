#include "kafka/checkpoint.h"

#include <charconv>
#include <cstdint>
#include <optional>
#include <vector>

#include "kafka/txn_errc.h"

namespace kafka {

namespace {

constexpr std::string_view kVersion1 = "v1";
constexpr std::string_view kVersion2 = "v2";
constexpr std::string_view kVersion3 = "v3";
constexpr std::string_view kSystemId = "systemid=";
constexpr std::string_view kTimeline = "tli=";
constexpr std::string_view kSelection = "sel=";
constexpr size_t kSelectionDigits = 16;
constexpr std::string_view kVersion3Form =
    "expected 'v3 systemid=N tli=N end_lsn=X/X last_row=N|whole [sel=16 hex digits]'";
constexpr std::string_view kEndLsn = "end_lsn=";
constexpr std::string_view kLastRow = "last_row=";
constexpr std::string_view kWhole = "whole";

// The text as it would be quoted in a log line: printable ASCII kept, every
// other byte as \xNN, and cut after 200 bytes.
std::string quoted(std::string_view text) {
  static const char* hex = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < 200; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (text.size() > 200) out += "...";
  return out + "'";
}

common::Error malformed(std::string_view text, std::string_view why) {
  return make_txn_error(txn_errc::malformed_checkpoint,
                        "checkpoint " + quoted(text) + " is malformed: " + std::string(why));
}

// A decimal number without sign, leading zeros or anything after it.
std::optional<uint64_t> parse_decimal(std::string_view text) {
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end || (text.size() > 1 && text[0] == '0')) {
    return std::nullopt;
  }
  return value;
}

std::string selection_text(uint64_t selection) {
  static const char* hex = "0123456789abcdef";
  std::string out(kSelectionDigits, '0');
  for (size_t i = 0; i < kSelectionDigits; ++i) {
    out[kSelectionDigits - 1 - i] = hex[(selection >> (4 * i)) & 15];
  }
  return out;
}

// Exactly the form selection_text() writes.
std::optional<uint64_t> parse_selection(std::string_view text) {
  if (text.size() != kSelectionDigits) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    value <<= 4;
    if (c >= '0' && c <= '9') {
      value |= static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      value |= static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return std::nullopt;
    }
  }
  return value;
}

// The text's fields, one space apart.
std::vector<std::string_view> fields_of(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  while (true) {
    const size_t space = text.find(' ', start);
    fields.push_back(text.substr(start, space - start));
    if (space == std::string_view::npos) return fields;
    start = space + 1;
  }
}

}  // namespace

std::string encode_checkpoint(const Checkpoint& checkpoint) {
  std::string out;
  const bool v3 = checkpoint.system_identifier && checkpoint.timeline;
  if (checkpoint.system_identifier) {
    out += v3 ? kVersion3 : kVersion2;
    out += ' ';
    out += kSystemId;
    out += std::to_string(*checkpoint.system_identifier);
    if (v3) {
      out += ' ';
      out += kTimeline;
      out += std::to_string(*checkpoint.timeline);
    }
  } else {
    out += kVersion1;
  }
  out += ' ';
  out += kEndLsn;
  out += checkpoint.end_lsn.to_string();
  out += ' ';
  out += kLastRow;
  out += checkpoint.last_row ? std::to_string(*checkpoint.last_row) : std::string(kWhole);
  if (v3 && checkpoint.selection) {
    out += ' ';
    out += kSelection;
    out += selection_text(*checkpoint.selection);
  }
  return out;
}

common::Result<Checkpoint> parse_checkpoint(std::string_view text) {
  // The fields of its version, one space apart, in this order; anything
  // else is not ours.
  const std::vector<std::string_view> fields = fields_of(text);
  const std::string_view version = fields[0];
  Checkpoint checkpoint;
  size_t next = 1;
  if (version == kVersion2 || version == kVersion3) {
    const bool v3 = version == kVersion3;
    if (v3 ? fields.size() != 5 && fields.size() != 6 : fields.size() != 4) {
      return malformed(text, v3 ? kVersion3Form
                                : "expected 'v2 systemid=N end_lsn=X/X last_row=N|whole'");
    }
    const std::string_view id_field = fields[next++];
    if (id_field.substr(0, kSystemId.size()) != kSystemId) return malformed(text, "no systemid=");
    const std::string_view id_text = id_field.substr(kSystemId.size());
    checkpoint.system_identifier = parse_decimal(id_text);
    if (!checkpoint.system_identifier) {
      return malformed(text, "systemid '" + std::string(id_text) + "' is not a system identifier");
    }
    if (v3) {
      const std::string_view tli_field = fields[next++];
      if (tli_field.substr(0, kTimeline.size()) != kTimeline) return malformed(text, "no tli=");
      const std::string_view tli_text = tli_field.substr(kTimeline.size());
      const std::optional<uint64_t> tli = parse_decimal(tli_text);
      // A timeline ID is a nonzero 32-bit number (TimeLineID).
      if (!tli || *tli == 0 || *tli > UINT32_MAX) {
        return malformed(text, "tli '" + std::string(tli_text) + "' is not a timeline ID");
      }
      checkpoint.timeline = static_cast<wal::TimelineId>(*tli);
    }
  } else if (version == kVersion1) {
    if (fields.size() != 3) return malformed(text, "expected 'v1 end_lsn=X/X last_row=N|whole'");
  } else if (fields.size() < 3) {
    return malformed(text, kVersion3Form);
  } else {
    return malformed(text, "unknown version '" + std::string(version) + "'");
  }
  const std::string_view lsn_field = fields[next++];
  const std::string_view row_field = fields[next++];
  if (lsn_field.substr(0, kEndLsn.size()) != kEndLsn) return malformed(text, "no end_lsn=");
  if (row_field.substr(0, kLastRow.size()) != kLastRow) return malformed(text, "no last_row=");

  const std::string_view lsn_text = lsn_field.substr(kEndLsn.size());
  auto lsn = wal::Lsn::parse(lsn_text);
  // Only the form encode_checkpoint() writes, so that one position has one
  // spelling.
  if (!lsn || lsn->to_string() != lsn_text) {
    return malformed(text, "end_lsn '" + std::string(lsn_text) + "' is not an LSN");
  }
  checkpoint.end_lsn = *lsn;
  const std::string_view row_text = row_field.substr(kLastRow.size());
  if (row_text != kWhole) {
    checkpoint.last_row = parse_decimal(row_text);
    if (!checkpoint.last_row) {
      return malformed(text, "last_row '" + std::string(row_text) + "' is not a row index");
    }
  }
  if (next < fields.size()) {
    const std::string_view sel_field = fields[next++];
    if (sel_field.substr(0, kSelection.size()) != kSelection) return malformed(text, "no sel=");
    const std::string_view sel_text = sel_field.substr(kSelection.size());
    checkpoint.selection = parse_selection(sel_text);
    if (!checkpoint.selection) {
      return malformed(text, "sel '" + std::string(sel_text) + "' is not 16 lowercase hex digits");
    }
  }
  return checkpoint;
}

}  // namespace kafka
