#include "kafka/checkpoint.h"

#include <charconv>
#include <optional>
#include <vector>

#include "kafka/txn_errc.h"

namespace kafka {

namespace {

constexpr std::string_view kVersion1 = "v1";
constexpr std::string_view kVersion2 = "v2";
constexpr std::string_view kSystemId = "systemid=";
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
  if (checkpoint.system_identifier) {
    out += kVersion2;
    out += ' ';
    out += kSystemId;
    out += std::to_string(*checkpoint.system_identifier);
  } else {
    out += kVersion1;
  }
  out += ' ';
  out += kEndLsn;
  out += checkpoint.end_lsn.to_string();
  out += ' ';
  out += kLastRow;
  out += checkpoint.last_row ? std::to_string(*checkpoint.last_row) : std::string(kWhole);
  return out;
}

common::Result<Checkpoint> parse_checkpoint(std::string_view text) {
  // The fields of its version, one space apart, in this order; anything
  // else is not ours.
  const std::vector<std::string_view> fields = fields_of(text);
  const std::string_view version = fields[0];
  Checkpoint checkpoint;
  size_t next = 1;
  if (version == kVersion2) {
    if (fields.size() != 4) {
      return malformed(text, "expected 'v2 systemid=N end_lsn=X/X last_row=N|whole'");
    }
    const std::string_view id_field = fields[next++];
    if (id_field.substr(0, kSystemId.size()) != kSystemId) return malformed(text, "no systemid=");
    const std::string_view id_text = id_field.substr(kSystemId.size());
    checkpoint.system_identifier = parse_decimal(id_text);
    if (!checkpoint.system_identifier) {
      return malformed(text, "systemid '" + std::string(id_text) + "' is not a system identifier");
    }
  } else if (version == kVersion1) {
    if (fields.size() != 3) return malformed(text, "expected 'v1 end_lsn=X/X last_row=N|whole'");
  } else if (fields.size() < 3) {
    return malformed(text, "expected 'v2 systemid=N end_lsn=X/X last_row=N|whole'");
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
  return checkpoint;
}

}  // namespace kafka
