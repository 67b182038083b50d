#include "driver/pipeline.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "kafka/txn_errc.h"
#include "relay/errc.h"
#include "relay/router.h"
#include "relay/slot_core.h"
#include "wal/copy_protocol.h"
#include "wal/pgoutput.h"
#include "pg/replication_stream.h"
#include "pg/wal_safety.h"

namespace driver {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct Category : std::error_category {
  const char* name() const noexcept override { return "driver"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::retriable:
        return "retriable failure";
      case errc::halted:
        return "halted at a bad row";
      case errc::fatal:
        return "fatal failure";
      case errc::unacknowledged:
        return "records left unacknowledged";
      case errc::fenced:
        return "fenced by a newer producer of the slot";
    }
    return "unknown driver error";
  }
};

common::Error failure(errc code, std::string message) {
  return common::Error{make_error_code(code), std::move(message)};
}

// Messages read from the socket before serving delivery reports again, so
// that acknowledgements (and with them, feedback) never starve under load.
constexpr int kReadBudget = 4096;
// How long a fenced session still waits for acknowledgements before it
// releases the slot.
constexpr milliseconds kFencedDrain{300};
constexpr milliseconds kFencedPurgeWait{200};
constexpr milliseconds kPurgeWait{5000};
constexpr const char* kSlotHeldAction =
    "another process streams it (pg_stat_replication.application_name says which): this relay "
    "takes it once it is free; stop the other one if it should not run";

}  // namespace

const std::error_category& error_category() {
  static Category c;
  return c;
}

errc disposition(const common::Error& error) {
  if (error.code.category() == error_category()) return static_cast<errc>(error.code.value());
  if (error.code.category() == kafka::txn_category()) {
    // The transaction was aborted: replay from the checkpoint.
    if (kafka::is_aborted(error.code)) return errc::retriable;
    if (error.code == kafka::txn_errc::fenced) return errc::fenced;
    // A commit whose outcome is unknown leaves the producer unusable; so do
    // fatal, unauthorized and configuration errors. A restart resolves the
    // first from the checkpoint; the others need an operator.
    return errc::fatal;
  }
  if (error.code.category() == relay::error_category()) {
    switch (static_cast<relay::errc>(error.code.value())) {
      case relay::errc::halted:
        return errc::halted;
      case relay::errc::unacknowledged:
        return errc::unacknowledged;
      // The mapping or the server's stream is not what the relay can read:
      // reconnecting would meet it again.
      case relay::errc::invalid_mapping:
      case relay::errc::invalid_config:
      case relay::errc::unmapped_relation:
      case relay::errc::unknown_relation:
      case relay::errc::unsupported_message:
      case relay::errc::producer_failed:
        return errc::fatal;
      default:
        // A value or message the relay could not read is read again from the
        // confirmed position after a reconnect; skipping it could lose a row.
        return errc::retriable;
    }
  }
  // The publication vanished under the slot: reconnecting would skip what it
  // should have carried.
  if (error.code == pg::replication_errc::publication_missing) return errc::fatal;
  return errc::retriable;
}

// One connection's worth of streaming: moves bytes between the replication
// connection and the slot core, and sends the feedback the core decides.
class Pipeline::Session {
 public:
  Session(Pipeline& p, pg::ReplicationStream& stream, relay::SlotCore& core)
      : p_(p), cfg_(p.cfg_), stream_(stream), core_(core), decoder_(1) {}

  common::Result<void> run();

 private:
  common::Result<void> turn();
  common::Result<void> handle_copy_data(std::string_view data);
  common::Result<void> send_feedback(bool force, bool ask_reply = false);
  common::Result<void> check_receive_timeout();
  common::Result<void> wait_for_io(bool read_socket, milliseconds timeout);
  common::Result<void> finish(common::Result<void> result);

  Pipeline& p_;
  const config::Config& cfg_;
  pg::ReplicationStream& stream_;
  relay::SlotCore& core_;
  wal::PgOutputDecoder decoder_;
  wal::Lsn received_;
  bool output_pending_ = false;
  // When the server last sent anything, and whether it has been asked for a
  // reply since.
  Clock::time_point last_received_at_ = Clock::now();
  bool reply_asked_ = false;
  // Ended by postgres.receive_timeout: nothing sent now would arrive.
  bool path_dead_ = false;
};

Pipeline::Pipeline(const config::Config& cfg, relay::Publisher& publisher,
                   relay::PipelineStats& stats, const std::atomic<bool>& stop, int stop_fd,
                   PipelineOptions options)
    : cfg_(cfg),
      publisher_(publisher),
      stats_(stats),
      stop_(stop),
      stop_fd_(stop_fd),
      options_(std::move(options)) {}

Pipeline::~Pipeline() = default;

namespace {

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
  ro.create_slot = pg.create_slot;
  ro.create_publication = pg.create_publication;
  ro.binary = pg.binary;
  ro.recreate_lost_slot = pg.on_slot_lost == config::SlotLostPolicy::kRecreate;
  ro.failover_slot = pg.failover_slot;
  return ro;
}

void log_slot_prepared(const config::Config& cfg, const pg::SlotState& slot,
                       relay::PipelineStats& stats) {
  if (slot.recreated_after) {
    ++stats.slots_recreated;
    spdlog::error(
        "slot={} lost_confirmed_lsn={} the slot had been invalidated (wal_status=lost) and "
        "was dropped and created again (on_slot_lost: recreate): rows committed after the "
        "lost slot's confirmed position and before now were NOT published; compare the "
        "outbox with Kafka from that position",
        cfg.postgres.slot, slot.recreated_after->to_string());
  } else if (slot.created) {
    spdlog::info("slot={} created replication slot", cfg.postgres.slot);
  }
}

}  // namespace

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

// One connection: connect, check the slot and the catalog, start streaming
// where the core says, and stream until the session ends. `streamed` says
// whether it got as far as streaming.
common::Result<void> Pipeline::connect_and_stream(relay::SlotCore& core, bool& streamed) {
  const auto& pg = cfg_.postgres;
  stats_.state = static_cast<int>(relay::PipelineState::kConnecting);
  std::optional<SlotMemory> memory = slot_memory(core);
  pg::ReplicationOptions ro = replication_options(cfg_, options_.application_name);
  // If it is gone, creating it again would skip every row committed since,
  // silently.
  if (memory && pg.on_slot_lost != config::SlotLostPolicy::kRecreate) ro.create_slot = false;
  auto stream = pg::ReplicationStream::connect(ro);
  if (!stream) return failure(errc::retriable, stream.error().describe());
  if (!wal_safety_checked_) {
    wal_safety_checked_ = true;
    for (const auto& warning : pg::wal_safety_warnings((*stream)->wal_safety(), pg.slot)) {
      spdlog::warn("{}", warning);
    }
  }
  // Checked before the slot is looked at (or created): a slot of this name
  // on another system is not the one the checkpoint is about.
  if (auto foreign = check_system(core, (*stream)->system_identifier()); !foreign) {
    return foreign.error();
  }
  core.set_system_identifier((*stream)->system_identifier());
  system_identifier_ = (*stream)->system_identifier();
  // Also before the slot: a slot of this name on another history does not
  // hold the rows the checkpoint's positions name.
  if (auto diverged = check_history(core, **stream); !diverged) return diverged.error();
  if (const auto tli = (*stream)->timeline_id()) core.set_timeline(*tli);
  // What the checks forgot or corrected is no memory of this slot.
  memory = slot_memory(core);
  if (cfg_.outbox.reads_messages() && (*stream)->server_version() < 140000) {
    return failure(errc::fatal,
                   fmt::format("slot={} outbox.source: {} needs PostgreSQL 14 or later, whose "
                               "pgoutput sends logical decoding messages; this server is {}",
                               pg.slot, cfg_.outbox.reads_table() ? "both" : "messages",
                               (*stream)->server_version()));
  }
  auto slot = (*stream)->prepare();
  if (!slot) {
    const auto& code = slot.error().code;
    if (code == pg::replication_errc::slot_in_use) {
      stats_.state = static_cast<int>(relay::PipelineState::kWaitingForSlot);
      spdlog::warn("slot={} waiting for the slot: {}; {}", pg.slot, slot.error().describe(),
                   kSlotHeldAction);
      maybe_take_over(**stream);
      return failure(errc::retriable, slot.error().describe());
    }
    if (code == pg::replication_errc::query_failed) {
      return failure(errc::retriable, slot.error().describe());
    }
    if (code == pg::replication_errc::slot_missing && memory) {
      return failure(errc::fatal, lost_slot_message(*memory, **stream));
    }
    return failure(errc::fatal, slot.error().describe());
  }
  log_slot_prepared(cfg_, *slot, stats_);
  if (slot->created && memory) {
    ++stats_.slots_recreated;
    spdlog::error(
        "{} (on_slot_lost: recreate: created again at lsn={}; rows committed between "
        "the two positions were NOT published)",
        lost_slot_message(*memory, **stream), slot->confirmed_flush.to_string());
  }
  const relay::GuardContext guard_context{pg.slot, pg.publication};
  auto guard = cfg_.outbox.reads_table()
                   ? relay::RelationGuard::create(cfg_.outbox, (*stream)->outbox(), guard_context)
                   : relay::RelationGuard::without_table(cfg_.outbox, guard_context);
  if (!guard) return failure(errc::fatal, guard.error().describe());
  stats_.outbox_oid = guard->outbox_oid();
  const wal::Lsn from = core.start_session(slot->confirmed_flush, std::move(*guard));
  if (auto start = (*stream)->start(from, pg.binary, true); !start) {
    if (start.error().code == pg::replication_errc::slot_in_use) {
      stats_.state = static_cast<int>(relay::PipelineState::kWaitingForSlot);
      spdlog::warn("slot={} waiting for the slot: {}; {}", pg.slot, start.error().describe(),
                   kSlotHeldAction);
    }
    return failure(errc::retriable, start.error().describe());
  }
  spdlog::info("slot={} streaming from lsn={} slot_confirmed={} server_version={}", pg.slot,
               from.to_string(), slot->confirmed_flush.to_string(), (*stream)->server_version());
  stats_.state = static_cast<int>(relay::PipelineState::kStreaming);
  streamed = true;
  slot_streamed_ = true;
  slot_busy_since_.reset();
  takeover_requests_ = 0;
  return Session(*this, **stream, core).run();
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

// The latest checkpoint Kafka committed, this process's own included, is
// where the slot stood; without one (at least once), what this process had
// delivered of it when it streamed it.
std::optional<Pipeline::SlotMemory> Pipeline::slot_memory(const relay::SlotCore& core) const {
  std::optional<SlotMemory> memory;
  if (const auto& checkpoint = core.ledger().last_checkpoint()) {
    memory = SlotMemory{checkpoint->end_lsn,
                        "Kafka holds its checkpoint at lsn=" + checkpoint->end_lsn.to_string() +
                            " (group " + options_.checkpoint_group + ")"};
  }
  if (memory && history_note_) {
    memory = SlotMemory{history_note_->gap_from,
                        "Kafka holds its checkpoint at lsn=" + memory->lsn.to_string() +
                            " (group " + options_.checkpoint_group + "), " + history_note_->why +
                            ": the gap starts at or before lsn=" +
                            history_note_->gap_from.to_string()};
  }
  if (!slot_streamed_) return memory;
  // At least once, the checkpoint read at start trails what this process
  // delivered since.
  const wal::Lsn delivered = core.watermark();
  if (memory && memory->lsn >= delivered) return memory;
  return SlotMemory{delivered, "this process streamed it and had delivered everything up to lsn=" +
                                   delivered.to_string()};
}

// At least once, the position just confirmed is written as the slot's
// checkpoint when it moved, and at least hourly when it did not, so that
// the broker never expires it (offsets.retention.minutes).
void Pipeline::offer_checkpoint(wal::Lsn confirmed) {
  constexpr std::chrono::hours kRefresh{1};
  if (!options_.checkpoints || !system_identifier_ || confirmed.value() == 0) return;
  const auto now = Clock::now();
  if (confirmed == checkpoint_offered_ && now - checkpoint_offered_at_ < kRefresh) return;
  options_.checkpoints->offer(relay::Checkpoint{confirmed, std::nullopt, system_identifier_});
  checkpoint_offered_ = confirmed;
  checkpoint_offered_at_ = now;
}

void Pipeline::serve_checkpoints() {
  if (!options_.checkpoints) return;
  options_.checkpoints->serve();
  if (const uint64_t written = options_.checkpoints->written_lsn(); written != 0) {
    stats_.checkpoint_lsn = written;
    stats_.checkpoint_known = true;
  }
}

// The slot is gone though it streamed before: it was dropped, or a failover
// promoted a server that did not have it. Rows committed from the slot's last
// known position to the server's WAL end were never streamed from it.
std::string Pipeline::lost_slot_message(const SlotMemory& memory,
                                        const pg::ReplicationStream& stream) const {
  const int version = stream.server_version();
  const std::string failover =
      version < 170000
          ? fmt::format("PostgreSQL {} has no failover slots (they arrived in 17), so a promoted "
                        "standby never has it",
                        version / 10000)
          : std::string("a promoted standby has it only if it synchronized it (failover_slot, "
                        "sync_replication_slots and synchronized_standby_slots)");
  return fmt::format(
      "slot={} does not exist, but {}: the slot was dropped, or a failover promoted a server "
      "without it ({}; this server is on timeline {}), and rows committed after that position "
      "were never streamed: the gap runs from lsn={} to at least lsn={}, the server's WAL end; "
      "compare the outbox with Kafka from lsn={}, then create the slot by hand or set "
      "postgres.on_slot_lost: recreate to start again from the current position",
      cfg_.postgres.slot, memory.source, failover,
      stream.timeline().empty() ? "?" : stream.timeline(), memory.lsn.to_string(),
      stream.identified_wal_end().to_string(), memory.lsn.to_string());
}

// The checkpoint was written against another system than the server
// connected to: a fresh initdb, a cluster restored from a dump, a failover
// to a server that is not a physical copy. Its positions mean nothing in
// this server's WAL, and the rows committed there after it were never
// streamed: a lost slot.
common::Result<void> Pipeline::check_system(relay::SlotCore& core, uint64_t system_identifier) {
  const std::optional<relay::Checkpoint>& checkpoint = core.ledger().last_checkpoint();
  if (!checkpoint || !checkpoint->system_identifier ||
      *checkpoint->system_identifier == system_identifier) {
    return {};
  }
  const std::string message = fmt::format(
      "slot={}: the server is PostgreSQL system identifier {}, but Kafka holds the slot's "
      "checkpoint at lsn={} (group {}) from system identifier {}: the relay is pointed at "
      "another cluster (a new initdb, a restore from a dump, or a failover to a server that is "
      "not a physical copy), and rows committed on system {} after lsn={} were never streamed; "
      "compare the outbox with Kafka from that position",
      cfg_.postgres.slot, system_identifier, checkpoint->end_lsn.to_string(),
      options_.checkpoint_group, *checkpoint->system_identifier, *checkpoint->system_identifier,
      checkpoint->end_lsn.to_string());
  if (cfg_.postgres.on_slot_lost != config::SlotLostPolicy::kRecreate) {
    return failure(errc::fatal,
                   message + ", then point the relay back at system identifier " +
                       std::to_string(*checkpoint->system_identifier) +
                       ", or set postgres.on_slot_lost: recreate to stream this system's slot "
                       "from its own position");
  }
  ++stats_.slots_recreated;
  spdlog::error(
      "{} (on_slot_lost: recreate: streaming system identifier {} from the slot's own position; "
      "the rows after the checkpoint were NOT published)",
      message, system_identifier);
  core.forget_positions();
  return {};
}

// The same system identifier does not make the same history: a
// point-in-time recovery, a standby promoted before it had replayed what
// the relay read on the old primary, a file-system snapshot restored. Each
// writes other WAL at positions the checkpoint names. Exactly once, the
// relay would skip the rows there as already delivered; so it refuses, as
// for a lost slot, unless on_slot_lost: recreate says to start from the
// slot's own position. At least once the checkpoint is never a position to
// resume from, and nothing is skipped because of it; it only must not make
// lost_slot_message() claim a gap that starts after the fork.
common::Result<void> Pipeline::check_history(relay::SlotCore& core,
                                             pg::ReplicationStream& stream) {
  const std::optional<relay::Checkpoint>& checkpoint = core.ledger().last_checkpoint();
  const std::optional<wal::TimelineId> server_tli = stream.timeline_id();
  if (!checkpoint || !server_tli) return {};
  // A checkpoint that does not record its timeline is judged against the
  // server's WAL end alone.
  const wal::TimelineId recorded_tli = checkpoint->timeline.value_or(*server_tli);
  std::vector<wal::TimelineSwitch> history;
  if (recorded_tli != *server_tli && *server_tli > 1) {
    auto content = stream.timeline_history(*server_tli);
    if (!content) return failure(errc::retriable, content.error().describe());
    auto parsed = wal::parse_timeline_history(*content);
    if (!parsed) {
      return failure(errc::fatal, fmt::format("slot={} cannot read the history of timeline {}: {}",
                                              cfg_.postgres.slot, *server_tli,
                                              parsed.error().describe()));
    }
    history = std::move(*parsed);
  }
  const wal::HistoryVerdict verdict = wal::judge_position(
      checkpoint->end_lsn, recorded_tli, *server_tli, stream.identified_wal_end(), history);
  if (verdict.same_history()) {
    if (recorded_tli != *server_tli) {
      spdlog::info(
          "slot={} the checkpoint at lsn={} was taken on timeline {}; this server is on timeline "
          "{}, whose history left timeline {} at lsn={}, after the checkpoint: a failover that "
          "kept every position the checkpoint names",
          cfg_.postgres.slot, checkpoint->end_lsn.to_string(), recorded_tli, *server_tli,
          recorded_tli, verdict.switchpoint->to_string());
    }
    return {};
  }
  const std::string message = divergence_message(*checkpoint, stream, verdict);
  if (!options_.transactions) {
    const wal::Lsn gap_from =
        std::min(checkpoint->end_lsn, verdict.switchpoint.value_or(stream.identified_wal_end()));
    if (!history_note_) {
      spdlog::warn(
          "{}; at least once the slot's own position decides where streaming starts, so nothing "
          "is skipped because of it, and the next checkpoint written replaces it",
          message);
    }
    history_note_ = HistoryNote{
        gap_from, fmt::format("a checkpoint from another history than this server's ({})",
                              wal::to_string(*verdict.divergence))};
    return {};
  }
  if (cfg_.postgres.on_slot_lost != config::SlotLostPolicy::kRecreate) {
    return failure(errc::fatal,
                   message + "; then set postgres.on_slot_lost: recreate to stream this server's "
                             "slot from its own position, or point the relay back at the server "
                             "whose history the checkpoint is in");
  }
  ++stats_.slots_recreated;
  spdlog::error(
      "{} (on_slot_lost: recreate: forgetting the checkpoint and streaming timeline {} from the "
      "slot's own position; rows of this history before that position that are not in Kafka were "
      "NOT published)",
      message, *server_tli);
  core.forget_positions();
  return {};
}

std::string Pipeline::divergence_message(const relay::Checkpoint& checkpoint,
                                         const pg::ReplicationStream& stream,
                                         const wal::HistoryVerdict& verdict) const {
  const std::string tli = checkpoint.timeline ? std::to_string(*checkpoint.timeline) : "?";
  const std::string at = checkpoint.end_lsn.to_string();
  const std::string head = fmt::format(
      "slot={}: Kafka holds the slot's checkpoint at lsn={} (group {}) taken on timeline {}, and "
      "this server (system identifier {}) is on timeline {} with its WAL ending at lsn={}",
      cfg_.postgres.slot, at, options_.checkpoint_group, tli, stream.system_identifier(),
      stream.timeline(), stream.identified_wal_end().to_string());
  switch (*verdict.divergence) {
    case wal::Divergence::kBeyondSwitchPoint:
      return fmt::format(
          "{}: its history left timeline {} at lsn={} (the switch point), before the "
          "checkpoint, so from lsn={} to lsn={} the two histories hold different WAL (a "
          "point-in-time recovery, or a standby promoted before it had replayed what the relay "
          "read); rows this server committed between lsn={} and lsn={} would be skipped as "
          "already delivered, and the records Kafka holds from that range are not in this "
          "server's outbox; compare the outbox with Kafka from lsn={}",
          head, tli, verdict.switchpoint->to_string(), verdict.switchpoint->to_string(), at,
          verdict.switchpoint->to_string(), at, verdict.switchpoint->to_string());
    case wal::Divergence::kNotAncestor:
      return fmt::format(
          "{}: timeline {} is not in this server's history (a restore of a backup taken before "
          "it began, or another standby promoted on its own), so the checkpoint's positions name "
          "other WAL here; rows this server committed after the histories parted and up to "
          "lsn={} would be skipped as already delivered; compare the outbox with Kafka from "
          "where the histories parted (pg_wal/{:08X}.history on each server)",
          head, tli, at, stream.timeline_id().value_or(0));
    case wal::Divergence::kBeyondWalEnd:
      return fmt::format(
          "{}: the checkpoint is beyond the server's WAL end, so this server never wrote that "
          "position and its history is not the one the checkpoint was taken on (a file-system "
          "snapshot or an older backup restored); rows it commits up to lsn={} would be skipped "
          "as already delivered, and the records Kafka holds after the point the histories "
          "parted are not in this server's outbox; compare the outbox with Kafka from before "
          "lsn={}",
          head, at, stream.identified_wal_end().to_string());
  }
  return head;
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

common::Result<void> Pipeline::Session::run() {
  common::Result<void> result;
  while (result.ok()) {
    p_.stats_.mark_loop_alive();
    if (!core_.lease_held()) {
      result = core_.fence("lease expired");
      break;
    }
    if (p_.stop_.load()) break;
    result = turn();
  }
  return finish(std::move(result));
}

// One turn of the loop: serve Kafka, read what the socket has (within the
// read budget and the in-flight bounds), send feedback when due, then sleep
// until the socket, Kafka or the next feedback deadline wakes us.
common::Result<void> Pipeline::Session::turn() {
  if (auto r = core_.serve(milliseconds(0)); !r) return r;
  if (auto alarm = p_.stats_.catalog_alarm.take()) return failure(errc::fatal, *alarm);
  int read = 0;
  bool socket_drained = false;
  while (!core_.backpressured() && read < kReadBudget) {
    auto msg = stream_.read();
    if (!msg) return msg.error();
    if (!*msg) {
      socket_drained = true;
      break;
    }
    ++read;
    if (auto r = handle_copy_data((*msg)->view()); !r) return r;
  }
  if (auto r = core_.maybe_commit(Clock::now(), socket_drained); !r) return r;
  if (auto r = send_feedback(false); !r) return r;
  if (auto r = check_receive_timeout(); !r) return r;
  p_.stats_.in_flight_records = p_.publisher_.in_flight();
  p_.stats_.in_flight_bytes = p_.publisher_.in_flight_bytes();
  p_.serve_checkpoints();

  // Keep going at once while the socket has more.
  if (read == kReadBudget && !core_.backpressured()) return {};
  auto since = Clock::now() - core_.ledger().last_feedback_at();
  auto next_status =
      std::chrono::duration_cast<milliseconds>(cfg_.postgres.status_interval - since);
  milliseconds timeout = std::clamp(next_status, milliseconds(1), milliseconds(100));
  if (auto commit_at = core_.commit_deadline()) {
    const auto until = std::chrono::duration_cast<milliseconds>(*commit_at - Clock::now());
    timeout = std::clamp(until, milliseconds(1), timeout);
  }
  return wait_for_io(socket_drained && !core_.backpressured(), timeout);
}

// Stopping or restarting: serve what Kafka still owes us so the final status
// update confirms as much as was really delivered.
common::Result<void> Pipeline::Session::finish(common::Result<void> result) {
  const bool halted = !result.ok() && disposition(result.error()) == errc::halted;
  // Stopped because the assignment was lost: records not yet sent must not
  // go out now that another instance may own the slot.
  if (result.ok() && !core_.lease_held()) result = core_.fence("stopped without the lease");
  // Exactly once: a clean stop commits what was read; anything else aborts,
  // and the next owner replays it from the checkpoint.
  if (result.ok()) {
    if (auto r = core_.commit_at_stop(cfg_.kafka.drain_timeout); !r) result = r;
  }
  // Never left open: the broker would hold read_committed consumers back
  // until transaction_timeout.
  core_.abort_transaction(std::max(cfg_.kafka.drain_timeout, milliseconds(1000)));
  // Once fenced, the slot is released promptly rather than held for acks:
  // the next owner redelivers whatever was not confirmed.
  auto drained = core_.fenced() ? core_.drain(kFencedDrain, kFencedPurgeWait)
                                : core_.drain(cfg_.kafka.drain_timeout, kPurgeWait);
  // On a dead path (postgres.receive_timeout) the final status update and the
  // CopyDone handshake would only hold the reconnect back, by kCopyDoneWait or
  // until TCP gives up; the slot keeps the position last confirmed.
  if (!path_dead_) {
    if (auto r = send_feedback(true); r.ok()) {
      for (int i = 0; i < 50; ++i) {
        auto f = stream_.flush();
        if (!f || *f) break;
        std::this_thread::sleep_for(milliseconds(10));
      }
    }
  }
  spdlog::info("slot={} {} with confirmed lsn={} ({} records still in flight)", cfg_.postgres.slot,
               halted ? "halted" : (result.ok() ? "stopped" : "paused"),
               core_.watermark().to_string(), p_.publisher_.in_flight());
  if (path_dead_) {
    stream_.abandon();
  } else {
    stream_.close();
  }
  if (!drained.ok() && result.ok()) return drained;
  return result;
}

common::Result<void> Pipeline::Session::wait_for_io(bool read_socket, milliseconds timeout) {
  struct pollfd fds[3];
  nfds_t n = 0;
  short pg_events =
      static_cast<short>((read_socket ? POLLIN : 0) | (output_pending_ ? POLLOUT : 0));
  fds[n++] = {stream_.socket(), pg_events, 0};
  if (p_.publisher_.wakeup_fd() >= 0) fds[n++] = {p_.publisher_.wakeup_fd(), POLLIN, 0};
  if (p_.stop_fd_ >= 0) fds[n++] = {p_.stop_fd_, POLLIN, 0};
  // Without a Kafka wakeup descriptor, poll Kafka briefly instead of sleeping.
  if (p_.publisher_.wakeup_fd() < 0 && p_.publisher_.in_flight() > 0) {
    timeout = std::min(timeout, milliseconds(5));
  }
  int r = ::poll(fds, n, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) {
    return failure(errc::retriable, std::string("poll: ") + std::strerror(errno));
  }
  if (r > 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) && !(fds[0].revents & POLLIN)) {
    return failure(errc::retriable, "connection to PostgreSQL lost");
  }
  if (output_pending_) {
    auto f = stream_.flush();
    if (!f) return failure(errc::retriable, f.error().describe());
    output_pending_ = !*f;
  }
  return {};
}

// A network path that dies without a reset is invisible to the socket until
// TCP gives up, and an idle walsender may legitimately send nothing at all
// once its position is confirmed. So, as PostgreSQL's walreceiver does with
// wal_receiver_timeout: after half the timeout of silence, ask the server for
// a reply; after all of it, give the connection up.
common::Result<void> Pipeline::Session::check_receive_timeout() {
  const auto timeout = cfg_.postgres.receive_timeout;
  const auto silent = Clock::now() - last_received_at_;
  if (silent >= timeout) {
    path_dead_ = true;
    return failure(errc::retriable,
                   fmt::format("no message from the server for {} ms (postgres.receive_timeout), "
                               "confirmed lsn={}; the network path to PostgreSQL is presumed dead",
                               std::chrono::duration_cast<milliseconds>(silent).count(),
                               core_.watermark().to_string()));
  }
  if (silent >= timeout / 2 && !reply_asked_) {
    reply_asked_ = true;
    return send_feedback(true, true);
  }
  return {};
}

common::Result<void> Pipeline::Session::handle_copy_data(std::string_view data) {
  last_received_at_ = Clock::now();
  reply_asked_ = false;
  auto msg = wal::parse_copy_data(data);
  if (!msg) return failure(errc::retriable, msg.error().describe());
  if (const auto* ka = std::get_if<wal::PrimaryKeepalive>(&*msg)) {
    if (ka->wal_end > received_) received_ = ka->wal_end;
    p_.stats_.received_lsn = received_.value();
    core_.on_keepalive(ka->wal_end);
    // The server asks after wal_sender_timeout/2 of silence and drops us at
    // wal_sender_timeout: answer now, not on the timer.
    if (ka->reply_requested) return send_feedback(true);
    return {};
  }
  const auto& x = std::get<wal::XLogData>(*msg);
  if (x.wal_start > received_) received_ = x.wal_start;
  p_.stats_.received_lsn = received_.value();
  auto ev = decoder_.decode(x.data);
  if (!ev) {
    // An unknown or malformed message: reconnecting re-reads it from the
    // confirmed position; skipping it could lose an outbox row.
    return failure(errc::retriable, "pgoutput decoding failed at lsn=" + x.wal_start.to_string() +
                                        ": " + ev.error().describe());
  }
  return core_.on_message(*ev, x.wal_start);
}

// Sends the position the ledger decides on, if it decides to send one.
common::Result<void> Pipeline::Session::send_feedback(bool force, bool ask_reply) {
  const auto position = core_.feedback(Clock::now(), force);
  if (!position) return {};
  const wal::Lsn w = *position;
  auto r = stream_.send_status(w, w, w, wal::pg_now(), ask_reply);
  if (!r) return failure(errc::retriable, r.error().describe());
  auto f = stream_.flush();
  if (!f) return failure(errc::retriable, f.error().describe());
  output_pending_ = !*f;
  if (w.value() != p_.stats_.confirmed_lsn.load()) {
    spdlog::debug("slot={} confirmed lsn={}", cfg_.postgres.slot, w.to_string());
  }
  p_.stats_.confirmed_lsn = w.value();
  p_.offer_checkpoint(w);
  return {};
}

}  // namespace driver
