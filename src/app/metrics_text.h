#pragma once

#include <string>

#include "relay/pipeline.h"

namespace app {

struct BuildInfo {
  std::string version;
  std::string librdkafka_version;
  std::string libpq_version;
};

// The Prometheus text exposition format (version 0.0.4) of one slot's stats.
std::string render_metrics(const relay::PipelineStats& stats, const std::string& slot,
                           const BuildInfo& build);

}  // namespace app
