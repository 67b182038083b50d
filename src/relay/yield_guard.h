#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <vector>

namespace relay {

// When a group member gives its slots up because it cannot stream one of
// them, so that another instance (which may reach the server) can try, and
// how long it then stays out of the group.
//
// A slot assigned and not streaming for `yield_after` is a reason to yield.
// The first time the member stays out for `yield_after`; each further
// yield without every assigned slot streaming in between doubles that, up
// to `max_factor` times, so that instances that all cannot reach the
// server pass the slot around ever more slowly instead of flapping.
class YieldGuard {
 public:
  using Clock = std::chrono::steady_clock;

  struct Observed {
    int slot = 0;
    bool streaming = false;
  };

  explicit YieldGuard(std::chrono::milliseconds yield_after, int max_factor = 8);

  // Called on every turn of the group loop with the slots assigned now.
  // Returns a slot that has not streamed for yield_after, if any.
  std::optional<int> observe(Clock::time_point now, const std::vector<Observed>& assigned);
  // How long `slot` has been assigned without streaming, as last observed.
  std::chrono::milliseconds stuck_for(int slot, Clock::time_point now) const;
  // The member left the group: how long it stays out.
  std::chrono::milliseconds yielded();
  int consecutive_yields() const { return consecutive_; }

 private:
  std::chrono::milliseconds yield_after_;
  int max_factor_;
  std::map<int, Clock::time_point> stuck_since_;
  int consecutive_ = 0;
};

}  // namespace relay
