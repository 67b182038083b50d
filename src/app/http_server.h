#pragma once

#include <memory>
#include <string>
#include <thread>

#include "app/metrics_text.h"
#include "common/result.h"
#include "relay/pipeline.h"

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
  void stop();
  int port() const { return port_; }

 private:
  const relay::PipelineStats& stats_;
  std::string slot_;
  BuildInfo build_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace app
