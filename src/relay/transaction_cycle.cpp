#include "relay/transaction_cycle.h"

#include <string>

#include "common/result.h"

namespace relay {

namespace {

using State = TransactionCycle::State;
using Event = TransactionCycle::Event;

constexpr size_t index(State s) { return static_cast<size_t>(s); }
constexpr size_t index(Event e) { return static_cast<size_t>(e); }

// kTransitions[from][event]: the state it leads to, or nullopt when the
// event is not allowed there.
using Row = std::array<std::optional<State>, TransactionCycle::kEvents>;
constexpr std::array<Row, TransactionCycle::kStates> kTransitions = [] {
  std::array<Row, TransactionCycle::kStates> t{};
  t[index(State::kIdle)][index(Event::kBegin)] = State::kOpen;
  t[index(State::kOpen)][index(Event::kStartCommit)] = State::kCommitting;
  t[index(State::kOpen)][index(Event::kAbort)] = State::kAborting;
  t[index(State::kCommitting)][index(Event::kCommitted)] = State::kIdle;
  t[index(State::kCommitting)][index(Event::kFailed)] = State::kIdle;
  // An abort timed out: asked again until the producer confirms it.
  t[index(State::kAborting)][index(Event::kAbort)] = State::kAborting;
  t[index(State::kAborting)][index(Event::kAborted)] = State::kIdle;
  return t;
}();

}  // namespace

bool TransactionCycle::allowed(State from, Event event) {
  return kTransitions[index(from)][index(event)].has_value();
}

const char* TransactionCycle::name(State state) {
  switch (state) {
    case State::kIdle: return "idle";
    case State::kOpen: return "open";
    case State::kCommitting: return "committing";
    case State::kAborting: return "aborting";
  }
  return "?";
}

const char* TransactionCycle::name(Event event) {
  switch (event) {
    case Event::kBegin: return "begin";
    case Event::kStartCommit: return "start_commit";
    case Event::kCommitted: return "committed";
    case Event::kFailed: return "failed";
    case Event::kAbort: return "abort";
    case Event::kAborted: return "aborted";
  }
  return "?";
}

void TransactionCycle::apply(Event event, State to) {
  const auto& next = kTransitions[index(state_)][index(event)];
  if (!next.has_value() || *next != to) {
    const std::string what =
        std::string("Kafka transaction: ") + name(event) + " when " + name(state_);
    common::invariant_failed(what.c_str(), __FILE__, __LINE__);
  }
  state_ = to;
}

const Checkpoint& TransactionCycle::checkpoint() const {
  OUTBOX_ASSERT(state_ == State::kCommitting && checkpoint_.has_value());
  return *checkpoint_;
}

void TransactionCycle::begin(Clock::time_point now) {
  apply(Event::kBegin, State::kOpen);
  opened_at_ = now;
}

void TransactionCycle::start_commit(const Checkpoint& checkpoint, Clock::time_point now) {
  apply(Event::kStartCommit, State::kCommitting);
  checkpoint_ = checkpoint;
  commit_started_at_ = now;
  last_commit_started_at_ = now;
  committing_rows_ = std::move(open_rows_);
  open_rows_.clear();
}

TransactionCycle::Committed TransactionCycle::committed(Clock::time_point now) {
  apply(Event::kCommitted, State::kIdle);
  Committed c{*checkpoint_,
              std::chrono::duration_cast<std::chrono::microseconds>(now - commit_started_at_)};
  checkpoint_.reset();
  visible_ = std::move(committing_rows_);
  committing_rows_.clear();
  return c;
}

void TransactionCycle::failed() {
  apply(Event::kFailed, State::kIdle);
  checkpoint_.reset();
  committing_rows_.clear();
}

void TransactionCycle::abort() {
  apply(Event::kAbort, State::kAborting);
  open_rows_.clear();
}

void TransactionCycle::aborted() {
  apply(Event::kAborted, State::kIdle);
}

void TransactionCycle::reset() {
  state_ = State::kIdle;
  checkpoint_.reset();
  open_rows_.clear();
  committing_rows_.clear();
  visible_.clear();
}

bool TransactionCycle::due(Clock::time_point now, uint64_t records, bool caught_up) const {
  if (state_ != State::kOpen || records == 0) return false;
  if (records >= policy_.max_records) return true;
  if (now - opened_at_ >= policy_.interval) return true;
  if (!caught_up) return false;
  return !last_commit_started_at_ || now - *last_commit_started_at_ >= policy_.min_gap;
}

std::optional<TransactionCycle::Clock::time_point> TransactionCycle::deadline(
    Clock::time_point now) const {
  if (state_ != State::kOpen) return std::nullopt;
  Clock::time_point at = opened_at_ + policy_.interval;
  if (last_commit_started_at_) {
    const Clock::time_point gap_end = *last_commit_started_at_ + policy_.min_gap;
    if (gap_end > now && gap_end < at) at = gap_end;
  }
  return at;
}

void TransactionCycle::note_record(int64_t pg_commit_micros) {
  if (!open_rows_.empty() && open_rows_.back().pg_commit_micros == pg_commit_micros) {
    ++open_rows_.back().count;
    return;
  }
  open_rows_.push_back(Rows{pg_commit_micros, 1});
}

}  // namespace relay
