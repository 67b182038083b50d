#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "relay/checkpoint.h"
#include "wal/lsn.h"

namespace relay {

// The slot's Kafka transaction, exactly once: one state, one table of the
// transitions allowed between states (as librdkafka's rdkafka_txnmgr.c keeps
// its own), and the rule that says when the open transaction commits. Pure:
// the caller passes the time and does the I/O; a transition the table does
// not allow is a bug and aborts.
//
//            begin                start_commit(c)
//   Idle ───────────▶ Open ──────────────────────▶ Committing(c)
//    ▲                  │                            │   │
//    │                  │ abort                      │   │ committed, failed
//    │                  ▼                            │   ▼
//    │   aborted    Aborting ◀───── abort ───────────┘  Idle
//    └──────────────────┘
//
// Committing(c) holds the checkpoint the running commit carries: the
// producer is asked for that commit's outcome with the same checkpoint until
// it resolves. An abort asked while a commit runs learns the commit's
// outcome first (the caller does, then calls committed() or failed()), so
// that a commit that went through is never replayed. reset() forgets
// everything: a new session, or a new producer.
class TransactionCycle {
 public:
  using Clock = std::chrono::steady_clock;

  enum class State { kIdle, kOpen, kCommitting, kAborting };
  enum class Event { kBegin, kStartCommit, kCommitted, kFailed, kAbort, kAborted };
  static constexpr size_t kStates = 4;
  static constexpr size_t kEvents = 6;

  // When the open transaction commits: as soon as the stream is caught up
  // (everything the server sent is read and no PostgreSQL transaction is
  // half read), or at `interval` after it opened, or at `max_records`. Under
  // load the stream is never caught up, so a transaction grows until one of
  // the bounds; idle, a row commits the moment it is read.
  struct Policy {
    std::chrono::milliseconds interval{250};
    uint64_t max_records = 10000;
    // A commit is not started sooner than this after the last one began
    // (0: no minimum): several rows arriving in one burst share a commit.
    std::chrono::milliseconds min_gap{0};
  };

  explicit TransactionCycle(Policy policy) : policy_(policy) {}

  static bool allowed(State from, Event event);
  static const char* name(State state);
  static const char* name(Event event);

  State state() const { return state_; }
  bool idle() const { return state_ == State::kIdle; }
  bool open() const { return state_ == State::kOpen; }
  bool committing() const { return state_ == State::kCommitting; }
  bool aborting() const { return state_ == State::kAborting; }
  // Committing only: the checkpoint the running commit carries.
  const Checkpoint& checkpoint() const;

  void begin(Clock::time_point now);
  void start_commit(const Checkpoint& checkpoint, Clock::time_point now);
  // The running commit went through; returns how long it took from
  // start_commit(), and hands the rows it made readable to `visible`.
  struct Committed {
    Checkpoint checkpoint;
    std::chrono::microseconds took{0};
  };
  Committed committed(Clock::time_point now);
  // The running commit could not go through; the producer aborted it.
  void failed();
  void abort();
  void aborted();
  void reset();

  // Open, with `records` produced into it: whether to commit now.
  // `caught_up`: the stream has nothing more to read right now and no
  // PostgreSQL transaction is half read.
  bool due(Clock::time_point now, uint64_t records, bool caught_up) const;
  // When due() may turn true by the clock alone, if open: the interval's
  // end, or sooner the end of the minimum gap still running at `now`.
  std::optional<Clock::time_point> deadline(Clock::time_point now) const;

  // The PostgreSQL commit time of each record added, so that a commit can
  // tell how long each row waited to be readable. Rows added while a commit
  // runs belong to the next transaction.
  void note_record(int64_t pg_commit_micros);
  // The commit times of the records the last committed() made readable,
  // run-length encoded (rows of one PostgreSQL transaction share one).
  struct Rows {
    int64_t pg_commit_micros = 0;
    uint64_t count = 0;
  };
  const std::vector<Rows>& visible() const { return visible_; }

 private:
  void apply(Event event, State to);

  Policy policy_;
  State state_ = State::kIdle;
  std::optional<Checkpoint> checkpoint_;
  Clock::time_point opened_at_{};
  Clock::time_point commit_started_at_{};
  std::optional<Clock::time_point> last_commit_started_at_;
  std::vector<Rows> open_rows_;
  std::vector<Rows> committing_rows_;
  std::vector<Rows> visible_;
};

}  // namespace relay
