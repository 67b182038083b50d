#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "kafka/group_member.h"
#include "driver/pipeline.h"
#include "kafka/checkpoint_store.h"
#include "kafka/producer.h"
#include "kafka/transactional_producer.h"
#include "relay/lease.h"
#include "relay/stats.h"

namespace driver {

// Who this process is, in logs, record headers and commit metadata.
struct InstanceIdentity {
  std::string host;
  int pid = 0;
  std::string id;  // random per process start

  // "host/pid/id"
  std::string describe() const;
  static InstanceIdentity of_this_process();
};

inline constexpr const char* kInstanceHeader = "outbox-relay-instance";

// The producer settings of one slot, from the configuration: the one place
// they are derived.
kafka::ProducerOptions producer_options(const config::Config& slot_cfg);

// Where slot `index` keeps its checkpoint: the coordination group's offsets
// in group mode, a group of its own without one.
kafka::CheckpointPlace checkpoint_place(const config::Config& cfg, const config::Config& slot_cfg,
                                        int index);

// Starts and stops one pipeline thread per slot as the group assigns and
// revokes them; without a group, the one slot is assigned for good at start. Each slot has its own producer, so that its delivery reports,
// in-flight bounds and purge on fencing concern that slot alone. Each slot's
// stats live as long as the supervisor, so that its counters keep counting
// across a revocation and a later assignment.
class Supervisor final : public kafka::GroupListener {
 public:
  // `lease` is the group membership's; null without a group.
  Supervisor(const config::Config& cfg, const relay::Lease* lease, InstanceIdentity identity);
  ~Supervisor() override;

  // Something that runs beside a slot's pipeline (the retained-WAL monitor):
  // made on the pipeline's thread before it starts, destroyed there once it
  // has stopped. Set before the first assignment.
  using Companion =
      std::function<std::shared_ptr<void>(const config::Config& slot, relay::PipelineStats& stats)>;
  void set_companion(Companion companion) { companion_ = std::move(companion); }
  // Group mode, at least once: the member that commits the slots'
  // checkpoints under its generation. Set before the first assignment.
  void set_group_member(kafka::GroupMember* member) { member_ = member; }


  void on_assigned(const std::vector<int>& slots) override;
  void on_revoked(const std::vector<int>& slots, bool lost) override;
  // Stops every pipeline, in parallel; each drains and confirms first.
  void stop_all();

  // A pipeline ended on a failure retrying cannot fix (halt, fatal).
  std::optional<common::Error> failure() const;
  // Since the last stop_all() began: a slot stopped with records Kafka had
  // not acknowledged within drain_timeout (not a failure: they stay
  // unconfirmed, and whoever streams the slot next sends them).
  std::optional<common::Error> unacknowledged_at_stop() const;

  struct SlotView {
    std::string slot;
    bool assigned = false;
    bool ever_assigned = false;  // since this process started
    int state = static_cast<int>(relay::PipelineState::kStopped);
    const relay::PipelineStats* stats = nullptr;  // lives as long as the supervisor
  };
  std::vector<SlotView> view() const;
  // The stats of slot `index`; they live as long as the supervisor.
  relay::PipelineStats& stats(int index) { return stats_[index]; }

 private:
  struct Runner;
  void start(int index);
  common::Result<void> make_producer(const config::Config& cfg, int index,
                                     const kafka::ProducerOptions& po, Runner& runner);
  void signal_stop(Runner& r);
  void join(Runner& r);

  const config::Config& cfg_;
  const relay::Lease* lease_;
  InstanceIdentity identity_;
  std::vector<config::Config> slot_configs_;
  std::unique_ptr<relay::PipelineStats[]> stats_;  // by slot index
  Companion companion_;
  kafka::GroupMember* member_ = nullptr;
  std::vector<std::unique_ptr<Runner>> runners_;  // by slot index; null when not assigned
  std::vector<bool> ever_assigned_;               // by slot index
  mutable std::mutex mutex_;  // guards runners_ and ever_assigned_ against view()
  mutable std::mutex failure_mutex_;
  std::optional<common::Error> failure_;
  std::optional<common::Error> unacknowledged_;
};

}  // namespace driver
