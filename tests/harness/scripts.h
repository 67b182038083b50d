#pragma once

// Shared by the server wrappers: where the shell scripts are, and how a
// script's failure becomes an exception.

#include <map>
#include <string>
#include <vector>

#include "harness/process.h"

namespace harness::detail {

inline std::string script_path(const std::string& name) {
  return std::string(OUTBOX_HARNESS_DIR) + "/" + name;
}

// Runs a harness script; its trimmed stdout on success. Every script gets
// HARNESS_OWNER_PID so that servers outlive no test binary (a ctest timeout
// kills the binary, not its servers).
std::string run_script(const std::string& script, const std::vector<std::string>& args,
                       std::map<std::string, std::string> env = {});

}  // namespace harness::detail
