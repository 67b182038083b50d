#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "relay/checkpoint.h"
#include "relay/stats.h"
#include "wal/lsn.h"

namespace driver {

// At least once: each position confirmed to PostgreSQL is offered to the
// slot's relay::CheckpointSink, so that a later start knows the slot existed
// and where it stood. Outlives the sessions of one pipeline.
class CheckpointOffers {
 public:
  // `sink` null: exactly once, or no checkpoint to write.
  CheckpointOffers(relay::CheckpointSink* sink, relay::PipelineStats& stats)
      : sink_(sink), stats_(stats) {}

  // The system the positions are in; nothing is offered before it is known.
  void set_system_identifier(uint64_t system_identifier) {
    system_identifier_ = system_identifier;
  }
  // After a status update confirmed `confirmed`: offered when it moved, and
  // at least hourly when it did not, so that the broker never expires it
  // (offsets.retention.minutes).
  void offer(wal::Lsn confirmed);
  // On every turn of the loop: serves the sink's writes in flight.
  void serve();

 private:
  relay::CheckpointSink* sink_;
  relay::PipelineStats& stats_;
  std::optional<uint64_t> system_identifier_;
  wal::Lsn offered_;
  std::chrono::steady_clock::time_point offered_at_{};
};

}  // namespace driver
