#include "app/metrics_text.h"

#include <cstdio>
#include <functional>
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

// Renders families one at a time; each_slot() writes a family's samples for
// every slot, labelled with it.
class Writer {
 public:
  explicit Writer(const std::vector<SlotStats>& slots) {
    for (const auto& s : slots)
      slots_.push_back({"slot=\"" + escape_label(s.slot) + "\"", s.stats});
  }

  void family(const char* name, const char* type, const char* help) {
    o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  // Calls fn(stats) for every slot; the samples it writes carry that slot.
  void each_slot(const std::function<void(const relay::PipelineStats&)>& fn) {
    for (const auto& s : slots_) {
      slot_label_ = &s.label;
      fn(*s.stats);
    }
    slot_label_ = nullptr;
  }
  bool any_slot(const std::function<bool(const relay::PipelineStats&)>& pred) const {
    for (const auto& s : slots_) {
      if (pred(*s.stats)) return true;
    }
    return false;
  }
  // A sample labelled with the current slot and `extra` (already rendered labels).
  template <typename T>
  void sample(const std::string& name, T value, const std::string& extra = "") {
    o_ << name << '{' << *slot_label_ << (extra.empty() ? "" : ",") << extra << "} " << value
       << '\n';
  }
  // A family of one sample per slot: the value of `field`.
  void per_slot(const char* name, const char* type, const char* help,
                const std::atomic<uint64_t> relay::PipelineStats::*field) {
    family(name, type, help);
    each_slot([&](const relay::PipelineStats& stats) { sample(name, (stats.*field).load()); });
  }
  std::ostringstream& out() { return o_; }

 private:
  struct Slot {
    std::string label;
    const relay::PipelineStats* stats;
  };
  std::ostringstream o_;
  std::vector<Slot> slots_;
  const std::string* slot_label_ = nullptr;
};

bool streaming(const relay::PipelineStats& stats) {
  return static_cast<relay::PipelineState>(stats.state.load()) == relay::PipelineState::kStreaming;
}

// A counter family by destination topic: the value of `field` per slot and topic.
void render_by_topic(Writer& w, const char* name, const char* help,
                     const std::atomic<uint64_t> relay::TopicCounters::*field) {
  w.family(name, "counter", help);
  w.each_slot([&](const relay::PipelineStats& stats) {
    stats.topics.for_each([&](const std::string& topic, const relay::TopicCounters& c) {
      w.sample(name, (c.*field).load(), "topic=\"" + escape_label(topic) + "\"");
    });
  });
}

void render_histogram(Writer& w, const char* name, const char* help,
                      const relay::LatencyHistogram relay::PipelineStats::*field) {
  w.family(name, "histogram", help);
  w.each_slot([&](const relay::PipelineStats& stats) {
    const auto s = (stats.*field).snapshot();
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
  });
}

// Exactly once: the checkpoint of each slot that has one.
void render_checkpoint(Writer& w) {
  if (!w.any_slot([](const auto& s) { return s.checkpoint_known.load(); })) return;
  w.family("outbox_relay_checkpoint_lsn", "gauge",
           "End LSN of the last checkpoint committed with a Kafka transaction (or read back from "
           "Kafka at start), as a byte position.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    if (stats.checkpoint_known.load()) {
      w.sample("outbox_relay_checkpoint_lsn", stats.checkpoint_lsn.load());
    }
  });
}

// The slot's wal_status as one sample per value, 1 for the current one;
// left out until read, like the retained WAL.
void render_wal_status(Writer& w) {
  const auto known = [](const relay::PipelineStats& s) {
    return s.wal_status.load() != static_cast<int>(relay::SlotWalStatus::kUnknown);
  };
  if (!w.any_slot(known)) return;
  w.family("outbox_relay_slot_wal_status", "gauge",
           "The slot's wal_status in pg_replication_slots: 1 for the current value. unreserved: "
           "the slot will be lost at the next checkpoint unless it catches up; lost: the WAL it "
           "needed was removed.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    if (!known(stats)) return;
    const int current = stats.wal_status.load();
    for (size_t i = 0; i < relay::kSlotWalStatusNames.size(); ++i) {
      w.sample("outbox_relay_slot_wal_status", static_cast<int>(i) == current ? 1 : 0,
               std::string("wal_status=\"") + relay::kSlotWalStatusNames[i] + '"');
    }
  });
  if (!w.any_slot([](const auto& s) {
        return s.safe_wal_bytes.load() != relay::PipelineStats::kSafeWalUnknown;
      })) {
    return;
  }
  w.family("outbox_relay_slot_safe_wal_bytes", "gauge",
           "pg_replication_slots.safe_wal_size: WAL that can still be written before the slot "
           "is in danger of being lost (max_slot_wal_keep_size); negative once past it.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    const int64_t safe = stats.safe_wal_bytes.load();
    if (safe != relay::PipelineStats::kSafeWalUnknown) {
      w.sample("outbox_relay_slot_safe_wal_bytes", safe);
    }
  });
}

// The retained WAL and the loop's last turn are left out for a slot until
// known, and again once its pipeline stops (a slot revoked in group mode).
void render_retained_wal(Writer& w) {
  if (!w.any_slot([](const auto& s) { return s.retained_wal_bytes.load() >= 0; })) return;
  w.family("outbox_relay_slot_retained_wal_bytes", "gauge",
           "WAL the server keeps for the slot: pg_current_wal_lsn() - restart_lsn.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    const int64_t retained = stats.retained_wal_bytes.load();
    if (retained >= 0) w.sample("outbox_relay_slot_retained_wal_bytes", retained);
  });
}

// Left out for a slot until the monitor has read it.
void render_failover(Writer& w) {
  if (!w.any_slot([](const auto& s) { return s.slot_failover.load() >= 0; })) return;
  w.family("outbox_relay_slot_failover", "gauge",
           "1 if the slot is a failover slot (PostgreSQL 17+), which a standby with "
           "sync_replication_slots keeps a copy of.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    const int failover = stats.slot_failover.load();
    if (failover >= 0) w.sample("outbox_relay_slot_failover", failover);
  });
  w.family("outbox_relay_slot_failover_ready_standbys", "gauge",
           "Standbys named in synchronized_standby_slots, connected, whose physical slot has "
           "flushed WAL up to this slot's confirmed_flush_lsn: each can carry the slot over a "
           "promotion. 0 means a failover now loses the slot or its progress.");
  w.each_slot([&](const relay::PipelineStats& stats) {
    const int ready = stats.failover_ready_standbys.load();
    if (stats.slot_failover.load() >= 0 && ready >= 0) {
      w.sample("outbox_relay_slot_failover_ready_standbys", ready);
    }
  });
}

void render_last_loop(Writer& w) {
  if (!w.any_slot([](const auto& s) { return s.last_loop_unix_ms.load() != 0; })) return;
  w.family("outbox_relay_last_loop_timestamp_seconds", "gauge",
           "When the relay's loop last turned (Unix time).");
  w.each_slot([&](const relay::PipelineStats& stats) {
    const int64_t last_ms = stats.last_loop_unix_ms.load();
    if (last_ms == 0) return;
    char last[32];
    std::snprintf(last, sizeof last, "%lld.%03lld", static_cast<long long>(last_ms / 1000),
                  static_cast<long long>(last_ms % 1000));
    w.sample("outbox_relay_last_loop_timestamp_seconds", last);
  });
}

// Families of one sample per slot, a field of its stats.
struct PerSlotFamily {
  const char* name;
  const char* type;
  const char* help;
  const std::atomic<uint64_t> relay::PipelineStats::*field;
};

constexpr PerSlotFamily kPerSlotFamilies[] = {
    {"outbox_relay_records_dead_lettered_total", "counter",
     "Records sent to the dead-letter topic instead of their own.",
     &relay::PipelineStats::records_dead_lettered},
    {"outbox_relay_transactions_total", "counter", "Transactions seen in the stream.",
     &relay::PipelineStats::transactions},
    {"outbox_relay_reconnects_total", "counter",
     "Times the replication connection was re-established after a failure.",
     &relay::PipelineStats::reconnects},
    {"outbox_relay_slots_recreated_total", "counter",
     "Invalidated slots dropped and created again under on_slot_lost: recreate; each one "
     "skipped rows.",
     &relay::PipelineStats::slots_recreated},
    {"outbox_relay_kafka_transactions_committed_total", "counter",
     "Kafka transactions committed with their checkpoint (exactly once).",
     &relay::PipelineStats::kafka_transactions_committed},
    {"outbox_relay_kafka_transactions_aborted_total", "counter",
     "Kafka transactions aborted, by the relay or by a commit that could not go through; none "
     "of their records is read by read_committed consumers (exactly once).",
     &relay::PipelineStats::kafka_transactions_aborted},
    {"outbox_relay_fenced_total", "counter",
     "Times the slot stopped producing because a newer owner took its output: the lease ran "
     "out, or Kafka refused this producer for a newer one.",
     &relay::PipelineStats::fenced},
    {"outbox_relay_lease_lost_total", "counter",
     "Group mode: times the slot stopped producing because this instance's lease ran out or "
     "its assignment was lost; each is also counted in outbox_relay_fenced_total.",
     &relay::PipelineStats::lease_lost},
    {"outbox_relay_in_flight_records", "gauge", "Records handed to Kafka and not yet acknowledged.",
     &relay::PipelineStats::in_flight_records},
    {"outbox_relay_in_flight_bytes", "gauge",
     "Key and payload bytes handed to Kafka and not yet acknowledged.",
     &relay::PipelineStats::in_flight_bytes},
    {"outbox_relay_received_lsn", "gauge",
     "Highest WAL position received from the server, as a byte position.",
     &relay::PipelineStats::received_lsn},
    {"outbox_relay_confirmed_lsn", "gauge",
     "WAL position confirmed to the server (the slot's confirmed_flush_lsn).",
     &relay::PipelineStats::confirmed_lsn},
};

}  // namespace

std::string render_metrics(const std::vector<SlotStats>& slots, const BuildInfo& build) {
  using relay::PipelineStats;
  Writer w(slots);
  w.family("outbox_relay_build_info", "gauge", "Versions of the relay and its libraries.");
  w.out() << "outbox_relay_build_info{version=\"" << escape_label(build.version)
          << "\",librdkafka_version=\"" << escape_label(build.librdkafka_version)
          << "\",libpq_version=\"" << escape_label(build.libpq_version) << "\"} 1\n";

  render_by_topic(
      w, "outbox_relay_records_published_total",
      "Records Kafka acknowledged, by destination topic (dead-letter records included).",
      &relay::TopicCounters::published);
  render_by_topic(w, "outbox_relay_records_failed_total",
                  "Records Kafka refused or failed to deliver, by topic.",
                  &relay::TopicCounters::failed);
  for (const auto& f : kPerSlotFamilies) w.per_slot(f.name, f.type, f.help, f.field);
  render_checkpoint(w);
  render_retained_wal(w);
  render_wal_status(w);
  render_failover(w);
  render_histogram(w, "outbox_relay_commit_to_ack_seconds",
                   "From the transaction's commit time on the server to Kafka's acknowledgement "
                   "of each record.",
                   &relay::PipelineStats::commit_to_ack);
  render_histogram(w, "outbox_relay_kafka_commit_seconds",
                   "From asking Kafka to commit a transaction with its checkpoint to the commit "
                   "succeeding (exactly once).",
                   &relay::PipelineStats::kafka_commit);
  render_histogram(w, "outbox_relay_commit_to_visible_seconds",
                   "From the transaction's commit time on the server to the Kafka commit that "
                   "made each of its records readable to read_committed consumers (exactly once).",
                   &relay::PipelineStats::commit_to_visible);
  w.family("outbox_relay_streaming", "gauge", "1 while the slot is being streamed.");
  int owned = 0;
  w.each_slot([&](const PipelineStats& stats) {
    const int on = streaming(stats) ? 1 : 0;
    owned += on;
    w.sample("outbox_relay_streaming", on);
  });
  w.family("outbox_relay_slots_owned", "gauge", "Replication slots this instance streams.");
  w.out() << "outbox_relay_slots_owned " << owned << '\n';
  render_last_loop(w);
  return w.out().str();
}

std::string render_metrics(const relay::PipelineStats& stats, const std::string& slot,
                           const BuildInfo& build) {
  return render_metrics({SlotStats{slot, &stats}}, build);
}

}  // namespace app
