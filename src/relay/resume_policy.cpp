#include "relay/resume_policy.h"

#include <fmt/format.h>

#include <algorithm>

namespace relay {

namespace {

using Level = ResumeNote::Level;

ResumeDecision refused(std::string text) {
  ResumeDecision d;
  d.verdict = ResumeVerdict::kRefuse;
  d.slot = SlotStep::kNone;
  d.notes.push_back({Level::kRefusal, std::move(text)});
  return d;
}

// A warning or a gap resumes with something to check; forgetting the
// positions outranks both.
void add(ResumeDecision& d, Level level, std::string text) {
  if (level != Level::kInfo && d.verdict == ResumeVerdict::kProceed) {
    d.verdict = ResumeVerdict::kWarn;
  }
  d.notes.push_back({level, std::move(text)});
}

std::string timeline_text(const ServerFacts& server) {
  return server.timeline ? std::to_string(*server.timeline) : std::string("?");
}

}  // namespace

std::string ResumeDecision::refusal() const {
  if (verdict != ResumeVerdict::kRefuse || notes.empty()) return "";
  return notes.front().text;
}

bool ResumePolicy::needs_history(const std::optional<Checkpoint>& checkpoint,
                                 std::optional<wal::TimelineId> server_timeline) {
  return checkpoint && checkpoint->timeline && server_timeline &&
         *checkpoint->timeline != *server_timeline && *server_timeline > 1;
}

ResumeDecision ResumePolicy::decide(const SlotRecall& recall, const ServerFacts& server) const {
  ResumeDecision decision;
  std::optional<Parting> parting;
  // Both before the slot is looked at: a slot of this name on another
  // system, or on another history, does not hold the rows the checkpoint's
  // positions name.
  if (recall.checkpoint && !judge_system(*recall.checkpoint, server, decision)) {
    judge_history(*recall.checkpoint, server, parting, decision);
  }
  if (decision.verdict == ResumeVerdict::kRefuse) return decision;
  // What the checks forgot is no memory of this slot.
  const bool forgotten = decision.verdict == ResumeVerdict::kForgetPositions;
  judge_slot(forgotten ? std::nullopt : memory(recall, parting), server, decision);
  return decision;
}

// Rule 1. The checkpoint was written against another system than the server
// connected to: a fresh initdb, a cluster restored from a dump, a failover to
// a server that is not a physical copy. The rows committed there after it
// were never streamed: a lost slot.
bool ResumePolicy::judge_system(const Checkpoint& checkpoint, const ServerFacts& server,
                                ResumeDecision& decision) const {
  if (!checkpoint.system_identifier || *checkpoint.system_identifier == server.system_identifier) {
    return false;
  }
  const std::string message = fmt::format(
      "slot={}: the server is PostgreSQL system identifier {}, but Kafka holds the slot's "
      "checkpoint at lsn={} (group {}) from system identifier {}: the relay is pointed at "
      "another cluster (a new initdb, a restore from a dump, or a failover to a server that is "
      "not a physical copy), and rows committed on system {} after lsn={} were never streamed; "
      "compare the outbox with Kafka from that position",
      settings_.slot, server.system_identifier, checkpoint.end_lsn.to_string(),
      settings_.checkpoint_group, *checkpoint.system_identifier, *checkpoint.system_identifier,
      checkpoint.end_lsn.to_string());
  if (!recreate()) {
    decision = refused(fmt::format(
        "{}, then point the relay back at system identifier {}, or set postgres.on_slot_lost: "
        "recreate to stream this system's slot from its own position",
        message, *checkpoint.system_identifier));
    return true;
  }
  decision.verdict = ResumeVerdict::kForgetPositions;
  add(decision, Level::kGap,
      fmt::format("{} (on_slot_lost: recreate: streaming system identifier {} from the slot's own "
                  "position; the rows after the checkpoint were NOT published)",
                  message, server.system_identifier));
  return true;
}

// Rule 2. The same system identifier does not make the same history: a
// point-in-time recovery, a standby promoted before it had replayed what the
// relay read on the old primary, a file-system snapshot restored. Each
// writes other WAL at positions the checkpoint names. Exactly once the relay
// would skip the rows there as already delivered. At least once the
// checkpoint is never a position to resume from, and nothing is skipped
// because of it; it only must not make a missing slot's message claim a gap
// that starts after the histories parted.
void ResumePolicy::judge_history(const Checkpoint& checkpoint, const ServerFacts& server,
                                 std::optional<Parting>& parting,
                                 ResumeDecision& decision) const {
  if (!server.timeline) return;
  // A checkpoint that does not record its timeline is judged against the
  // server's WAL end alone.
  const wal::TimelineId recorded = checkpoint.timeline.value_or(*server.timeline);
  const wal::HistoryVerdict verdict = wal::judge_position(
      checkpoint.end_lsn, recorded, *server.timeline, server.wal_end, server.history);
  if (verdict.same_history()) {
    if (recorded != *server.timeline) {
      add(decision, Level::kInfo,
          fmt::format("slot={} the checkpoint at lsn={} was taken on timeline {}; this server is "
                      "on timeline {}, whose history left timeline {} at lsn={}, after the "
                      "checkpoint: a failover that kept every position the checkpoint names",
                      settings_.slot, checkpoint.end_lsn.to_string(), recorded, *server.timeline,
                      recorded, verdict.switchpoint->to_string()));
    }
    return;
  }
  const std::string message = divergence_message(checkpoint, server, verdict);
  if (!settings_.exactly_once) {
    add(decision, Level::kWarning,
        message + "; at least once the slot's own position decides where streaming starts, so "
                  "nothing is skipped because of it, and the next checkpoint written replaces it");
    parting = Parting{
        std::min(checkpoint.end_lsn, verdict.switchpoint.value_or(server.wal_end)),
        fmt::format("a checkpoint from another history than this server's ({})",
                    wal::to_string(*verdict.divergence))};
    return;
  }
  if (!recreate()) {
    decision = refused(message +
                       "; then set postgres.on_slot_lost: recreate to stream this server's slot "
                       "from its own position, or point the relay back at the server whose "
                       "history the checkpoint is in");
    return;
  }
  decision.verdict = ResumeVerdict::kForgetPositions;
  add(decision, Level::kGap,
      fmt::format("{} (on_slot_lost: recreate: forgetting the checkpoint and streaming timeline {} "
                  "from the slot's own position; rows of this history before that position that "
                  "are not in Kafka were NOT published)",
                  message, *server.timeline));
}

std::string ResumePolicy::divergence_message(const Checkpoint& checkpoint,
                                             const ServerFacts& server,
                                             const wal::HistoryVerdict& verdict) const {
  const std::string tli = checkpoint.timeline ? std::to_string(*checkpoint.timeline) : "?";
  const std::string at = checkpoint.end_lsn.to_string();
  const std::string head = fmt::format(
      "slot={}: Kafka holds the slot's checkpoint at lsn={} (group {}) taken on timeline {}, and "
      "this server (system identifier {}) is on timeline {} with its WAL ending at lsn={}",
      settings_.slot, at, settings_.checkpoint_group, tli, server.system_identifier,
      timeline_text(server), server.wal_end.to_string());
  switch (*verdict.divergence) {
    case wal::Divergence::kBeyondSwitchPoint: {
      const std::string fork = verdict.switchpoint->to_string();
      return fmt::format(
          "{}: its history left timeline {} at lsn={} (the switch point), before the "
          "checkpoint, so from lsn={} to lsn={} the two histories hold different WAL (a "
          "point-in-time recovery, or a standby promoted before it had replayed what the relay "
          "read); rows this server committed between lsn={} and lsn={} would be skipped as "
          "already delivered, and the records Kafka holds from that range are not in this "
          "server's outbox; compare the outbox with Kafka from lsn={}",
          head, tli, fork, fork, at, fork, at, fork);
    }
    case wal::Divergence::kNotAncestor:
      return fmt::format(
          "{}: timeline {} is not in this server's history (a restore of a backup taken before "
          "it began, or another standby promoted on its own), so the checkpoint's positions name "
          "other WAL here; rows this server committed after the histories parted and up to "
          "lsn={} would be skipped as already delivered; compare the outbox with Kafka from "
          "where the histories parted (pg_wal/{:08X}.history on each server)",
          head, tli, at, server.timeline.value_or(0));
    case wal::Divergence::kBeyondWalEnd:
      return fmt::format(
          "{}: the checkpoint is beyond the server's WAL end, so this server never wrote that "
          "position and its history is not the one the checkpoint was taken on (a file-system "
          "snapshot or an older backup restored); rows it commits up to lsn={} would be skipped "
          "as already delivered, and the records Kafka holds after the point the histories "
          "parted are not in this server's outbox; compare the outbox with Kafka from before "
          "lsn={}",
          head, at, server.wal_end.to_string());
  }
  return head;
}

// The latest checkpoint Kafka committed is where the slot stood; at least
// once, what this process delivered of it since, when that is further.
std::optional<ResumePolicy::Memory> ResumePolicy::memory(
    const SlotRecall& recall, const std::optional<Parting>& parting) const {
  std::optional<Memory> memory;
  if (const std::optional<Checkpoint>& checkpoint = recall.checkpoint) {
    const std::string held = fmt::format("Kafka holds its checkpoint at lsn={} (group {})",
                                         checkpoint->end_lsn.to_string(),
                                         settings_.checkpoint_group);
    memory = parting ? Memory{parting->gap_from,
                              fmt::format("{}, {}: the gap starts at or before lsn={}", held,
                                          parting->why, parting->gap_from.to_string())}
                     : Memory{checkpoint->end_lsn, held};
  }
  if (!recall.delivered) return memory;
  if (memory && memory->lsn >= *recall.delivered) return memory;
  return Memory{*recall.delivered,
                "this process streamed it and had delivered everything up to lsn=" +
                    recall.delivered->to_string()};
}

void ResumePolicy::judge_slot(const std::optional<Memory>& memory, const ServerFacts& server,
                              ResumeDecision& decision) const {
  switch (server.slot.presence) {
    case SlotPresence::kExists:
      decision.slot = SlotStep::kUse;
      return;
    case SlotPresence::kLost: {
      // Rule 3: the server removed WAL the slot still needed
      // (max_slot_wal_keep_size, idle_replication_slot_timeout).
      const wal::Lsn confirmed = server.slot.confirmed_flush.value_or(wal::Lsn());
      if (!recreate()) {
        decision = refused(fmt::format(
            "replication slot \"{}\" has been invalidated (wal_status = lost): the WAL it needed "
            "was removed (max_slot_wal_keep_size), so rows committed after its "
            "confirmed_flush_lsn {} may never be published; check the outbox against Kafka, "
            "then set postgres.on_slot_lost: recreate (or drop the slot) to stream again from "
            "now",
            settings_.slot,
            server.slot.confirmed_flush ? confirmed.to_string() : std::string("(none)")));
        return;
      }
      decision.slot = SlotStep::kRecreate;
      add(decision, Level::kGap,
          fmt::format("slot={} lost_confirmed_lsn={} the slot had been invalidated "
                      "(wal_status=lost) and was dropped and created again (on_slot_lost: "
                      "recreate): rows committed after the lost slot's confirmed position and "
                      "before now were NOT published; compare the outbox with Kafka from that "
                      "position",
                      settings_.slot, confirmed.to_string()));
      return;
    }
    case SlotPresence::kMissing:
      break;
  }
  if (memory) {
    // Rule 4: creating it again would skip every row committed since,
    // silently.
    if (!recreate()) {
      decision = refused(lost_slot_message(*memory, server));
      return;
    }
    decision.slot = SlotStep::kCreate;
    add(decision, Level::kGap,
        lost_slot_message(*memory, server) +
            " (on_slot_lost: recreate: created again at the server's current position; rows "
            "committed between the two positions were NOT published)");
    return;
  }
  // Rule 5: a first start.
  if (!settings_.create_slot) {
    decision = refused("replication slot \"" + settings_.slot +
                       "\" does not exist and create_slot is false");
    return;
  }
  decision.slot = SlotStep::kCreate;
}

// The slot is gone though it streamed before: it was dropped, or a failover
// promoted a server that did not have it. Rows committed from the slot's last
// known position to the server's WAL end were never streamed from it.
std::string ResumePolicy::lost_slot_message(const Memory& memory,
                                            const ServerFacts& server) const {
  const int version = server.server_version;
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
      settings_.slot, memory.source, failover, timeline_text(server), memory.lsn.to_string(),
      server.wal_end.to_string(), memory.lsn.to_string());
}

}  // namespace relay
