#pragma once

#include "config/config.h"

namespace app {

// Text lines or JSON lines (one object per line: time, level, msg, and the
// key=value fields that messages carry, e.g. slot=, lsn=, xid=).
void setup_logging(const config::LogConfig& cfg);

}  // namespace app
