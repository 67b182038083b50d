#include "app/http_server.h"

#include <httplib.h>

#include <chrono>
#include <sstream>

namespace app {

namespace {

constexpr int64_t kLoopStallMs = 30000;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

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

HttpServer::HttpServer(const relay::PipelineStats& stats, std::string slot)
    : stats_(stats), slot_(std::move(slot)) {}

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
    int64_t last = stats_.last_loop_unix_ms.load();
    bool alive = last == 0 || now_ms() - last < kLoopStallMs;
    res.status = alive ? 200 : 503;
    res.set_content(alive ? "ok\n" : "loop stalled\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    if (ownership_.slots) {
      auto [status, body] = ownership_readiness();
      res.status = status;
      res.set_content(body, "text/plain");
      return;
    }
    int s = stats_.state.load();
    bool ready = static_cast<relay::PipelineState>(s) == relay::PipelineState::kStreaming;
    res.status = ready ? 200 : 503;
    res.set_content(std::string(state_name(s)) + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics() + render_ownership_metrics(), "text/plain; version=0.0.4");
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

std::string HttpServer::render_metrics() const {
  std::ostringstream o;
  const std::string l = "{slot=\"" + slot_ + "\"}";
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
      << name << l << ' ' << v << '\n';
  };
  auto gauge = [&](const char* name, const char* help, uint64_t v) {
    o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n"
      << name << l << ' ' << v << '\n';
  };
  counter("outbox_relay_records_published_total", "Records acknowledged by Kafka.",
          stats_.records_published.load());
  counter("outbox_relay_records_failed_total", "Records whose delivery failed.",
          stats_.records_failed.load());
  counter("outbox_relay_records_dead_lettered_total", "Records sent to the dead-letter topic.",
          stats_.records_dead_lettered.load());
  counter("outbox_relay_transactions_total", "Transactions seen in the stream.",
          stats_.transactions.load());
  counter("outbox_relay_reconnects_total", "Reconnections to PostgreSQL.",
          stats_.reconnects.load());
  gauge("outbox_relay_in_flight_records", "Records handed to Kafka and not yet acknowledged.",
        stats_.in_flight_records.load());
  gauge("outbox_relay_in_flight_bytes", "Bytes handed to Kafka and not yet acknowledged.",
        stats_.in_flight_bytes.load());
  gauge("outbox_relay_received_lsn", "Highest WAL position received.", stats_.received_lsn.load());
  gauge("outbox_relay_confirmed_lsn", "WAL position confirmed to PostgreSQL.",
        stats_.confirmed_lsn.load());
  gauge("outbox_relay_streaming", "1 while the slot is being streamed.",
        stats_.state.load() == static_cast<int>(relay::PipelineState::kStreaming) ? 1 : 0);
  return o.str();
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
  o << "# HELP outbox_relay_slot_leader 1 while this instance streams the slot, 0 on standby.\n"
    << "# TYPE outbox_relay_slot_leader gauge\n";
  for (const auto& s : ownership_.slots()) {
    o << "outbox_relay_slot_leader{slot=\"" << s.slot << "\"} "
      << (s.assigned && s.streaming ? 1 : 0) << '\n';
  }
  return o.str();
}

}  // namespace app
