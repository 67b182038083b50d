// Redaction of secrets before the configuration is shown or logged.
//
// A libpq connection string comes in two forms (libpq's conninfo_parse and
// conninfo_uri_parse):
//
//   keyword/value:  host=db port=5432 password='it''s \'quoted\'' sslmode=require
//                   value = '...' with backslash escapes, or a run of non-space
//   URI:            postgresql://user:secret@db:5432/app?sslpassword=x&sslmode=require
//                                 ^^^^^^ userinfo password      ^ query password
//
// A dbname may itself be a connection string (libpq expands it), so one that
// looks like one is hidden whole.
//
// Where the text cannot be parsed, everything after the point of confusion
// is hidden: showing too little is harmless, showing a password is not.

#include <algorithm>
#include <array>
#include <cctype>
#include <string>

#include "config/config.h"

namespace config {
namespace {

constexpr std::string_view kMask = "****";
constexpr std::array<std::string_view, 2> kPasswordKeywords = {"password", "sslpassword"};
constexpr std::array<std::string_view, 2> kUriPrefixes = {"postgresql://", "postgres://"};

bool is_password_keyword(std::string_view keyword) {
  return std::find(kPasswordKeywords.begin(), kPasswordKeywords.end(), keyword) !=
         kPasswordKeywords.end();
}

// libpq expands a dbname that is itself a connection string, so such a value
// may carry a password of its own.
bool is_nested_conninfo(std::string_view keyword, std::string_view value) {
  return keyword == "dbname" &&
         (value.find('=') != std::string_view::npos || value.find("://") != std::string_view::npos);
}

bool must_hide(std::string_view keyword, std::string_view value) {
  return is_password_keyword(keyword) || is_nested_conninfo(keyword, value);
}

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

size_t skip_spaces(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// End of a conninfo value starting at `i`: a quoted string including its
// closing quote, or a run of non-space characters; a backslash escapes the
// next character in both.
size_t value_end(std::string_view s, size_t i) {
  const bool quoted = i < s.size() && s[i] == '\'';
  if (quoted) ++i;
  while (i < s.size()) {
    if (s[i] == '\\') {
      i += 2;
      continue;
    }
    if (quoted && s[i] == '\'') return i + 1;
    if (!quoted && is_space(s[i])) return i;
    ++i;
  }
  return s.size();
}

std::string redact_conninfo(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (true) {
    const size_t key_start = skip_spaces(s, i);
    out.append(s.substr(i, key_start - i));
    if (key_start >= s.size()) return out;
    size_t key_end = key_start;
    while (key_end < s.size() && s[key_end] != '=' && !is_space(s[key_end])) ++key_end;
    const size_t equals = skip_spaces(s, key_end);
    if (equals >= s.size() || s[equals] != '=') {
      // Not keyword=value: libpq would refuse it; hide the rest.
      out.append(kMask);
      return out;
    }
    const size_t value_start = skip_spaces(s, equals + 1);
    const size_t end = value_end(s, value_start);
    out.append(s.substr(key_start, value_start - key_start));
    const std::string_view value = s.substr(value_start, end - value_start);
    if (must_hide(s.substr(key_start, key_end - key_start), value)) {
      out.append(kMask);
      // libpq accepts "password='x'host=db"; without the space the mask
      // would swallow the next pair when the output is redacted again.
      if (end < s.size() && !is_space(s[end])) out += ' ';
    } else {
      out.append(value);
    }
    i = std::min(end, s.size());
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libpq percent-decodes query keywords before matching them.
std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
      continue;
    }
    out += s[i];
  }
  return out;
}

std::string redact_query(std::string_view query) {
  std::string out;
  size_t i = 0;
  while (i <= query.size()) {
    const size_t amp = std::min(query.find('&', i), query.size());
    const std::string_view param = query.substr(i, amp - i);
    const size_t eq = param.find('=');
    if (eq != std::string_view::npos &&
        must_hide(percent_decode(param.substr(0, eq)), percent_decode(param.substr(eq + 1)))) {
      out.append(param.substr(0, eq + 1)).append(kMask);
    } else {
      out.append(param);
    }
    if (amp < query.size()) out += '&';
    i = amp + 1;
  }
  return out;
}

// `rest` is the URI after "postgresql://". The userinfo ends at the last '@'
// before the query, so that an unencoded '@' or '/' in a password is still
// hidden.
std::string redact_uri_rest(std::string_view rest) {
  const size_t query = std::min(rest.find('?'), rest.size());
  std::string out;
  const std::string_view head = rest.substr(0, query);
  const size_t at = head.rfind('@');
  const size_t colon = at == std::string_view::npos ? at : head.substr(0, at).find(':');
  if (colon != std::string_view::npos) {
    out.append(head.substr(0, colon + 1)).append(kMask).append(head.substr(at));
  } else {
    out.append(head);
  }
  if (query < rest.size()) out.append("?").append(redact_query(rest.substr(query + 1)));
  return out;
}

}  // namespace

std::string redact_dsn(std::string_view dsn) {
  for (std::string_view prefix : kUriPrefixes) {
    if (dsn.starts_with(prefix)) {
      return std::string(prefix) + redact_uri_rest(dsn.substr(prefix.size()));
    }
  }
  return redact_conninfo(dsn);
}

// libpq's messages about a connection string quote pieces of it ("invalid
// percent-encoded token: "%s"", or the whole URI when a bracket is missing),
// and those pieces may be passwords. A quoted piece is kept only when the
// redacted DSN contains it too. Each opening quote is paired with the
// farthest closing quote that still yields a piece of the DSN, so that a
// password holding a '"' is hidden whole rather than cut at its quote.
std::string redact_libpq_message(std::string_view message, std::string_view dsn) {
  const std::string redacted = redact_dsn(dsn);
  std::string out;
  size_t i = 0;
  while (i < message.size()) {
    if (message[i] != '"') {
      out += message[i++];
      continue;
    }
    size_t close = std::string_view::npos;
    for (size_t j = message.find('"', i + 1); j != std::string_view::npos;
         j = message.find('"', j + 1)) {
      if (dsn.find(message.substr(i + 1, j - i - 1)) != std::string_view::npos) close = j;
    }
    if (close == std::string_view::npos) {
      out += message[i++];
      continue;
    }
    const std::string_view piece = message.substr(i + 1, close - i - 1);
    out += '"';
    out.append(redacted.find(piece) != std::string::npos ? piece : kMask);
    out += '"';
    i = close + 1;
  }
  return out;
}

bool is_secret_property(std::string_view key) {
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("password") != std::string::npos || lower.find("secret") != std::string::npos ||
         lower.find("sasl.oauthbearer") != std::string::npos || lower == "ssl.key.pem";
}

}  // namespace config
