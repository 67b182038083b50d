#pragma once

// ${VAR} expansion in configuration values. It runs on one scalar at a time,
// after YAML parsing, so that an environment value is always data: a variable
// holding "a\nb: c" stays one string and cannot add keys to the document.

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace config {

struct Expansion {
  std::string value;
  // One entry per problem ("environment variable 'X' is not set"), without
  // location; the caller knows which key the text came from.
  std::vector<std::string> errors;
};

// ${NAME} is replaced by the variable's value; an unset variable is an error.
// ${NAME:-default} uses the default when NAME is unset or empty, as in the
// shell. $${ is a literal ${. Any other '$' is kept as written, because
// passwords contain dollars. Results are not expanded again.
Expansion expand_env(std::string_view text, const EnvLookup& env);

// The inverse for literal text: every ${ becomes $${, so that expand_env
// gives the text back unchanged.
std::string escape_env(std::string_view text);

// Reads the process environment.
EnvLookup process_env();

}  // namespace config
