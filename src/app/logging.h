#pragma once

#include "config/config.h"

namespace app {

// Text lines or JSON lines (one object per line: time, level, msg, and the
// key=value fields that messages carry, e.g. slot=, lsn=, xid=).
// `instance`, when not empty, is written on every line (group mode, where
// several instances' logs end up side by side).
void setup_logging(const config::LogConfig& cfg, const std::string& instance = {});

}  // namespace app
