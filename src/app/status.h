#pragma once

// `outbox-relay status --config FILE [--json]`: each configured slot as the
// servers see it (PostgreSQL's slot, Kafka's checkpoint and group, the
// running instance's last error), and an exit code for scripts and probes.
// The output and the exit codes are documented in docs/status.md.

#include <chrono>
#include <cstdint>
#include <string>

#include "config/config.h"

namespace app {

// Exit codes, in the convention of monitoring plugins (Nagios, Icinga).
inline constexpr int kStatusHealthy = 0;
inline constexpr int kStatusLagging = 1;
inline constexpr int kStatusAtRisk = 2;  // a slot lost, missing, or about to be lost
inline constexpr int kStatusUnknown = 3;  // cannot tell: bad config, PostgreSQL unreachable

struct StatusOptions {
  std::string config_path;
  bool json = false;
  int64_t max_lag_bytes = 64LL << 20;
  double max_lag_seconds = 60;
  // A slot whose safe_wal_size is below this is at risk.
  int64_t min_safe_wal_bytes = 256LL << 20;
  // Bounds each connection and request (PostgreSQL, Kafka, the instance).
  std::chrono::milliseconds timeout{10000};
};

// Prints the report on stdout and returns the exit code; `cfg` is loaded and
// checked by the caller (an invalid one is kStatusUnknown there).
int run_status(const StatusOptions& options, const config::Config& cfg);

}  // namespace app
