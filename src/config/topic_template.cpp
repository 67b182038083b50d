#include "config/topic_template.h"

#include <cctype>

#include "config/errc.h"

namespace config {
namespace {

// Kafka's Topic.MAX_NAME_LENGTH. A template's literal text alone must fit;
// whether a rendered topic fits is only known per row.
constexpr size_t kMaxTopicChars = 249;

common::Error malformed_at(size_t index, const std::string& what) {
  return common::make_error(errc::malformed, what + " at character " + std::to_string(index + 1));
}

bool is_identifier(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

bool is_topic_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

void append_literal(std::vector<TemplatePart>& parts, char c) {
  if (parts.empty() || parts.back().kind != TemplatePart::Kind::kLiteral) {
    parts.push_back({TemplatePart::Kind::kLiteral, ""});
  }
  parts.back().text += c;
}

// Reads the ${name} starting at `open`; returns the index after its '}'.
common::Result<size_t> read_placeholder(std::string_view text, size_t open,
                                        std::vector<TemplatePart>& parts) {
  const size_t close = text.find('}', open);
  if (close == std::string_view::npos) return malformed_at(open, "unterminated '${'");
  const std::string_view name = text.substr(open + 2, close - open - 2);
  if (name.empty()) return malformed_at(open, "empty placeholder '${}'");
  if (!is_identifier(name)) {
    return malformed_at(open, "placeholder '${" + std::string(name) +
                                  "}' is not a column name (letters, digits and underscores, "
                                  "not starting with a digit)");
  }
  parts.push_back({TemplatePart::Kind::kColumn, std::string(name)});
  return close + 1;
}

std::string describe_char(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (std::isprint(byte)) return "character '" + std::string(1, c) + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xf];
}

common::Error stray(std::string_view text, size_t i) {
  switch (text[i]) {
    case '$':
      return malformed_at(i, "'$' that does not start a ${column} placeholder");
    case '}':
      return malformed_at(i, "'}' without a matching '${'");
    default:
      return malformed_at(i, describe_char(text[i]) +
                                 ", which is not allowed in a Kafka topic name "
                                 "(letters, digits, '.', '_', '-')");
  }
}

}  // namespace

common::Result<std::vector<TemplatePart>> parse_topic_template(std::string_view text) {
  if (text.empty()) {
    return common::make_error(errc::malformed,
                              "the template is empty (use null to take the topic column as is)");
  }
  std::vector<TemplatePart> parts;
  size_t literal_chars = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text.substr(i).starts_with("${")) {
      auto next = read_placeholder(text, i, parts);
      if (!next) return next.error();
      i = *next;
      continue;
    }
    if (!is_topic_char(text[i])) return stray(text, i);
    append_literal(parts, text[i++]);
    ++literal_chars;
  }
  if (literal_chars > kMaxTopicChars) {
    return common::make_error(errc::out_of_range,
                              "the literal text is longer than a Kafka topic name may be (249)");
  }
  return parts;
}

}  // namespace config
