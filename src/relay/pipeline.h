#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "config/config.h"
#include "relay/catalog_alarm.h"
#include "relay/lease.h"
#include "relay/publisher.h"
#include "relay/record.h"
#include "relay/relation_guard.h"
#include "relay/stats.h"
#include "wal/lsn.h"

namespace wal {
class ReplicationStream;
}

namespace relay {

enum class pipeline_errc {
  retriable = 1,  // reconnect with backoff and resume from the confirmed LSN
  halted,         // the halt policy stopped the relay at a bad row
  fatal,          // configuration, schema or server state that retrying cannot fix
  // Kafka had not acknowledged every record within drain_timeout when the
  // session ended; they stay unconfirmed and are streamed again. Retried
  // like `retriable`; returned by run() when it ends a requested stop.
  unacknowledged,
};
const std::error_category& pipeline_category();
inline std::error_code make_error_code(pipeline_errc e) {
  return {static_cast<int>(e), pipeline_category()};
}

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
  std::atomic<uint64_t> received_lsn{0};
  std::atomic<uint64_t> confirmed_lsn{0};
  std::atomic<uint64_t> in_flight_records{0};
  std::atomic<uint64_t> in_flight_bytes{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> slots_recreated{0};
  std::atomic<int64_t> last_loop_unix_ms{0};
  // Written by the slot monitor's thread; -1 until its first answer.
  std::atomic<int64_t> retained_wal_bytes{-1};
  // The outbox OID the pipeline streams, set at each connect (0 before);
  // the monitor's publication check raises catalog_alarm, the loop stops.
  std::atomic<uint32_t> outbox_oid{0};
  CatalogAlarm catalog_alarm;
  TopicStatsRegistry topics;
  LatencyHistogram commit_to_ack;

  void mark_loop_alive() {
    last_loop_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  }
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

// What running under a consumer group adds to a pipeline.
struct PipelineOptions {
  // When set, the pipeline streams only while the lease is held, checks it
  // before every record it produces, and fences itself when it runs out.
  const Lease* lease = nullptr;
  // Added to every record, so that ownership is visible in the data.
  std::optional<Header> instance_header;
  std::string application_name = "outbox-relay";
  // Terminate a relay still holding the slot after this long (group mode).
  std::optional<std::chrono::milliseconds> takeover_after;
};

// The pipeline for one slot: replication stream → decoder → router → Kafka,
// confirming the watermark back to PostgreSQL. Runs on the calling thread.
class Pipeline {
 public:
  Pipeline(const config::Config& cfg, Publisher& publisher, PipelineStats& stats,
           const std::atomic<bool>& stop, int stop_fd, PipelineOptions options = {});
  ~Pipeline();

  // Returns when stopped (ok) or on a failure that retrying cannot fix.
  common::Result<void> run();

 private:
  class Session;
  bool wait_for_lease();
  void maybe_take_over(wal::ReplicationStream& stream);
  bool lease_held() const { return options_.lease == nullptr || options_.lease->held(); }

  const config::Config& cfg_;
  Publisher& publisher_;
  PipelineStats& stats_;
  const std::atomic<bool>& stop_;
  int stop_fd_;
  PipelineOptions options_;
  uint32_t epoch_ = 0;
  // The acknowledged watermark of the last session, kept across reconnects.
  wal::Lsn acked_;
  // Since when the slot has been found held by another backend; reset once
  // streaming.
  std::optional<std::chrono::steady_clock::time_point> slot_busy_since_;
  uint64_t takeover_requests_ = 0;
  // Which relations of the stream are the outbox; made at each connect.
  std::optional<RelationGuard> guard_;
};

}  // namespace relay

template <>
struct std::is_error_code_enum<relay::pipeline_errc> : std::true_type {};
