#include "relay/sql_identifier.h"

#include <fmt/format.h>

#include <algorithm>

#include "relay/errc.h"
#include "relay/value_codec.h"

namespace relay {

common::Result<std::string> resolve_identifier(std::string_view text, std::string_view what) {
  if (text.empty()) return make_error(errc::invalid_config, fmt::format("{} is empty", what));
  if (text.front() != '"') {
    std::string folded(text);
    for (char& c : folded) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return folded;
  }
  std::string name;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] != '"') {
      name += text[i];
    } else if (i + 1 < text.size() && text[i + 1] == '"') {
      name += '"';
      ++i;
    } else if (i + 1 == text.size() && !name.empty()) {
      return name;
    } else {
      break;
    }
  }
  return make_error(errc::invalid_config,
                    fmt::format("{} {} is not a valid quoted identifier", what, quote_value(text)));
}

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string spell_identifier(std::string_view name) {
  const bool bare =
      !name.empty() && !(name.front() >= '0' && name.front() <= '9') &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  return bare ? std::string(name) : quote_identifier(name);
}

size_t find_qualifying_dot(std::string_view name) {
  bool quoted = false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '"') quoted = !quoted;
    if (name[i] == '.' && !quoted) return i;
  }
  return std::string_view::npos;
}

}  // namespace relay
