#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "config/config.h"
#include "relay/checkpoint.h"
#include "relay/lease.h"
#include "relay/publisher.h"
#include "relay/record.h"
#include "relay/stats.h"
#include "wal/timeline.h"

namespace pg {
class ReplicationStream;
}
namespace relay {
class SlotCore;
}

namespace driver {

// What the driver does with a failure, decided from its code alone
// (disposition()).
enum class errc {
  retriable = 1,  // reconnect with backoff and resume from the confirmed LSN
  halted,         // the halt policy stopped the relay at a bad row
  fatal,          // configuration, schema or server state that retrying cannot fix
  // Kafka had not acknowledged every record within drain_timeout when the
  // session ended; they stay unconfirmed and are streamed again. Retried
  // like `retriable`; returned by run() when it ends a requested stop.
  unacknowledged,
  // Another producer took the slot's transactional.id (another instance
  // owns the slot now, or two relays are configured on one slot).
  fenced,
};
const std::error_category& error_category();
inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), error_category()};
}

// The driver's reading of an error from the slot core or the replication
// connection.
errc disposition(const common::Error& error);

// What running under a consumer group adds to a pipeline.
struct PipelineOptions {
  // When set, the pipeline streams only while the lease is held, checks it
  // before every record it produces, and fences itself when it runs out.
  const relay::Lease* lease = nullptr;
  // Added to every record, so that ownership is visible in the data.
  std::optional<relay::Header> instance_header;
  std::string application_name = "outbox-relay";
  // Terminate a relay still holding the slot after this long (group mode).
  std::optional<std::chrono::milliseconds> takeover_after;
  // Exactly once: the producer's transactions, and what takes the slot's
  // output before the first connection (fences earlier producers, reads the
  // checkpoint back). Without them, at least once.
  relay::TransactionalPublisher* transactions = nullptr;
  std::function<common::Result<std::optional<relay::Checkpoint>>()> take_output;
  std::string checkpoint_group;  // for messages
  // At least once: where the confirmed position is written after
  // confirming, and what reads it back before the first connection.
  relay::CheckpointSink* checkpoints = nullptr;
};

// The pipeline for one slot: connects, reads the replication stream and
// hands its messages to relay::SlotCore, sends the feedback positions the
// core decides, and reconnects with backoff. Runs on the calling thread.
class Pipeline {
 public:
  Pipeline(const config::Config& cfg, relay::Publisher& publisher, relay::PipelineStats& stats,
           const std::atomic<bool>& stop, int stop_fd, PipelineOptions options = {});
  ~Pipeline();

  // Returns when stopped (ok) or on a failure that retrying cannot fix.
  common::Result<void> run();

 private:
  class Session;
  bool wait_for_lease();
  common::Result<void> connect_and_stream(relay::SlotCore& core, bool& streamed);
  // Exactly once: fences earlier producers and reads the checkpoint, with
  // backoff while Kafka is away. False when stopped or on a failure that
  // retrying cannot fix (`failure` says which).
  bool take_output(relay::SlotCore& core, std::optional<common::Error>& failure);
  std::string lost_slot_message(const relay::Checkpoint& checkpoint) const;
  common::Result<void> check_system(relay::SlotCore& core, uint64_t system_identifier);
  // Whether the checkpoint's positions are in the server's history
  // (wal::judge_position): its timeline an ancestor of the server's, left
  // at or after end_lsn, and end_lsn within the server's WAL.
  common::Result<void> check_history(relay::SlotCore& core, pg::ReplicationStream& stream);
  std::string divergence_message(const relay::Checkpoint& checkpoint,
                                 const pg::ReplicationStream& stream,
                                 const wal::HistoryVerdict& verdict) const;
  // Where the slot last stood as this process knows it, if it streamed
  // before: a slot missing now was lost, and must never be created again
  // silently.
  struct SlotMemory {
    wal::Lsn lsn;
    std::string source;  // how the relay knows, for the message
  };
  std::optional<SlotMemory> slot_memory(const relay::SlotCore& core) const;
  std::string lost_slot_message(const SlotMemory& memory,
                                const pg::ReplicationStream& stream) const;
  bool producer_can_start_over(const common::Error& error) const;
  void maybe_take_over(pg::ReplicationStream& stream);
  bool lease_held() const { return options_.lease == nullptr || options_.lease->held(); }

  const config::Config& cfg_;
  relay::Publisher& publisher_;
  relay::PipelineStats& stats_;
  const std::atomic<bool>& stop_;
  int stop_fd_;
  PipelineOptions options_;
  // Since when the slot has been found held by another backend; reset once
  // streaming.
  std::optional<std::chrono::steady_clock::time_point> slot_busy_since_;
  uint64_t takeover_requests_ = 0;
  bool output_taken_ = false;
  // The server's WAL-safety settings are judged at the first connection.
  bool wal_safety_checked_ = false;
  // Set once this process streamed the slot: at least once keeps no
  // checkpoint, and without this a slot lost to a failover would be created
  // again on the new primary and rows committed in between skipped.
  bool slot_streamed_ = false;
  // At least once: the last checkpoint offered, and when.
  void offer_checkpoint(wal::Lsn confirmed);
  void serve_checkpoints();
  std::optional<uint64_t> system_identifier_;
  // At least once, a checkpoint from another history than the server's
  // (check_history): where the gap would begin if the slot were missing,
  // and why, for lost_slot_message(). Said once.
  struct HistoryNote {
    wal::Lsn gap_from;
    std::string why;
  };
  std::optional<HistoryNote> history_note_;
  wal::Lsn checkpoint_offered_;
  std::chrono::steady_clock::time_point checkpoint_offered_at_{};
};

}  // namespace driver

template <>
struct std::is_error_code_enum<driver::errc> : std::true_type {};
