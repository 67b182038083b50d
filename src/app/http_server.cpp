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
    case relay::PipelineState::kWaitingForLease: return "waiting_for_lease";
  }
  return "unknown";
}

}  // namespace

// Whether a promotion now would keep the slot, once the monitor knows:
// readiness is not withheld for it, a primary without standbys is a
// deployment choice.
std::string HttpServer::failover_detail(relay::PipelineState state) const {
  const int failover = stats_.slot_failover.load();
  if (state != relay::PipelineState::kStreaming || failover < 0) return {};
  return " failover_slot=" + std::to_string(failover) +
         " failover_ready_standbys=" + std::to_string(stats_.failover_ready_standbys.load());
}

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
    if (ownership_.slots) {
      auto [status, body] = ownership_readiness();
      res.status = status;
      res.set_content(body, "text/plain");
      return;
    }
    int s = stats_.state.load();
    const auto state = static_cast<relay::PipelineState>(s);
    // ?standby=1 also counts an instance waiting for a slot that another
    // instance streams: a standby replica that a rolling update must not wait
    // for forever.
    bool ready = state == relay::PipelineState::kStreaming ||
                 (state == relay::PipelineState::kWaitingForSlot && req.has_param("standby"));
    res.status = ready ? 200 : 503;
    res.set_content(std::string(state_name(s)) + failover_detail(state) + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    const auto slots =
        ownership_.stats ? ownership_.stats() : std::vector<SlotStats>{SlotStats{slot_, &stats_}};
    res.set_content(render_metrics(slots, build_) + render_ownership_metrics(),
                    "text/plain; version=0.0.4");
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

namespace app {

// Ready when this instance is in the group and streams every slot it was
// assigned; a standby holding nothing is ready too, it is doing its job.
std::pair<int, std::string> HttpServer::ownership_readiness() const {
  if (ownership_.joined && !ownership_.joined()) return {503, "joining\n"};
  std::string leading;
  std::string acquiring;
  for (const auto& s : ownership_.slots()) {
    if (!s.assigned) continue;
    std::string& list = s.streaming ? leading : acquiring;
    list += (list.empty() ? "" : ",") + s.slot;
  }
  if (!acquiring.empty()) return {503, "acquiring slots=" + acquiring + "\n"};
  if (!leading.empty()) return {200, "leader slots=" + leading + "\n"};
  return {200, "standby\n"};
}

std::string HttpServer::render_ownership_metrics() const {
  if (!ownership_.slots) return {};
  std::ostringstream o;
  o << "# HELP outbox_relay_group_member 1 once this instance has joined the group.\n"
    << "# TYPE outbox_relay_group_member gauge\n"
    << "outbox_relay_group_member " << (!ownership_.joined || ownership_.joined() ? 1 : 0)
    << '\n';
  if (ownership_.rebalances) {
    o << "# HELP outbox_relay_rebalances_total Rebalance callbacks served: slots assigned, "
         "revoked or lost.\n"
      << "# TYPE outbox_relay_rebalances_total counter\n"
      << "outbox_relay_rebalances_total " << ownership_.rebalances() << '\n';
  }
  if (ownership_.yields) {
    o << "# HELP outbox_relay_group_yields_total Times this instance left the group because an "
         "assigned slot did not stream for group.yield_after.\n"
      << "# TYPE outbox_relay_group_yields_total counter\n"
      << "outbox_relay_group_yields_total " << ownership_.yields() << '\n';
  }
  o << "# HELP outbox_relay_slot_leader 1 while this instance streams the slot, 0 on standby.\n"
    << "# TYPE outbox_relay_slot_leader gauge\n";
  for (const auto& s : ownership_.slots()) {
    o << "outbox_relay_slot_leader{slot=\"" << s.slot << "\"} "
      << (s.assigned && s.streaming ? 1 : 0) << '\n';
  }
  return o.str();
}

}  // namespace app
