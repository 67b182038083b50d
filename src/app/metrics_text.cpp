#include "app/metrics_text.h"

#include <cstdio>
#include <sstream>

namespace app {

namespace {

// Label values escape backslash, double quote and newline, and nothing else.
std::string escape_label(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Writer {
 public:
  explicit Writer(const std::string& slot) : slot_label_("slot=\"" + escape_label(slot) + "\"") {}

  void family(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  // A sample labelled with the slot and `extra` (already rendered labels).
  template <typename T>
  void sample(const std::string& name, T value, const std::string& extra = "") {
    o_ << name << '{' << slot_label_ << (extra.empty() ? "" : ",") << extra << "} " << value
       << '\n';
  }
  void one(const char* name, const char* type, const char* help, uint64_t value) {
    family(name, type, help);
    sample(name, value);
  }
  std::ostringstream& out() { return o_; }

 private:
  std::ostringstream o_;
  std::string slot_label_;
};

void render_topics(Writer& w, const relay::PipelineStats& stats) {
  w.family("outbox_relay_records_published_total", "counter",
           "Records Kafka acknowledged, by destination topic (dead-letter records included).");
  stats.topics.for_each([&](const std::string& topic, const relay::TopicCounters& c) {
    w.sample("outbox_relay_records_published_total", c.published.load(),
             "topic=\"" + escape_label(topic) + "\"");
  });
  w.family("outbox_relay_records_failed_total", "counter",
           "Records Kafka refused or failed to deliver, by topic.");
  stats.topics.for_each([&](const std::string& topic, const relay::TopicCounters& c) {
    w.sample("outbox_relay_records_failed_total", c.failed.load(),
             "topic=\"" + escape_label(topic) + "\"");
  });
}

void render_latency(Writer& w, const relay::PipelineStats& stats) {
  const char* name = "outbox_relay_commit_to_ack_seconds";
  w.family(name, "histogram",
           "From the transaction's commit time on the server to Kafka's acknowledgement of each "
           "record.");
  const auto s = stats.commit_to_ack.snapshot();
  const auto& bounds = relay::LatencyHistogram::kBoundsSeconds;
  for (size_t i = 0; i < bounds.size(); ++i) {
    std::ostringstream le;
    le << "le=\"" << bounds[i] << '"';
    w.sample(std::string(name) + "_bucket", s.cumulative[i], le.str());
  }
  w.sample(std::string(name) + "_bucket", s.count, "le=\"+Inf\"");
  char sum[40];
  std::snprintf(sum, sizeof sum, "%.6f", s.sum_seconds);
  w.sample(std::string(name) + "_sum", sum);
  w.sample(std::string(name) + "_count", s.count);
}

}  // namespace

std::string render_metrics(const relay::PipelineStats& stats, const std::string& slot,
                           const BuildInfo& build) {
  Writer w(slot);
  const auto state = static_cast<relay::PipelineState>(stats.state.load());
  const bool streaming = state == relay::PipelineState::kStreaming;

  w.family("outbox_relay_build_info", "gauge", "Versions of the relay and its libraries.");
  w.out() << "outbox_relay_build_info{version=\"" << escape_label(build.version)
          << "\",librdkafka_version=\"" << escape_label(build.librdkafka_version)
          << "\",libpq_version=\"" << escape_label(build.libpq_version) << "\"} 1\n";

  render_topics(w, stats);
  w.one("outbox_relay_records_dead_lettered_total", "counter",
        "Records sent to the dead-letter topic instead of their own.",
        stats.records_dead_lettered.load());
  w.one("outbox_relay_transactions_total", "counter", "Transactions seen in the stream.",
        stats.transactions.load());
  w.one("outbox_relay_reconnects_total", "counter",
        "Times the replication connection was re-established after a failure.",
        stats.reconnects.load());
  w.one("outbox_relay_slots_recreated_total", "counter",
        "Invalidated slots dropped and created again under on_slot_lost: recreate; each one "
        "skipped rows.",
        stats.slots_recreated.load());
  w.one("outbox_relay_in_flight_records", "gauge",
        "Records handed to Kafka and not yet acknowledged.", stats.in_flight_records.load());
  w.one("outbox_relay_in_flight_bytes", "gauge",
        "Key and payload bytes handed to Kafka and not yet acknowledged.",
        stats.in_flight_bytes.load());
  w.one("outbox_relay_received_lsn", "gauge",
        "Highest WAL position received from the server, as a byte position.",
        stats.received_lsn.load());
  w.one("outbox_relay_confirmed_lsn", "gauge",
        "WAL position confirmed to the server (the slot's confirmed_flush_lsn).",
        stats.confirmed_lsn.load());
  const int64_t retained = stats.retained_wal_bytes.load();
  if (retained >= 0) {
    w.one("outbox_relay_slot_retained_wal_bytes", "gauge",
          "WAL the server keeps for the slot: pg_current_wal_lsn() - restart_lsn.",
          static_cast<uint64_t>(retained));
  }
  render_latency(w, stats);
  w.one("outbox_relay_streaming", "gauge", "1 while the slot is being streamed.",
        streaming ? 1 : 0);
  w.family("outbox_relay_slots_owned", "gauge", "Replication slots this instance streams.");
  w.out() << "outbox_relay_slots_owned " << (streaming ? 1 : 0) << '\n';
  w.family("outbox_relay_last_loop_timestamp_seconds", "gauge",
           "When the relay's loop last turned (Unix time).");
  const int64_t last_ms = stats.last_loop_unix_ms.load();
  char last[32];
  std::snprintf(last, sizeof last, "%lld.%03lld", static_cast<long long>(last_ms / 1000),
                static_cast<long long>(last_ms % 1000));
  w.sample("outbox_relay_last_loop_timestamp_seconds", last);
  return w.out().str();
}

}  // namespace app
