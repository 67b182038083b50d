#include "relay/yield_guard.h"

#include <algorithm>

namespace relay {

YieldGuard::YieldGuard(std::chrono::milliseconds yield_after, int max_factor)
    : yield_after_(yield_after), max_factor_(std::max(1, max_factor)) {}

std::optional<int> YieldGuard::observe(Clock::time_point now,
                                       const std::vector<Observed>& assigned) {
  std::map<int, Clock::time_point> stuck;
  bool all_streaming = !assigned.empty();
  std::optional<int> longest;
  for (const Observed& o : assigned) {
    if (o.streaming) continue;
    all_streaming = false;
    auto it = stuck_since_.find(o.slot);
    const Clock::time_point since = it == stuck_since_.end() ? now : it->second;
    stuck[o.slot] = since;
    if (now - since >= yield_after_ && (!longest || since < stuck[*longest])) longest = o.slot;
  }
  stuck_since_ = std::move(stuck);
  if (all_streaming) consecutive_ = 0;
  return longest;
}

std::chrono::milliseconds YieldGuard::stuck_for(int slot, Clock::time_point now) const {
  auto it = stuck_since_.find(slot);
  if (it == stuck_since_.end()) return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - it->second);
}

std::chrono::milliseconds YieldGuard::yielded() {
  int factor = 1;
  for (int i = 0; i < consecutive_ && factor < max_factor_; ++i) factor *= 2;
  ++consecutive_;
  stuck_since_.clear();
  return yield_after_ * std::min(factor, max_factor_);
}

}  // namespace relay
