#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "app/metrics_text.h"
#include "common/result.h"
#include "relay/stats.h"

namespace httplib {
class Server;
}

namespace app {

// /healthz: 200 while the relay's loop turns, 503 once it has not turned for
// PipelineStats::kLoopStallTimeout (the process is stuck: restart it).
// /readyz: 200 while streaming, 503 otherwise (starting, connecting, waiting
// for the slot, stopped); /readyz?standby=1 is also 200 while waiting for a
// slot that another instance holds. /metrics: Prometheus text format.
class HttpServer {
 public:
  HttpServer(const relay::PipelineStats& stats, std::string slot, BuildInfo build);
  ~HttpServer();
  common::Result<void> start(const std::string& listen);

  // Group mode: which slots this instance leads. With it set (before
  // start()), /readyz answers "leader slots=..." or "standby", and /metrics
  // renders the stats of the slots `stats` lists (those this instance streams
  // or has streamed) instead of the constructor's, and adds one leader gauge
  // per configured slot.
  struct SlotOwnership {
    std::string slot;
    bool assigned = false;
    bool streaming = false;
  };
  struct Ownership {
    std::function<bool()> joined;
    std::function<uint64_t()> rebalances;
    std::function<uint64_t()> yields;
    std::function<std::vector<SlotOwnership>()> slots;
    std::function<std::vector<SlotStats>()> stats;
  };
  void set_ownership(Ownership ownership) { ownership_ = std::move(ownership); }
  void stop();
  int port() const { return port_; }

 private:
  std::pair<int, std::string> ownership_readiness() const;
  std::string failover_detail(relay::PipelineState state) const;
  std::string render_ownership_metrics() const;

  const relay::PipelineStats& stats_;
  std::string slot_;
  BuildInfo build_;
  Ownership ownership_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace app
