#pragma once

// Where a slot may resume, judged at every connect from what the server says
// and what the relay remembers of the slot. Pure: values in, one decision
// out; the driver gathers the facts and applies the decision whole.
//
// The rules, in the order they are judged (each may end the judgement):
//
//  1. A checkpoint of another system identifier than the server's: the
//     relay is pointed at another cluster, and its positions mean nothing
//     in this server's WAL. Refused in both deliveries; under
//     on_slot_lost: recreate the positions are forgotten.
//  2. A checkpoint from another history of the same system
//     (wal::judge_position): its timeline not in the server's history, the
//     history left it before end_lsn, or end_lsn beyond the server's WAL
//     end. Exactly once the relay would skip rows there as already
//     delivered: refused, or forgotten under recreate. At least once the
//     checkpoint is never a position to resume from: a warning, and a
//     missing slot's gap is named from where the histories parted.
//     An ancestor timeline left at or after end_lsn is the same history:
//     it proceeds (DeliveryLedger::start_session then republishes a
//     transaction the checkpoint was partly in, whole).
//  3. A slot invalidated (wal_status = lost): refused, or dropped and
//     created again under recreate, naming the gap.
//  4. A slot missing while the relay remembers it (its checkpoint, or what
//     this process delivered when it streamed it): a lost slot, never a
//     first start. Refused, or created again under recreate.
//  5. A slot missing otherwise: a first start; created unless
//     postgres.create_slot is false.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "relay/checkpoint.h"
#include "wal/lsn.h"
#include "wal/timeline.h"

namespace relay {

enum class SlotPresence {
  kMissing,
  kExists,
  kLost,  // pg_replication_slots.wal_status = 'lost'
};

// The slot as pg_replication_slots shows it before anything is done to it.
struct SlotFacts {
  SlotPresence presence = SlotPresence::kMissing;
  // confirmed_flush_lsn, when the server shows one.
  std::optional<wal::Lsn> confirmed_flush;
};

// What the server said at connect: IDENTIFY_SYSTEM, TIMELINE_HISTORY and
// pg_replication_slots.
struct ServerFacts {
  uint64_t system_identifier = 0;
  // Unset when IDENTIFY_SYSTEM sent none.
  std::optional<wal::TimelineId> timeline;
  // The history of `timeline`, read when ResumePolicy::needs_history() says
  // so; empty otherwise.
  std::vector<wal::TimelineSwitch> history;
  wal::Lsn wal_end;  // IDENTIFY_SYSTEM's xlogpos
  int server_version = 0;  // PQserverVersion: 170004 for 17.4
  SlotFacts slot;
};

// What the relay remembers of the slot.
struct SlotRecall {
  // The checkpoint read back from Kafka when the slot was taken, or the last
  // one this process committed since.
  std::optional<Checkpoint> checkpoint;
  // Set once this process streamed the slot: everything up to here was
  // delivered. At least once, the checkpoint trails it.
  std::optional<wal::Lsn> delivered;
};

struct ResumeSettings {
  std::string slot;
  std::string checkpoint_group;  // where Kafka keeps the checkpoint, for messages
  config::SlotLostPolicy on_slot_lost = config::SlotLostPolicy::kFail;
  bool exactly_once = true;
  bool create_slot = true;  // postgres.create_slot
};

enum class ResumeVerdict {
  kProceed,          // stream; notes, if any, are for the record
  kWarn,             // stream; the notes say what to check or what was lost
  kForgetPositions,  // the positions so far name other WAL: forget them
                     // (DeliveryLedger::forget_positions), then stream
  kRefuse,           // stream nothing, create nothing; refusal() says why
};

// What the driver does to the slot before streaming.
enum class SlotStep {
  kNone,      // refused
  kUse,       // it exists: stream from it
  kCreate,    // it is missing: create it
  kRecreate,  // it is lost: drop it and create it again
};

struct ResumeNote {
  enum class Level {
    kInfo,
    kWarning,
    // Rows committed in a range were NOT published (on_slot_lost:
    // recreate): an error, counted in slots_recreated.
    kGap,
    kRefusal,
  };
  Level level = Level::kInfo;
  std::string text;

  bool operator==(const ResumeNote&) const = default;
};

struct ResumeDecision {
  ResumeVerdict verdict = ResumeVerdict::kProceed;
  SlotStep slot = SlotStep::kUse;
  // In the order to log them; a refusal has exactly one.
  std::vector<ResumeNote> notes;

  // The refusal's message; empty unless refused.
  std::string refusal() const;
};

class ResumePolicy {
 public:
  explicit ResumePolicy(ResumeSettings settings) : settings_(std::move(settings)) {}

  // Whether decide() needs the history of the server's timeline: the
  // checkpoint was taken on another timeline, and the server's is past its
  // first (timeline 1 has no history file).
  static bool needs_history(const std::optional<Checkpoint>& checkpoint,
                            std::optional<wal::TimelineId> server_timeline);

  ResumeDecision decide(const SlotRecall& recall, const ServerFacts& server) const;

 private:
  // Where the slot last stood as the relay knows it, and how it knows, for
  // the message of a slot found missing.
  struct Memory {
    wal::Lsn lsn;
    std::string source;
  };
  // Rule 2's at-least-once note: where a missing slot's gap begins when the
  // checkpoint is from another history.
  struct Parting {
    wal::Lsn gap_from;
    std::string why;
  };

  // Rule 1: true when the checkpoint is of another system (`decision` then
  // refuses or forgets the positions).
  bool judge_system(const Checkpoint& checkpoint, const ServerFacts& server,
                    ResumeDecision& decision) const;
  // Rule 2: adds its note to `decision`, or makes it a refusal or a forget.
  void judge_history(const Checkpoint& checkpoint, const ServerFacts& server,
                     std::optional<Parting>& parting, ResumeDecision& decision) const;
  std::string divergence_message(const Checkpoint& checkpoint, const ServerFacts& server,
                                 const wal::HistoryVerdict& verdict) const;
  std::optional<Memory> memory(const SlotRecall& recall,
                               const std::optional<Parting>& parting) const;
  // Rules 3 to 5; replaces `decision` with a refusal when one applies.
  void judge_slot(const std::optional<Memory>& memory, const ServerFacts& server,
                  ResumeDecision& decision) const;
  std::string lost_slot_message(const Memory& memory, const ServerFacts& server) const;
  bool recreate() const { return settings_.on_slot_lost == config::SlotLostPolicy::kRecreate; }

  ResumeSettings settings_;
};

}  // namespace relay
