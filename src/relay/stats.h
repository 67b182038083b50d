#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "relay/catalog_alarm.h"

namespace relay {

// Wall-clock Unix milliseconds, as the stats' timestamps are kept.
inline int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Per-topic delivery counters. Written by the pipeline's thread only, read by
// the HTTP thread; the objects never move once created.
struct TopicCounters {
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> failed{0};
};

// Topic name → counters, shared between the pipeline and the scrape. Lookups
// take a mutex, so the pipeline goes through a TopicCountersCache instead.
class TopicStatsRegistry {
 public:
  TopicCounters& get(std::string_view topic);
  // Calls fn(topic, counters) in topic order, under the registry's lock.
  void for_each(const std::function<void(const std::string&, const TopicCounters&)>& fn) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<TopicCounters>, std::less<>> topics_;
};

// Remembers the counters of the last topic seen. Outboxes mostly publish to
// one or a few topics, so a delivery report usually names the previous
// report's topic and costs a string compare, not a locked map lookup.
class TopicCountersCache {
 public:
  explicit TopicCountersCache(TopicStatsRegistry& registry) : registry_(registry) {}
  TopicCounters& get(std::string_view topic) {
    if (last_ == nullptr || topic != last_topic_) {
      last_ = &registry_.get(topic);
      last_topic_.assign(topic);
    }
    return *last_;
  }

 private:
  TopicStatsRegistry& registry_;
  std::string last_topic_;
  TopicCounters* last_ = nullptr;
};

// A Prometheus histogram with fixed bounds in seconds, fed with microseconds.
// One writer; readers may see a sum and count a moment apart, as with any
// scrape taken while the histogram is being fed.
class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBoundsSeconds = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

  // `count` observations of the same value.
  void observe_micros(int64_t micros, uint64_t count = 1);

  struct Snapshot {
    std::array<uint64_t, kBoundsSeconds.size()> cumulative{};
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsSeconds.size() + 1> buckets_{};  // last: +Inf only
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_micros_{0};
};

// The last failure a slot met, for the /status endpoint and
// `outbox-relay status`: the same text the warning or error line about it
// logged (never a payload or a secret), and when. Kept once the slot
// recovers: the state says whether it did.
class LastError {
 public:
  struct Entry {
    std::string message;
    int64_t unix_ms = 0;
  };
  void set(std::string message) {
    const int64_t now = unix_ms_now();
    std::lock_guard lock(mu_);
    entry_ = Entry{std::move(message), now};
  }
  std::optional<Entry> get() const {
    std::lock_guard lock(mu_);
    return entry_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<Entry> entry_;
};

// pg_replication_slots.wal_status (PostgreSQL 13+), as the slot monitor last
// read it.
enum class SlotWalStatus : int {
  kUnknown = -1,  // not read yet, no such slot, or a server before 13
  kReserved,
  kExtended,
  kUnreserved,
  kLost,
};
inline constexpr std::array<const char*, 4> kSlotWalStatusNames = {"reserved", "extended",
                                                                   "unreserved", "lost"};
// kUnknown for a value not among those.
SlotWalStatus slot_wal_status_from(std::string_view name);

enum class PipelineState : int {
  kStarting,
  kConnecting,
  kWaitingForSlot,
  kStreaming,
  kStopped,
  kWaitingForLease,
};

// Counters read by the HTTP thread; written only by the pipeline's thread.
struct PipelineStats {
  std::atomic<int> state{static_cast<int>(PipelineState::kStarting)};
  std::atomic<uint64_t> records_published{0};
  std::atomic<uint64_t> records_failed{0};
  std::atomic<uint64_t> records_dead_lettered{0};
  std::atomic<uint64_t> transactions{0};
  // Exactly once: Kafka transactions committed, and aborted (by the relay,
  // or by a commit that could not go through); times a newer owner took the
  // slot's output (the lease ran out, or Kafka refused this producer for a
  // newer one); the end LSN of the last checkpoint committed or read back.
  std::atomic<uint64_t> kafka_transactions_committed{0};
  std::atomic<uint64_t> kafka_transactions_aborted{0};
  std::atomic<uint64_t> fenced{0};
  // Group mode: the fencings that the lease running out (or being revoked
  // with a lost assignment) caused, a subset of `fenced`. The rest were
  // Kafka refusing this producer for a newer one.
  std::atomic<uint64_t> lease_lost{0};
  std::atomic<uint64_t> checkpoint_lsn{0};
  std::atomic<bool> checkpoint_known{false};
  std::atomic<uint64_t> received_lsn{0};
  std::atomic<uint64_t> confirmed_lsn{0};
  std::atomic<uint64_t> in_flight_records{0};
  std::atomic<uint64_t> in_flight_bytes{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> slots_recreated{0};
  std::atomic<int64_t> last_loop_unix_ms{0};
  // Written by the slot monitor's thread; -1 until its first answer.
  std::atomic<int64_t> retained_wal_bytes{-1};
  std::atomic<int> wal_status{static_cast<int>(SlotWalStatus::kUnknown)};
  // pg_replication_slots.safe_wal_size: WAL that may still be written before
  // the slot is in danger of being lost; negative once it is past that.
  // kSafeWalUnknown while unread, and when the server reports NULL
  // (max_slot_wal_keep_size = -1, or the slot is lost).
  static constexpr int64_t kSafeWalUnknown = INT64_MIN;
  std::atomic<int64_t> safe_wal_bytes{kSafeWalUnknown};
  // Also the monitor's (pg::SlotFailover): 1 for a failover slot, 0 for
  // another; standbys ready to carry the slot over a promotion. -1 until its
  // first answer, and while the slot is missing.
  std::atomic<int> slot_failover{-1};
  std::atomic<int> failover_ready_standbys{-1};
  // The outbox OID the pipeline streams, set at each connect (0 before);
  // the monitor's publication check raises catalog_alarm, the loop stops.
  std::atomic<uint32_t> outbox_oid{0};
  CatalogAlarm catalog_alarm;
  LastError last_error;
  // When a Kafka broker last answered this process (app::KafkaProbe), Unix
  // ms; 0 before the first answer. Readiness requires a recent one.
  std::atomic<int64_t> kafka_answered_unix_ms{0};
  TopicStatsRegistry topics;
  LatencyHistogram commit_to_ack;
  // Exactly once: from the first commit() of a Kafka transaction to its success.
  LatencyHistogram kafka_commit;
  // Exactly once: from the transaction's commit time on the server to the
  // Kafka commit that made each of its records readable (read_committed).
  LatencyHistogram commit_to_visible;

  void mark_loop_alive() { last_loop_unix_ms = unix_ms_now(); }
  // Longer than the longest wait the loop makes on purpose (the reconnect
  // backoff) plus a slow connection attempt.
  static constexpr std::chrono::milliseconds kLoopStallTimeout{30000};
  bool loop_stalled(std::chrono::system_clock::time_point now) const {
    const int64_t last = last_loop_unix_ms.load();
    const int64_t now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    return last != 0 && now_ms - last >= kLoopStallTimeout.count();
  }
};

}  // namespace relay
