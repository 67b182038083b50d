#include "config/names.h"

#include <cctype>
#include <charconv>
#include <string>

#include "config/errc.h"

namespace config {
namespace {

// NAMEDATALEN - 1: PostgreSQL truncates or refuses longer names.
constexpr size_t kMaxPgNameBytes = 63;
// Kafka's Topic.MAX_NAME_LENGTH.
constexpr size_t kMaxTopicChars = 249;
constexpr int kMaxPort = 65535;

bool is_lower_or_digit_or_underscore(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_topic_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

bool is_host_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// Hex digits and colons, a dotted IPv4 tail, and a zone such as %eth0.
bool is_ipv6_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' || c == '%';
}

common::Error invalid_name(std::string message) {
  return common::make_error(errc::invalid_name, std::move(message));
}

common::Error malformed(std::string message) {
  return common::make_error(errc::malformed, std::move(message));
}

template <typename Pred>
bool all_of(std::string_view text, Pred pred) {
  for (char c : text) {
    if (!pred(c)) return false;
  }
  return true;
}

common::Result<void> check_host(std::string_view host) {
  if (host.empty()) {
    return malformed("expected host:port with a host (0.0.0.0:9187 listens on every interface)");
  }
  if (host.front() == '[') {
    const bool bracketed = host.size() >= 3 && host.back() == ']';
    if (!bracketed || !all_of(host.substr(1, host.size() - 2), is_ipv6_char)) {
      return malformed("expected host:port with a bracketed IPv6 address such as [::1]:9187");
    }
    return {};
  }
  if (!all_of(host, is_host_char)) {
    return malformed(
        "expected host:port; the host is a name or an IPv4 address, or an IPv6 address in "
        "brackets");
  }
  return {};
}

common::Result<void> check_port(std::string_view port) {
  int value = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 0 ||
      value > kMaxPort || port.front() == '+') {
    return malformed("expected host:port with a port from 0 to 65535");
  }
  return {};
}

}  // namespace

common::Result<void> check_slot_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxPgNameBytes ||
      !all_of(name, is_lower_or_digit_or_underscore)) {
    return invalid_name(
        "a replication slot name has 1 to 63 characters, each a lowercase letter, a digit or "
        "an underscore");
  }
  return {};
}

common::Result<void> check_publication_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxPgNameBytes ||
      !all_of(name, is_lower_or_digit_or_underscore) ||
      (name.front() >= '0' && name.front() <= '9')) {
    return invalid_name(
        "a publication name has 1 to 63 characters, each a lowercase letter, a digit or an "
        "underscore, and does not start with a digit");
  }
  return {};
}

common::Result<void> check_table_name(std::string_view name) {
  const size_t dot = name.find('.');
  if (dot != std::string_view::npos && name.find('.', dot + 1) != std::string_view::npos) {
    return invalid_name("expected 'table' or 'schema.table', with at most one dot");
  }
  if (name.empty() || dot == 0 || dot + 1 == name.size()) {
    return invalid_name("expected 'table' or 'schema.table', with no empty part");
  }
  return {};
}

common::Result<void> check_topic_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxTopicChars || !all_of(name, is_topic_char)) {
    return invalid_name(
        "a Kafka topic name has 1 to 249 characters, each a letter, a digit, '.', '_' or '-'");
  }
  if (name == "." || name == "..") return invalid_name("'.' and '..' are not valid topic names");
  return {};
}

common::Result<void> check_listen_address(std::string_view address) {
  if (address.empty()) return {};
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return malformed("expected host:port, or \"\" to disable");
  if (auto host = check_host(address.substr(0, colon)); !host) return host;
  return check_port(address.substr(colon + 1));
}

common::Result<void> check_column_name(std::string_view name) {
  if (name.empty()) return invalid_name("a column name must not be empty");
  return {};
}

}  // namespace config
