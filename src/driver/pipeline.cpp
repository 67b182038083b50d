#include "driver/pipeline.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "driver/session.h"
#include "kafka/txn_errc.h"
#include "pg/wal_safety.h"
#include "relay/errc.h"
#include "relay/router.h"
#include "relay/slot_core.h"

namespace driver {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kSlotHeldAction =
    "another process streams it (pg_stat_replication.application_name says which): this relay "
    "takes it once it is free; stop the other one if it should not run";

relay::ResumeSettings resume_settings(const config::Config& cfg, const PipelineOptions& options) {
  relay::ResumeSettings s;
  s.slot = cfg.postgres.slot;
  s.checkpoint_group = options.checkpoint_group;
  s.on_slot_lost = cfg.postgres.on_slot_lost;
  s.exactly_once = options.transactions != nullptr;
  s.create_slot = cfg.postgres.create_slot;
  return s;
}

pg::ReplicationOptions replication_options(const config::Config& cfg,
                                            const std::string& application_name) {
  const auto& pg = cfg.postgres;
  pg::ReplicationOptions ro;
  ro.application_name = application_name;
  ro.dsn = pg.dsn;
  ro.slot = pg.slot;
  ro.publication = pg.publication;
  ro.table = cfg.outbox.table;
  ro.outbox_table = cfg.outbox.reads_table();
  ro.create_publication = pg.create_publication;
  ro.binary = pg.binary;
  ro.failover_slot = pg.failover_slot;
  return ro;
}

}  // namespace

Pipeline::Pipeline(const config::Config& cfg, relay::Publisher& publisher,
                   relay::PipelineStats& stats, const std::atomic<bool>& stop, int stop_fd,
                   PipelineOptions options)
    : cfg_(cfg),
      publisher_(publisher),
      stats_(stats),
      stop_(stop),
      stop_fd_(stop_fd),
      options_(std::move(options)),
      resume_policy_(resume_settings(cfg, options_)),
      checkpoints_(options_.checkpoints, stats) {}

Pipeline::~Pipeline() = default;

common::Result<void> Pipeline::run() {
  const auto& pg = cfg_.postgres;
  milliseconds backoff = pg.reconnect_backoff_min;
  auto router = relay::Router::create(cfg_.outbox);
  if (!router) return failure(errc::fatal, router.error().describe());
  relay::SlotCoreOptions core_options;
  core_options.lease = options_.lease;
  core_options.instance_header = options_.instance_header;
  core_options.commit_policy.interval = cfg_.kafka.transaction_interval;
  core_options.commit_policy.max_records = cfg_.kafka.transaction_max_records;
  core_options.commit_policy.min_gap = cfg_.kafka.transaction_min_interval;
  // How long an abort may block the loop.
  core_options.transaction_timeout = std::min(cfg_.kafka.transaction_timeout, milliseconds(30000));
  relay::SlotCore core(cfg_, *router, publisher_, stats_, core_options);

  while (!stop_.load()) {
    stats_.mark_loop_alive();
    if (!wait_for_lease()) break;
    if (std::optional<common::Error> failed; !take_output(core, failed)) {
      if (failed) return *failed;
      break;
    }
    bool streamed = false;
    common::Result<void> outcome = connect_and_stream(core, streamed);
    if (streamed) backoff = pg.reconnect_backoff_min;
    if (!outcome.ok() && outcome.error().code == kafka::txn_errc::fenced) core.note_fenced();
    if (outcome.ok()) break;
    errc kind = disposition(outcome.error());
    if (producer_can_start_over(outcome.error()) && !stop_.load()) {
      spdlog::error(
          "slot={} the slot's Kafka producer cannot go on ({}); starting over with a new "
          "one, which takes the slot's output again and resumes from its checkpoint "
          "(confirmed lsn={}); if this repeats, check the brokers' transaction coordinator",
          pg.slot, outcome.error().describe(), core.watermark().to_string());
      if (auto r = options_.transactions->reset(); !r)
        return failure(errc::fatal, r.error().describe());
      output_taken_ = false;
      kind = errc::retriable;
    }
    if (kind != errc::retriable && kind != errc::unacknowledged) {
      return failure(kind, outcome.error().describe());
    }
    if (stop_.load()) {
      // Not a clean stop: say so, so that the exit status does.
      if (kind == errc::unacknowledged) {
        stats_.state = static_cast<int>(relay::PipelineState::kStopped);
        return failure(kind, outcome.error().describe());
      }
      break;
    }

    ++stats_.reconnects;
    stats_.last_error.set(outcome.error().describe());
    // Retried for good: what the error names is what an operator fixes if
    // it repeats; nothing past the confirmed position is lost meanwhile.
    spdlog::warn("slot={} {}; reconnecting in {} ms, resuming from confirmed lsn={}", pg.slot,
                 outcome.error().describe(), backoff.count(), core.watermark().to_string());
    stats_.mark_loop_alive();
    struct pollfd pfd = {stop_fd_, POLLIN, 0};
    ::poll(&pfd, stop_fd_ >= 0 ? 1 : 0, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, pg.reconnect_backoff_max);
  }
  stats_.state = static_cast<int>(relay::PipelineState::kStopped);
  return {};
}

// One connection: connect, gather what the resume policy judges, check the
// catalog, take the slot as decided, start streaming where the core says,
// and stream until the session ends. The slot is created or dropped only
// once the policy, the catalog and the relation guard have passed; a refusal
// creates nothing and confirms nothing. `streamed` says whether it got as
// far as streaming.
common::Result<void> Pipeline::connect_and_stream(relay::SlotCore& core, bool& streamed) {
  const auto& pg = cfg_.postgres;
  stats_.state = static_cast<int>(relay::PipelineState::kConnecting);
  auto connected =
      pg::ReplicationStream::connect(replication_options(cfg_, options_.application_name));
  if (!connected) return failure(errc::retriable, connected.error().describe());
  pg::ReplicationStream& stream = **connected;
  if (!wal_safety_checked_) {
    wal_safety_checked_ = true;
    for (const auto& warning : pg::wal_safety_warnings(stream.wal_safety(), pg.slot)) {
      spdlog::warn("{}", warning);
    }
  }
  auto facts = server_facts(stream, core);
  if (!facts) return facts.error();
  const relay::ResumeDecision decision = resume_policy_.decide(recall(core), *facts);
  if (decision.verdict == relay::ResumeVerdict::kRefuse) {
    return failure(errc::fatal, decision.refusal());
  }
  if (auto r = check_source(stream); !r) return r;
  const bool slot_exists = facts->slot.presence != relay::SlotPresence::kMissing;
  if (auto r = stream.prepare_catalog(slot_exists); !r) return prepare_failure(stream, r.error());
  auto guard = make_guard(stream, slot_exists);
  if (!guard) return failure(errc::fatal, guard.error().describe());
  auto slot = take_slot(stream, decision.slot);
  if (!slot) return slot.error();
  apply(decision, core);
  if (slot->created) {
    spdlog::info("slot={} created replication slot at lsn={}", pg.slot,
                 slot->confirmed_flush.to_string());
  }
  core.set_system_identifier(facts->system_identifier);
  if (facts->timeline) core.set_timeline(*facts->timeline);
  checkpoints_.set_system_identifier(facts->system_identifier);
  stats_.outbox_oid = guard->outbox_oid();
  const wal::Lsn from = core.start_session(slot->confirmed_flush, std::move(*guard));
  if (auto start = stream.start(from, pg.binary); !start) {
    if (start.error().code == pg::replication_errc::slot_in_use) {
      stats_.state = static_cast<int>(relay::PipelineState::kWaitingForSlot);
      spdlog::warn("slot={} waiting for the slot: {}; {}", pg.slot, start.error().describe(),
                   kSlotHeldAction);
    }
    return failure(errc::retriable, start.error().describe());
  }
  spdlog::info("slot={} streaming from lsn={} slot_confirmed={} server_version={}", pg.slot,
               from.to_string(), slot->confirmed_flush.to_string(), stream.server_version());
  stats_.state = static_cast<int>(relay::PipelineState::kStreaming);
  streamed = true;
  slot_streamed_ = true;
  slot_busy_since_.reset();
  takeover_requests_ = 0;
  return Session({cfg_, publisher_, stats_, stop_, stop_fd_, checkpoints_}, stream, core).run();
}

common::Result<relay::ServerFacts> Pipeline::server_facts(pg::ReplicationStream& stream,
                                                          const relay::SlotCore& core) {
  relay::ServerFacts facts;
  facts.system_identifier = stream.system_identifier();
  facts.timeline = stream.timeline_id();
  facts.wal_end = stream.identified_wal_end();
  facts.server_version = stream.server_version();
  if (relay::ResumePolicy::needs_history(core.ledger().last_checkpoint(), facts.timeline)) {
    auto content = stream.timeline_history(*facts.timeline);
    if (!content) return failure(errc::retriable, content.error().describe());
    auto parsed = wal::parse_timeline_history(*content);
    if (!parsed) {
      return failure(errc::fatal, fmt::format("slot={} cannot read the history of timeline {}: {}",
                                              cfg_.postgres.slot, *facts.timeline,
                                              parsed.error().describe()));
    }
    facts.history = std::move(*parsed);
  }
  auto row = stream.read_slot();
  if (!row) return prepare_failure(stream, row.error());
  if (*row) {
    facts.slot.presence =
        (*row)->lost() ? relay::SlotPresence::kLost : relay::SlotPresence::kExists;
    facts.slot.confirmed_flush = (*row)->confirmed_flush;
  }
  return facts;
}

relay::SlotRecall Pipeline::recall(const relay::SlotCore& core) const {
  relay::SlotRecall r;
  r.checkpoint = core.ledger().last_checkpoint();
  if (slot_streamed_) r.delivered = core.watermark();
  return r;
}

common::Result<void> Pipeline::check_source(const pg::ReplicationStream& stream) const {
  if (!cfg_.outbox.reads_messages() || stream.server_version() >= 140000) return {};
  return failure(errc::fatal,
                 fmt::format("slot={} outbox.source: {} needs PostgreSQL 14 or later, whose "
                             "pgoutput sends logical decoding messages; this server is {}",
                             cfg_.postgres.slot, cfg_.outbox.reads_table() ? "both" : "messages",
                             stream.server_version()));
}

common::Result<relay::RelationGuard> Pipeline::make_guard(const pg::ReplicationStream& stream,
                                                          bool slot_exists) const {
  relay::GuardContext context{cfg_.postgres.slot, cfg_.postgres.publication};
  context.scope = stream.publication_scope();
  context.own_publication.name = stream.free_publication_name();
  context.own_publication.create_sql =
      cfg_.outbox.reads_table()
          ? pg::create_publication_sql(context.own_publication.name, stream.outbox())
          : pg::create_empty_publication_sql(context.own_publication.name);
  context.slot_exists = slot_exists;
  return cfg_.outbox.reads_table()
             ? relay::RelationGuard::create(cfg_.outbox, stream.outbox(), std::move(context))
             : relay::RelationGuard::without_table(cfg_.outbox, std::move(context));
}

common::Result<pg::SlotState> Pipeline::take_slot(pg::ReplicationStream& stream,
                                                  relay::SlotStep step) {
  common::Result<pg::SlotState> slot = step == relay::SlotStep::kCreate ? stream.create_slot()
                                       : step == relay::SlotStep::kRecreate
                                           ? stream.recreate_lost_slot()
                                           : stream.use_slot();
  if (!slot) return prepare_failure(stream, slot.error());
  return slot;
}

common::Error Pipeline::prepare_failure(pg::ReplicationStream& stream, const common::Error& error) {
  const std::error_code& code = error.code;
  if (code == pg::replication_errc::slot_in_use) {
    stats_.state = static_cast<int>(relay::PipelineState::kWaitingForSlot);
    spdlog::warn("slot={} waiting for the slot: {}; {}", cfg_.postgres.slot, error.describe(),
                 kSlotHeldAction);
    maybe_take_over(stream);
    return failure(errc::retriable, error.describe());
  }
  // A slot dropped, created or invalidated since it was read: the policy
  // judges it again at the next connect.
  if (code == pg::replication_errc::query_failed || code == pg::replication_errc::slot_missing ||
      code == pg::replication_errc::slot_lost) {
    return failure(errc::retriable, error.describe());
  }
  return failure(errc::fatal, error.describe());
}

void Pipeline::apply(const relay::ResumeDecision& decision, relay::SlotCore& core) {
  if (decision.verdict == relay::ResumeVerdict::kForgetPositions) core.forget_positions();
  using Level = relay::ResumeNote::Level;
  for (const relay::ResumeNote& note : decision.notes) {
    switch (note.level) {
      case Level::kGap:
        ++stats_.slots_recreated;
        spdlog::error("{}", note.text);
        break;
      case Level::kWarning:
        if (said_.insert(note.text).second) spdlog::warn("{}", note.text);
        break;
      case Level::kInfo:
        if (said_.insert(note.text).second) spdlog::info("{}", note.text);
        break;
      case Level::kRefusal:
        break;  // returned as the failure, which the supervisor logs
    }
  }
}

// Exactly once, a producer fenced or failed for good while this instance
// still owns the slot (a Kafka outage longer than transaction_timeout, a
// broker restart that lost the transaction's state) is replaced. Not after a
// lease ran out: then the fencing producer is the slot's new owner.
bool Pipeline::producer_can_start_over(const common::Error& error) const {
  if (!options_.transactions || !lease_held()) return false;
  if (error.code == relay::errc::producer_failed) return true;
  if (error.code.category() != kafka::txn_category()) return false;
  return error.code == kafka::txn_errc::fenced || error.code == kafka::txn_errc::fatal ||
         error.code == kafka::txn_errc::timed_out;
}

bool Pipeline::take_output(relay::SlotCore& core, std::optional<common::Error>& failed) {
  if (!options_.take_output || output_taken_) return true;
  milliseconds backoff = cfg_.postgres.reconnect_backoff_min;
  const std::string what = options_.transactions ? "take the slot's Kafka output"
                                                 : "read the slot's Kafka checkpoint";
  while (!stop_.load()) {
    stats_.mark_loop_alive();
    auto checkpoint = options_.take_output();
    if (checkpoint) {
      if (*checkpoint) core.restore(**checkpoint);
      output_taken_ = true;
      spdlog::info("slot={} {}; checkpoint {}", cfg_.postgres.slot,
                   options_.transactions ? "took the slot's Kafka output (exactly once)"
                                         : "read the slot's Kafka checkpoint (at least once)",
                   *checkpoint ? "lsn=" + (*checkpoint)->end_lsn.to_string() +
                                     ((*checkpoint)->last_row
                                          ? " last_row=" + std::to_string(*(*checkpoint)->last_row)
                                          : "")
                               : std::string("none yet (first start)"));
      return true;
    }
    if (const errc kind = disposition(checkpoint.error());
        kind != errc::retriable && checkpoint.error().code != kafka::txn_errc::timed_out) {
      failed = failure(
          kind, "slot=" + cfg_.postgres.slot +
                    " cannot " + what + ": " + checkpoint.error().describe());
      return false;
    }
    stats_.last_error.set("cannot " + what + " yet: " + checkpoint.error().describe());
    spdlog::warn(
        "slot={} cannot {} yet: {}; retrying in {} ms (nothing streams until Kafka answers: "
        "check the brokers and the network path)",
        cfg_.postgres.slot, what, checkpoint.error().describe(), backoff.count());
    struct pollfd pfd = {stop_fd_, POLLIN, 0};
    ::poll(&pfd, stop_fd_ >= 0 ? 1 : 0, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, cfg_.postgres.reconnect_backoff_max);
  }
  return false;
}

// Without the lease the slot may already belong to another instance: wait,
// connected to nothing, until the membership proves itself again or the
// pipeline is stopped. False when stopped.
bool Pipeline::wait_for_lease() {
  if (lease_held()) return true;
  stats_.state = static_cast<int>(relay::PipelineState::kWaitingForLease);
  spdlog::info("slot={} waiting for proof of group membership before streaming",
               cfg_.postgres.slot);
  while (!stop_.load() && !lease_held()) {
    stats_.mark_loop_alive();
    struct pollfd pfd = {stop_fd_, POLLIN, 0};
    ::poll(&pfd, stop_fd_ >= 0 ? 1 : 0, 50);
  }
  return !stop_.load();
}

// A previous owner that froze with its connection open keeps the slot until
// wal_sender_timeout; past takeover_after its walsender is terminated, if it
// is a relay's. By then that relay's lease has long run out, so it can no
// longer produce when it wakes.
void Pipeline::maybe_take_over(pg::ReplicationStream& stream) {
  if (!options_.takeover_after) return;
  const auto now = Clock::now();
  if (!slot_busy_since_) slot_busy_since_ = now;
  if (now - *slot_busy_since_ < *options_.takeover_after) return;
  // Asked again on every attempt until the slot is free: a walsender whose
  // client is frozen can be stuck writing to it and end only on a later
  // request.
  auto killed = stream.terminate_relay_holder("outbox-relay");
  if (!killed) {
    spdlog::warn(
        "slot={} cannot take over the slot: {}; its holder keeps it until wal_sender_timeout "
        "(or pg_terminate_backend on pg_replication_slots.active_pid)",
        cfg_.postgres.slot, killed.error().describe());
  } else if (*killed && takeover_requests_++ % 10 == 0) {
    spdlog::warn("slot={} taking over the slot: terminating relay backend pid={} after {} ms",
                 cfg_.postgres.slot, **killed,
                 std::chrono::duration_cast<milliseconds>(now - *slot_busy_since_).count());
  }
}

}  // namespace driver
