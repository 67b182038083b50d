#pragma once

#include <string>
#include <vector>

#include "relay/stats.h"

namespace app {

struct BuildInfo {
  std::string version;
  std::string librdkafka_version;
  std::string libpq_version;
};

// One slot's stats, under the name its samples are labelled with.
struct SlotStats {
  std::string slot;
  const relay::PipelineStats* stats = nullptr;
};

// The Prometheus text exposition format (version 0.0.4) of the slots' stats:
// each family once, with one sample per slot (and topic) under it.
std::string render_metrics(const std::vector<SlotStats>& slots, const BuildInfo& build);

// The same for a single slot.
std::string render_metrics(const relay::PipelineStats& stats, const std::string& slot,
                           const BuildInfo& build);

}  // namespace app
