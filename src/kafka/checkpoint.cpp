#include "kafka/checkpoint.h"

#include <charconv>

#include "kafka/txn_errc.h"

namespace kafka {

namespace {

constexpr std::string_view kVersion = "v1";
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

}  // namespace

std::string encode_checkpoint(const Checkpoint& checkpoint) {
  std::string out(kVersion);
  out += ' ';
  out += kEndLsn;
  out += checkpoint.end_lsn.to_string();
  out += ' ';
  out += kLastRow;
  out += checkpoint.last_row ? std::to_string(*checkpoint.last_row) : std::string(kWhole);
  return out;
}

common::Result<Checkpoint> parse_checkpoint(std::string_view text) {
  // Three fields, one space apart, in this order; anything else is not ours.
  const size_t first = text.find(' ');
  const size_t second = first == std::string_view::npos ? first : text.find(' ', first + 1);
  if (second == std::string_view::npos || text.find(' ', second + 1) != std::string_view::npos) {
    return malformed(text, "expected 'v1 end_lsn=X/X last_row=N|whole'");
  }
  const std::string_view version = text.substr(0, first);
  const std::string_view lsn_field = text.substr(first + 1, second - first - 1);
  const std::string_view row_field = text.substr(second + 1);
  if (version != kVersion) return malformed(text, "unknown version '" + std::string(version) + "'");
  if (lsn_field.substr(0, kEndLsn.size()) != kEndLsn) return malformed(text, "no end_lsn=");
  if (row_field.substr(0, kLastRow.size()) != kLastRow) return malformed(text, "no last_row=");

  const std::string_view lsn_text = lsn_field.substr(kEndLsn.size());
  auto lsn = wal::Lsn::parse(lsn_text);
  // Only the form encode_checkpoint() writes, so that one position has one
  // spelling.
  if (!lsn || lsn->to_string() != lsn_text) {
    return malformed(text, "end_lsn '" + std::string(lsn_text) + "' is not an LSN");
  }
  Checkpoint checkpoint{*lsn, std::nullopt};
  const std::string_view row_text = row_field.substr(kLastRow.size());
  if (row_text != kWhole) {
    uint64_t row = 0;
    const char* end = row_text.data() + row_text.size();
    auto [ptr, ec] = std::from_chars(row_text.data(), end, row);
    if (row_text.empty() || ec != std::errc() || ptr != end ||
        (row_text.size() > 1 && row_text[0] == '0')) {
      return malformed(text, "last_row '" + std::string(row_text) + "' is not a row index");
    }
    checkpoint.last_row = row;
  }
  return checkpoint;
}

}  // namespace kafka
