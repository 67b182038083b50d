#include "app/http_server.h"

#include <httplib.h>

#include <chrono>

namespace app {

namespace {

const char* state_name(int s) {
  switch (static_cast<relay::PipelineState>(s)) {
    case relay::PipelineState::kStarting: return "starting";
    case relay::PipelineState::kConnecting: return "connecting";
    case relay::PipelineState::kWaitingForSlot: return "waiting_for_slot";
    case relay::PipelineState::kStreaming: return "streaming";
    case relay::PipelineState::kStopped: return "stopped";
  }
  return "unknown";
}

}  // namespace

HttpServer::HttpServer(const relay::PipelineStats& stats, std::string slot, BuildInfo build)
    : stats_(stats), slot_(std::move(slot)), build_(std::move(build)) {}

HttpServer::~HttpServer() { stop(); }

common::Result<void> HttpServer::start(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return common::Error{std::make_error_code(std::errc::invalid_argument),
                         "http.listen must be host:port, got '" + listen + "'"};
  }
  std::string host = listen.substr(0, colon);
  int port = std::stoi(listen.substr(colon + 1));
  server_ = std::make_unique<httplib::Server>();
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    bool alive = !stats_.loop_stalled(std::chrono::system_clock::now());
    res.status = alive ? 200 : 503;
    res.set_content(alive ? "ok\n" : "loop stalled\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    int s = stats_.state.load();
    const auto state = static_cast<relay::PipelineState>(s);
    // ?standby=1 also counts an instance waiting for a slot that another
    // instance streams: a standby replica that a rolling update must not wait
    // for forever.
    bool ready = state == relay::PipelineState::kStreaming ||
                 (state == relay::PipelineState::kWaitingForSlot && req.has_param("standby"));
    res.status = ready ? 200 : 503;
    res.set_content(std::string(state_name(s)) + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(stats_, slot_, build_), "text/plain; version=0.0.4");
  });
  if (port == 0) {
    port_ = server_->bind_to_any_port(host.c_str());
  } else {
    port_ = server_->bind_to_port(host.c_str(), port) ? port : -1;
  }
  if (port_ < 0) {
    return common::Error{std::make_error_code(std::errc::address_in_use),
                         "cannot listen on " + listen};
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return {};
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace app
