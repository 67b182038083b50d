#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
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

// /healthz (liveness): 200 while the relay's loops turn, 503 once one has not
// turned for PipelineStats::kLoopStallTimeout (the process is stuck: restart
// it). Nothing outside the process (PostgreSQL, Kafka) decides it.
// /readyz: 200 while streaming and a Kafka broker answered within
// ready_kafka_timeout, 503 otherwise (starting, connecting, waiting for the
// slot, stopped, Kafka unreachable); /readyz?standby=1 is also 200 while
// waiting for a slot that another instance holds. /metrics: Prometheus text
// format. /status: JSON, each slot's state and last error (docs/status.md).
class HttpServer {
 public:
  HttpServer(const relay::PipelineStats& stats, std::string slot, BuildInfo build);
  ~HttpServer();
  // 0 leaves Kafka out of readiness. Set before start().
  void set_ready_kafka_timeout(std::chrono::milliseconds timeout) {
    ready_kafka_timeout_ = timeout;
  }
  // Group mode: "host/pid/id", named by /status. Set before start().
  void set_instance(std::string instance) { instance_ = std::move(instance); }
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
    // Lives as long as the server's owner; null when not known.
    const relay::PipelineStats* stats = nullptr;
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
  std::pair<int, std::string> readiness(bool standby) const;
  std::pair<int, std::string> ownership_readiness() const;
  std::optional<std::string> kafka_unreachable() const;
  std::pair<int, std::string> liveness() const;
  std::string failover_detail(relay::PipelineState state) const;
  std::string render_ownership_metrics() const;
  std::string render_status() const;

  const relay::PipelineStats& stats_;
  std::string slot_;
  BuildInfo build_;
  std::chrono::milliseconds ready_kafka_timeout_{0};
  std::string instance_;
  Ownership ownership_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace app
