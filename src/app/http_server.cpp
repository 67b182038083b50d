#include "app/http_server.h"

#include <httplib.h>

#include <chrono>

#include "app/json_text.h"
#include "wal/lsn.h"

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

// Liveness only: the loops of this process turn. In group mode the group's
// loop and the loop of every slot it streams.
std::pair<int, std::string> HttpServer::liveness() const {
  const auto now = std::chrono::system_clock::now();
  if (stats_.loop_stalled(now)) return {503, "loop stalled\n"};
  if (ownership_.slots) {
    for (const auto& s : ownership_.slots()) {
      if (s.assigned && s.stats && s.stats->loop_stalled(now)) {
        return {503, "loop stalled slot=" + s.slot + "\n"};
      }
    }
  }
  return {200, "ok\n"};
}

// Ready: the pipelines are where they should be (streaming, or standing by)
// and a Kafka broker answered within ready_kafka_timeout; a streaming
// pipeline with nothing to send would not notice Kafka gone.
std::pair<int, std::string> HttpServer::readiness(bool standby) const {
  std::pair<int, std::string> answer;
  if (ownership_.slots) {
    answer = ownership_readiness();
  } else {
    const int s = stats_.state.load();
    const auto state = static_cast<relay::PipelineState>(s);
    // ?standby=1 also counts an instance waiting for a slot that another
    // instance streams: a standby replica that a rolling update must not
    // wait for forever.
    const bool ready = state == relay::PipelineState::kStreaming ||
                       (state == relay::PipelineState::kWaitingForSlot && standby);
    answer = {ready ? 200 : 503, std::string(state_name(s)) + failover_detail(state) + "\n"};
  }
  if (answer.first != 200) return answer;
  if (auto why = kafka_unreachable()) return {503, *why};
  return answer;
}

std::optional<std::string> HttpServer::kafka_unreachable() const {
  if (ready_kafka_timeout_.count() <= 0) return std::nullopt;
  const int64_t last = stats_.kafka_answered_unix_ms.load();
  if (last == 0) return "kafka_unreachable no broker has answered yet\n";
  const int64_t age = relay::unix_ms_now() - last;
  if (age <= ready_kafka_timeout_.count()) return std::nullopt;
  return "kafka_unreachable no broker answered for " + std::to_string(age) +
         " ms (http.ready_kafka_timeout " + std::to_string(ready_kafka_timeout_.count()) +
         " ms)\n";
}

namespace {

void append_last_error(std::string& out, const relay::LastError& error) {
  out += "\"last_error\":";
  const auto e = error.get();
  if (!e) {
    out += "null";
    return;
  }
  out += "{\"message\":" + json_string(e->message) + ",\"at\":" +
         json_string(format_utc_ms(e->unix_ms)) + "}";
}

void append_slot(std::string& out, const std::string& slot, bool assigned,
                 const relay::PipelineStats* stats) {
  out += "{\"slot\":" + json_string(slot) + ",\"assigned\":" + (assigned ? "true" : "false");
  out += ",\"state\":";
  out += json_string(!assigned ? "not_assigned" : stats ? state_name(stats->state.load())
                                                        : "unknown");
  if (stats) {
    out += ",\"confirmed_lsn\":";
    const uint64_t confirmed = stats->confirmed_lsn.load();
    out += confirmed ? json_string(wal::Lsn(confirmed).to_string()) : "null";
    out += ',';
    append_last_error(out, stats->last_error);
  }
  out += '}';
}

}  // namespace

// What `outbox-relay status` asks a running instance: one JSON object.
std::string HttpServer::render_status() const {
  const auto [ready_status, readiness_body] = readiness(false);
  const auto [live_status, liveness_body] = liveness();
  std::string out = "{\"version\":" + json_string(build_.version);
  out += ",\"instance\":" + (instance_.empty() ? std::string("null") : json_string(instance_));
  out += ",\"live\":" + std::string(live_status == 200 ? "true" : "false");
  out += ",\"ready\":" + std::string(ready_status == 200 ? "true" : "false");
  out += ",\"readiness\":" + json_string(readiness_body.substr(0, readiness_body.size() - 1));
  const int64_t answered = stats_.kafka_answered_unix_ms.load();
  out += ",\"kafka_last_answer_ms_ago\":" +
         (answered ? std::to_string(relay::unix_ms_now() - answered) : std::string("null"));
  out += ",\"slots\":[";
  if (ownership_.slots) {
    bool first = true;
    for (const auto& s : ownership_.slots()) {
      if (!first) out += ',';
      first = false;
      append_slot(out, s.slot, s.assigned, s.stats);
    }
    out += "],";
    append_last_error(out, stats_.last_error);
  } else {
    append_slot(out, slot_, true, &stats_);
    out += ']';
  }
  out += "}\n";
  return out;
}

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
    auto [status, body] = liveness();
    res.status = status;
    res.set_content(body, "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    auto [status, body] = readiness(req.has_param("standby"));
    res.status = status;
    res.set_content(body, "text/plain");
  });
  server_->Get("/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_status(), "application/json");
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
