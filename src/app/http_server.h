#pragma once

#include <memory>
#include <string>
#include <thread>

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
  void stop();
  int port() const { return port_; }

 private:
  std::string render_metrics() const;

  const relay::PipelineStats& stats_;
  std::string slot_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace app
