#pragma once

#include <chrono>
#include <cstdint>

namespace relay {

// Rate limit for log lines on a hot path: at most `per_second` lines in any
// one-second window. A caller asks allow() before logging; when a window
// opens after lines were held back, take_suppressed() says how many, once,
// so the log still accounts for every event.
class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;

  explicit LogBudget(uint32_t per_second) : per_second_(per_second) {}

  bool allow(Clock::time_point now = Clock::now()) {
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      used_ = 0;
    }
    if (used_ < per_second_) {
      ++used_;
      return true;
    }
    ++suppressed_;
    return false;
  }

  // Lines held back since the last call; call it after a line allow() let
  // through.
  uint64_t take_suppressed() {
    const uint64_t n = suppressed_;
    suppressed_ = 0;
    return n;
  }

 private:
  uint32_t per_second_;
  uint32_t used_ = 0;
  uint64_t suppressed_ = 0;
  Clock::time_point window_start_{};
};

}  // namespace relay
