#include "relay/json_headers.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <optional>
#include <string_view>
#include <utility>

#include "relay/errc.h"

namespace relay {

// simdjson's On-Demand API, because it leaves numbers as written: the DOM
// API re-prints them from a double (1.50 becomes 1.5, 0.1000000000000000000001
// becomes 0.1) and refuses integers beyond 64 bits, which jsonb stores
// exactly. On-Demand validates what it reads, not what it skips, so every
// value is read (numbers against the RFC 8259 grammar, which simdjson does
// not check for a token it only hands back), and trailing content is checked
// at the end.

namespace {

namespace sj = simdjson::ondemand;

constexpr std::string_view kNotHeaders = "headers is not a JSON object or [{key,value}] array: ";

common::Error not_headers(std::string_view why) {
  return make_error(errc::bad_row, fmt::format("{}{}", kNotHeaders, why));
}

common::Error not_headers(simdjson::error_code e) {
  return not_headers(simdjson::error_message(e));
}

std::string_view json_type_name(sj::json_type t) {
  switch (t) {
    case sj::json_type::array:
      return "an array";
    case sj::json_type::object:
      return "an object";
    case sj::json_type::number:
      return "a number";
    case sj::json_type::string:
      return "a string";
    case sj::json_type::boolean:
      return "a boolean";
    case sj::json_type::null:
      return "null";
  }
  return "an unknown JSON type";
}

// RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digit = [&](size_t j) { return j < s.size() && s[j] >= '0' && s[j] <= '9'; };
  auto digits = [&] {
    if (!digit(i)) return false;
    while (digit(i)) ++i;
    return true;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    digits();
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A scalar's raw token runs up to the next token, whitespace included.
std::string_view trim_json_whitespace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Escapes what JSON requires, as PostgreSQL's escape_json() does; UTF-8
// passes through.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Writes `v` as minified JSON, reading (and so validating) every part of it.
simdjson::error_code write_minified(sj::value v, std::string& out) {
  sj::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case sj::json_type::object: {
      sj::object object;
      if (auto e = v.get_object().get(object)) return e;
      out += '{';
      bool first = true;
      for (auto field_or : object) {
        sj::field field;
        std::string_view key;
        if (auto e = std::move(field_or).get(field)) return e;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        if (auto e = write_minified(field.value(), out)) return e;
      }
      out += '}';
      return simdjson::SUCCESS;
    }
    case sj::json_type::array: {
      sj::array array;
      if (auto e = v.get_array().get(array)) return e;
      out += '[';
      bool first = true;
      for (auto element_or : array) {
        sj::value element;
        if (auto e = std::move(element_or).get(element)) return e;
        if (!first) out += ',';
        first = false;
        if (auto e = write_minified(element, out)) return e;
      }
      out += ']';
      return simdjson::SUCCESS;
    }
    case sj::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return e;
      append_json_string(out, s);
      return simdjson::SUCCESS;
    }
    case sj::json_type::number: {
      const std::string_view raw = trim_json_whitespace(v.raw_json_token());
      if (!is_json_number(raw)) return simdjson::NUMBER_ERROR;
      out += raw;
      return simdjson::SUCCESS;
    }
    case sj::json_type::boolean: {
      bool b = false;
      if (auto e = v.get_bool().get(b)) return e;
      out += b ? "true" : "false";
      return simdjson::SUCCESS;
    }
    case sj::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      if (!is_null) return simdjson::N_ATOM_ERROR;
      out += "null";
      return simdjson::SUCCESS;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

common::Result<void> read_header_value(sj::value v, std::optional<std::string>& out) {
  sj::json_type type;
  if (auto e = v.type().get(type)) return not_headers(e);
  if (type == sj::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return not_headers(e);
    out.emplace(s);
    return {};
  }
  if (type == sj::json_type::null) {
    bool is_null = false;
    if (auto e = v.is_null().get(is_null)) return not_headers(e);
    if (!is_null) return not_headers(simdjson::N_ATOM_ERROR);
    out.reset();
    return {};
  }
  out.emplace();
  if (auto e = write_minified(v, *out)) return not_headers(e);
  return {};
}

common::Result<void> read_header_object(sj::object object, std::vector<Header>& out) {
  for (auto field_or : object) {
    sj::field field;
    std::string_view key;
    if (auto e = std::move(field_or).get(field)) return not_headers(e);
    if (auto e = field.unescaped_key().get(key)) return not_headers(e);
    Header& h = out.emplace_back();
    h.key.assign(key);
    if (auto r = read_header_value(field.value(), h.value); !r) return r;
  }
  return {};
}

// One {"key": "...", "value": ...} element; a missing value is a null one.
common::Result<void> read_header_element(sj::value element, size_t index, Header& h) {
  sj::json_type type;
  if (auto e = element.type().get(type)) return not_headers(e);
  sj::object object;
  if (type != sj::json_type::object || element.get_object().get(object)) {
    return not_headers(fmt::format("element {} is {}, expected {{\"key\": ..., \"value\": ...}}",
                                   index, json_type_name(type)));
  }
  bool have_key = false;
  bool have_value = false;
  for (auto field_or : object) {
    sj::field field;
    std::string_view name;
    if (auto e = std::move(field_or).get(field)) return not_headers(e);
    if (auto e = field.unescaped_key().get(name)) return not_headers(e);
    if (name == "key") {
      sj::json_type key_type;
      std::string_view key;
      if (auto e = field.value().type().get(key_type)) return not_headers(e);
      if (have_key || key_type != sj::json_type::string) {
        return not_headers(fmt::format("element {} has {} \"key\"", index,
                                       have_key ? "more than one" : "a non-string"));
      }
      if (auto e = field.value().get_string().get(key)) return not_headers(e);
      h.key.assign(key);
      have_key = true;
    } else if (name == "value") {
      if (have_value)
        return not_headers(fmt::format("element {} has more than one \"value\"", index));
      if (auto r = read_header_value(field.value(), h.value); !r) return r;
      have_value = true;
    } else {
      std::string quoted;
      append_json_string(quoted, name);
      return not_headers(fmt::format(
          "element {} has member {}, expected only \"key\" and \"value\"", index, quoted));
    }
  }
  if (!have_key) return not_headers(fmt::format("element {} has no \"key\"", index));
  return {};
}

common::Result<void> read_header_array(sj::array array, std::vector<Header>& out) {
  size_t index = 0;
  for (auto element_or : array) {
    sj::value element;
    if (auto e = std::move(element_or).get(element)) return not_headers(e);
    if (auto r = read_header_element(element, index, out.emplace_back()); !r) return r;
    ++index;
  }
  return {};
}

}  // namespace

struct JsonHeaderReader::State {
  sj::parser parser;
  // The document, then SIMDJSON_PADDING bytes: simdjson reads ahead in
  // blocks and needs them readable.
  std::string buffer;
};

JsonHeaderReader::JsonHeaderReader() = default;
JsonHeaderReader::~JsonHeaderReader() = default;
JsonHeaderReader::JsonHeaderReader(const JsonHeaderReader&) {}
JsonHeaderReader& JsonHeaderReader::operator=(const JsonHeaderReader&) {
  return *this;
}
JsonHeaderReader::JsonHeaderReader(JsonHeaderReader&&) noexcept = default;
JsonHeaderReader& JsonHeaderReader::operator=(JsonHeaderReader&&) noexcept = default;

JsonHeaderReader::State& JsonHeaderReader::state() {
  if (!state_) state_ = std::make_unique<State>();
  return *state_;
}

std::string& JsonHeaderReader::document() {
  std::string& buffer = state().buffer;
  buffer.clear();
  return buffer;
}

common::Result<void> JsonHeaderReader::read(std::vector<Header>& out) {
  State& s = state();
  const size_t length = s.buffer.size();
  s.buffer.append(simdjson::SIMDJSON_PADDING, '\0');
  sj::document doc;
  const simdjson::padded_string_view input(s.buffer.data(), length, s.buffer.size());
  if (auto e = s.parser.iterate(input).get(doc)) return not_headers(e);
  sj::json_type type;
  if (auto e = doc.type().get(type)) return not_headers(e);
  common::Result<void> headers;
  if (type == sj::json_type::object) {
    sj::object object;
    if (auto e = doc.get_object().get(object)) return not_headers(e);
    headers = read_header_object(object, out);
  } else if (type == sj::json_type::array) {
    sj::array array;
    if (auto e = doc.get_array().get(array)) return not_headers(e);
    headers = read_header_array(array, out);
  } else {
    return not_headers(fmt::format("the document is {}", json_type_name(type)));
  }
  if (!headers) return headers;
  // In bounds after the root value means a token follows it: `{} x`, `{}}`.
  if (!doc.current_location().error()) return not_headers(simdjson::TRAILING_CONTENT);
  return {};
}

}  // namespace relay
