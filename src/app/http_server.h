#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "relay/pipeline.h"

namespace httplib {
class Server;
}

namespace app {

// /healthz: the loop turned recently. /readyz: streaming (or, later, standing
// by as assigned). /metrics: Prometheus text format.
class HttpServer {
 public:
  HttpServer(const relay::PipelineStats& stats, std::string slot);
  ~HttpServer();
  common::Result<void> start(const std::string& listen);

  // Group mode: which slots this instance leads. With it set (before
  // start()), /readyz answers "leader slots=..." or "standby" and /metrics
  // adds one leader gauge per configured slot.
  struct SlotOwnership {
    std::string slot;
    bool assigned = false;
    bool streaming = false;
  };
  struct Ownership {
    std::function<bool()> joined;
    std::function<std::vector<SlotOwnership>()> slots;
  };
  void set_ownership(Ownership ownership) { ownership_ = std::move(ownership); }
  void stop();
  int port() const { return port_; }

 private:
  std::string render_metrics() const;
  std::pair<int, std::string> ownership_readiness() const;
  std::string render_ownership_metrics() const;

  const relay::PipelineStats& stats_;
  std::string slot_;
  Ownership ownership_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace app
