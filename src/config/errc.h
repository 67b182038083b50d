#pragma once

#include <string>
#include <system_error>

namespace config {

// Why a configuration value was rejected. The message that travels with the
// code names the key and the offending value; the code lets callers and tests
// tell a malformed value from one that is well-formed but out of bounds.
enum class errc {
  malformed = 1,   // not of the expected shape: "10 seconds", "host" without a port
  out_of_range,    // well-formed but outside the allowed bounds
  invalid_name,    // a name Postgres or Kafka would refuse
  unset_variable,  // ${VAR} with VAR absent from the environment
};

const std::error_category& error_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), error_category()};
}

}  // namespace config

template <>
struct std::is_error_code_enum<config::errc> : std::true_type {};
