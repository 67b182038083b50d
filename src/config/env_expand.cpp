#include "config/env_expand.h"

#include <cctype>
#include <cstdlib>

namespace config {
namespace {

constexpr std::string_view kOpen = "${";
constexpr std::string_view kEscapedOpen = "$${";
constexpr std::string_view kDefaultSeparator = ":-";

bool is_variable_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

// Expands the body of one ${...} (without the braces) into `out`.
void expand_reference(std::string_view body, const EnvLookup& env, Expansion& out) {
  const size_t separator = body.find(kDefaultSeparator);
  const std::string_view name = body.substr(0, separator);
  if (!is_variable_name(name)) {
    out.errors.push_back(quoted("${" + std::string(body) + "}") +
                         " is not a valid environment variable reference; a name has letters, "
                         "digits and underscores and does not start with a digit");
    return;
  }
  const std::optional<std::string> value = env(std::string(name));
  if (separator == std::string_view::npos) {
    if (!value) {
      out.errors.push_back("environment variable " + quoted(name) + " is not set (write ${" +
                           std::string(name) + ":-default} to give a default)");
      return;
    }
    out.value += *value;
    return;
  }
  const std::string_view fallback = body.substr(separator + kDefaultSeparator.size());
  if (fallback.find(kOpen) != std::string_view::npos) {
    out.errors.push_back("nested ${...} in the default of " + quoted(name) + " is not supported");
    return;
  }
  out.value += (value && !value->empty()) ? std::string_view(*value) : fallback;
}

}  // namespace

Expansion expand_env(std::string_view text, const EnvLookup& env) {
  Expansion out;
  out.value.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const std::string_view rest = text.substr(i);
    if (rest.starts_with(kEscapedOpen)) {
      out.value += kOpen;
      i += kEscapedOpen.size();
      continue;
    }
    if (!rest.starts_with(kOpen)) {
      out.value += text[i++];
      continue;
    }
    const size_t close = rest.find('}');
    if (close == std::string_view::npos) {
      out.errors.push_back("unterminated '${' at character " + std::to_string(i + 1) +
                           " (write '$${' for a literal '${')");
      return out;
    }
    expand_reference(rest.substr(kOpen.size(), close - kOpen.size()), env, out);
    i += close + 1;
  }
  return out;
}

std::string escape_env(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i).starts_with(kOpen)) out += '$';
    out += text[i];
  }
  return out;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    // getenv is not thread-safe against setenv; the relay loads its
    // configuration once, at start-up, before any thread is started.
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

}  // namespace config
