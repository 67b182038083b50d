#pragma once

#include <atomic>
#include <mutex>
#include <optional>
#include <string>

namespace relay {

// A verdict from another thread (the monitor's periodic publication check)
// that the stream no longer carries the outbox, raised once and taken by the
// pipeline's loop, which stops the slot on it. The flag keeps the loop's
// check to one relaxed load while nothing is raised.
class CatalogAlarm {
 public:
  void raise(std::string message) {
    std::lock_guard lock(mu_);
    if (raised_.load()) return;  // the first verdict is the one to report
    message_ = std::move(message);
    raised_.store(true);
  }

  std::optional<std::string> take() {
    if (!raised_.load(std::memory_order_relaxed)) return std::nullopt;
    std::lock_guard lock(mu_);
    raised_.store(false);
    return std::move(message_);
  }

 private:
  std::atomic<bool> raised_{false};
  std::mutex mu_;
  std::string message_;
};

}  // namespace relay
