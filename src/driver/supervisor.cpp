#include "driver/supervisor.h"

#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <thread>

#include "kafka/checkpoint_committer.h"
#include "kafka/producer.h"

namespace driver {

std::string InstanceIdentity::describe() const {
  return host + "/" + std::to_string(pid) + "/" + id;
}

InstanceIdentity InstanceIdentity::of_this_process() {
  InstanceIdentity me;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  me.host = host;
  me.pid = static_cast<int>(getpid());
  std::random_device rd;
  char id[17];
  std::snprintf(id, sizeof id, "%08x%08x", rd(), rd());
  me.id = id;
  return me;
}

namespace {

// Group mode, at least once: the member commits the checkpoint, under its
// generation, so that a deposed member's is refused.
class GroupCheckpoints final : public relay::CheckpointSink {
 public:
  GroupCheckpoints(kafka::GroupMember& member, int slot) : member_(member), slot_(slot) {}
  void offer(const relay::Checkpoint& checkpoint) override {
    member_.offer_checkpoint(slot_, checkpoint);
  }
  uint64_t written_lsn() const override { return member_.checkpoint_written(slot_); }

 private:
  kafka::GroupMember& member_;
  int slot_;
};

// What describes a running pipeline; the counters stay.
void clear_running_gauges(relay::PipelineStats& stats) {
  stats.state = static_cast<int>(relay::PipelineState::kStopped);
  stats.in_flight_records = 0;
  stats.in_flight_bytes = 0;
  stats.retained_wal_bytes = -1;
  stats.wal_status = static_cast<int>(relay::SlotWalStatus::kUnknown);
  stats.safe_wal_bytes = relay::PipelineStats::kSafeWalUnknown;
  stats.last_loop_unix_ms = 0;
}

}  // namespace

struct Supervisor::Runner {
  std::atomic<bool> stop{false};
  int stop_fd = -1;
  std::unique_ptr<relay::Publisher> producer;
  kafka::TransactionalProducer* transactional = nullptr;  // exactly once: the same producer
  // At least once: where the confirmed position is written.
  std::unique_ptr<relay::CheckpointSink> checkpoints;
  std::thread thread;
  ~Runner() {
    if (stop_fd >= 0) ::close(stop_fd);
  }
};

kafka::ProducerOptions producer_options(const config::Config& cfg) {
  kafka::ProducerOptions po;
  po.brokers = cfg.kafka.brokers;
  po.properties = cfg.kafka.properties;
  po.max_inflight_messages = cfg.limits.max_inflight_messages;
  po.max_inflight_bytes = cfg.limits.max_inflight_bytes;
  po.client_id = "outbox-relay-" + cfg.postgres.slot;
  return po;
}

kafka::CheckpointPlace checkpoint_place(const config::Config& cfg, const config::Config& slot_cfg,
                                       int index) {
  if (cfg.group) {
    return kafka::group_checkpoint_place(cfg.group->id, cfg.group->coordination_topic, index);
  }
  return kafka::single_slot_checkpoint_place(cfg.kafka.transactional_id_prefix,
                                             slot_cfg.postgres.slot);
}

common::Result<void> Supervisor::make_producer(const config::Config& cfg, int index,
                                               const kafka::ProducerOptions& po, Runner& runner) {
  if (cfg.kafka.delivery == config::DeliveryGuarantee::kAtLeastOnce) {
    auto producer = kafka::Producer::create(po);
    if (!producer) return producer.error();
    runner.producer = std::move(*producer);
    if (cfg_.group) {
      if (member_) runner.checkpoints = std::make_unique<GroupCheckpoints>(*member_, index);
      return {};
    }
    auto committer = kafka::CheckpointCommitter::create(cfg.kafka.brokers, cfg.kafka.properties,
                                                        checkpoint_place(cfg_, cfg, index));
    if (!committer) return committer.error();
    runner.checkpoints = std::move(*committer);
    return {};
  }
  kafka::TransactionalProducerOptions to;
  to.producer = po;
  to.transactional_id =
      kafka::transactional_id_for(cfg.kafka.transactional_id_prefix, cfg.postgres.slot);
  to.transaction_timeout = cfg.kafka.transaction_timeout;
  to.checkpoint = checkpoint_place(cfg_, cfg, index);
  auto producer = kafka::TransactionalProducer::create(to);
  if (!producer) return producer.error();
  // The slot's transactional.id fences a deposed owner: the next owner's
  // init() bumps its epoch. The checkpoint is committed without the member's
  // generation, which every cooperative rebalance moves on, also for slots
  // that stay where they are.
  runner.transactional = producer->get();
  runner.producer = std::move(*producer);
  return {};
}

Supervisor::Supervisor(const config::Config& cfg, const relay::Lease* lease,
                       InstanceIdentity identity)
    : cfg_(cfg), lease_(lease), identity_(std::move(identity)) {
  for (const auto& slot : config::slots_of(cfg))
    slot_configs_.push_back(config::for_slot(cfg, slot));
  stats_ = std::make_unique<relay::PipelineStats[]>(slot_configs_.size());
  runners_.resize(slot_configs_.size());
  ever_assigned_.resize(slot_configs_.size());
}

Supervisor::~Supervisor() {
  stop_all();
}

void Supervisor::on_assigned(const std::vector<int>& slots) {
  for (int index : slots) start(index);
}

void Supervisor::start(int index) {
  std::lock_guard lock(mutex_);
  if (runners_[index]) return;
  const config::Config& cfg = slot_configs_[index];
  auto runner = std::make_unique<Runner>();
  runner->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  kafka::ProducerOptions po = producer_options(cfg);
  // With takeover, PostgreSQL no longer fences a frozen owner: its
  // walsender is terminated while records it had queued before the freeze
  // may still sit in librdkafka. Their delivery timeout is then shorter than
  // the lease, so they expire instead of going out when the process wakes.
  if (cfg_.group && cfg_.group->takeover_after && !po.properties.count("message.timeout.ms") &&
      !po.properties.count("delivery.timeout.ms")) {
    po.properties["message.timeout.ms"] =
        std::to_string(kafka::GroupMember::lease_validity_for(cfg_.group->session_timeout).count());
  }
  // A transactional producer can block in a checkpoint commit for up to
  // socket.timeout.ms while the coordinator is silent; under a lease the
  // pipeline must be back in time to fence itself before it runs out.
  if (cfg_.group && cfg.kafka.delivery == config::DeliveryGuarantee::kExactlyOnce &&
      !po.properties.count("socket.timeout.ms")) {
    const auto lease = kafka::GroupMember::lease_validity_for(cfg_.group->session_timeout);
    po.properties["socket.timeout.ms"] =
        std::to_string(std::clamp<int64_t>(lease.count() / 2, 1000, 2000));
  }
  if (auto made = make_producer(cfg, index, po, *runner); !made) {
    spdlog::error("slot={} stopped: {}", cfg.postgres.slot, made.error().describe());
    std::lock_guard f(failure_mutex_);
    failure_ = made.error();
    return;
  }
  if (cfg_.group) {
    spdlog::info("slot={} assigned to instance={}, starting", cfg.postgres.slot,
                 identity_.describe());
  }
  Runner* r = runner.get();
  relay::PipelineStats& stats = stats_[index];
  stats.state = static_cast<int>(relay::PipelineState::kStarting);
  r->thread = std::thread([this, r, &cfg, &stats, index] {
    auto companion = companion_ ? companion_(cfg, stats) : nullptr;
    PipelineOptions options;
    if (cfg_.group) {
      options.lease = lease_;
      options.instance_header = relay::Header{kInstanceHeader, identity_.describe()};
      options.application_name = "outbox-relay/" + identity_.id;
      options.takeover_after = cfg_.group->takeover_after;
    }
    if (kafka::TransactionalProducer* txn = r->transactional) {
      options.transactions = txn;
      const kafka::CheckpointPlace place = checkpoint_place(cfg_, cfg, index);
      options.checkpoint_group = place.group_id;
      // init_transactions fences every earlier producer of the slot, and
      // completes or aborts what it left open, before the checkpoint is read.
      options.take_output = [txn, &cfg, place]() -> common::Result<std::optional<relay::Checkpoint>> {
        // Bounded, so that a stop is not held up while Kafka is away; a
        // timeout is retried with backoff.
        constexpr std::chrono::milliseconds kTakeTimeout{30000};
        if (auto r = txn->init(kTakeTimeout); !r) return r.error();
        return kafka::read_checkpoint(cfg.kafka.brokers, cfg.kafka.properties, place,
                                      kTakeTimeout);
      };
    }
    if (r->checkpoints) {
      options.checkpoints = r->checkpoints.get();
      const kafka::CheckpointPlace place = checkpoint_place(cfg_, cfg, index);
      options.checkpoint_group = place.group_id;
      options.take_output = [&cfg, place]() -> common::Result<std::optional<relay::Checkpoint>> {
        constexpr std::chrono::milliseconds kReadTimeout{30000};
        return kafka::read_checkpoint(cfg.kafka.brokers, cfg.kafka.properties, place,
                                      kReadTimeout);
      };
    }
    Pipeline pipeline(cfg, *r->producer, stats, r->stop, r->stop_fd, options);
    auto result = pipeline.run();
    // Its last position goes out before the slot is released.
    r->checkpoints.reset();
    companion.reset();
    clear_running_gauges(stats);
    if (!result) stats.last_error.set("stopped: " + result.error().describe());
    if (!result && result.error().code == make_error_code(errc::fenced) && cfg_.group) {
      // Another instance owns the slot's output now: this one just stops it.
      spdlog::warn("slot={} stopped: {}", cfg.postgres.slot, result.error().describe());
    } else if (!result && result.error().code == make_error_code(errc::unacknowledged)) {
      spdlog::warn("slot={} stopped: {}", cfg.postgres.slot, result.error().describe());
      std::lock_guard f(failure_mutex_);
      unacknowledged_ = result.error();
    } else if (!result) {
      spdlog::error("slot={} stopped: {}", cfg.postgres.slot, result.error().describe());
      std::lock_guard f(failure_mutex_);
      if (!failure_) failure_ = result.error();
    }
  });
  runners_[index] = std::move(runner);
  ever_assigned_[index] = true;
}

void Supervisor::signal_stop(Runner& r) {
  r.stop.store(true);
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(r.stop_fd, &one, sizeof one);
}

void Supervisor::join(Runner& r) {
  if (r.thread.joinable()) r.thread.join();
}

void Supervisor::on_revoked(const std::vector<int>& slots, bool lost) {
  std::vector<std::unique_ptr<Runner>> stopping;
  {
    std::lock_guard lock(mutex_);
    for (int index : slots) {
      if (!runners_[index]) continue;
      spdlog::info("slot={} {}, stopping", slot_configs_[index].postgres.slot,
                   lost ? "lost" : "revoked");
      signal_stop(*runners_[index]);
      stopping.push_back(std::move(runners_[index]));
    }
  }
  // In parallel: the longest drain bounds the rebalance, not their sum.
  for (auto& r : stopping) join(*r);
}

void Supervisor::stop_all() {
  {
    std::lock_guard f(failure_mutex_);
    unacknowledged_.reset();
  }
  std::vector<int> all;
  for (size_t i = 0; i < runners_.size(); ++i) all.push_back(static_cast<int>(i));
  on_revoked(all, false);
}

std::optional<common::Error> Supervisor::failure() const {
  std::lock_guard f(failure_mutex_);
  return failure_;
}

std::optional<common::Error> Supervisor::unacknowledged_at_stop() const {
  std::lock_guard f(failure_mutex_);
  return unacknowledged_;
}

std::vector<Supervisor::SlotView> Supervisor::view() const {
  std::lock_guard lock(mutex_);
  std::vector<SlotView> out;
  for (size_t i = 0; i < runners_.size(); ++i) {
    SlotView v;
    v.slot = slot_configs_[i].postgres.slot;
    v.assigned = runners_[i] != nullptr;
    v.ever_assigned = ever_assigned_[i];
    v.stats = &stats_[i];
    if (runners_[i]) v.state = stats_[i].state.load();
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace driver
