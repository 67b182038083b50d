#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "common/result.h"
#include "config/config.h"
#include "driver/checkpoint_offers.h"
#include "driver/errc.h"
#include "pg/replication_stream.h"
#include "relay/checkpoint.h"
#include "relay/lease.h"
#include "relay/publisher.h"
#include "relay/record.h"
#include "relay/relation_guard.h"
#include "relay/resume_policy.h"
#include "relay/stats.h"

namespace relay {
class SlotCore;
}

namespace driver {

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
  bool wait_for_lease();
  common::Result<void> connect_and_stream(relay::SlotCore& core, bool& streamed);
  // Exactly once: fences earlier producers and reads the checkpoint, with
  // backoff while Kafka is away. False when stopped or on a failure that
  // retrying cannot fix (`failure` says which).
  bool take_output(relay::SlotCore& core, std::optional<common::Error>& failure);
  // What the resume policy judges, as the server and the core say it.
  common::Result<relay::ServerFacts> server_facts(pg::ReplicationStream& stream,
                                                  const relay::SlotCore& core);
  relay::SlotRecall recall(const relay::SlotCore& core) const;
  common::Result<void> check_source(const pg::ReplicationStream& stream) const;
  common::Result<relay::RelationGuard> make_guard(const pg::ReplicationStream& stream,
                                                  bool slot_exists) const;
  common::Result<pg::SlotState> take_slot(pg::ReplicationStream& stream, relay::SlotStep step);
  // What a failure to read the catalog or to take the slot means here.
  common::Error prepare_failure(pg::ReplicationStream& stream, const common::Error& error);
  // Applies what the resume policy decided beside the slot step: forgets
  // positions, logs its notes, counts its gaps.
  void apply(const relay::ResumeDecision& decision, relay::SlotCore& core);
  bool producer_can_start_over(const common::Error& error) const;
  void maybe_take_over(pg::ReplicationStream& stream);
  bool lease_held() const { return options_.lease == nullptr || options_.lease->held(); }

  const config::Config& cfg_;
  relay::Publisher& publisher_;
  relay::PipelineStats& stats_;
  const std::atomic<bool>& stop_;
  int stop_fd_;
  PipelineOptions options_;
  relay::ResumePolicy resume_policy_;
  CheckpointOffers checkpoints_;
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
  // The resume policy's notes already logged: it judges every connect
  // afresh, and a reconnect need not say the same again.
  std::set<std::string> said_;
};

}  // namespace driver

