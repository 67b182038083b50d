#include "app/slot_monitor.h"

#include <spdlog/spdlog.h>

#include "wal/replication_slot_stats.h"

namespace app {

SlotMonitor::SlotMonitor(relay::PipelineStats& stats, std::string dsn, std::string slot,
                         std::chrono::milliseconds interval)
    : stats_(stats), dsn_(std::move(dsn)), slot_(std::move(slot)), interval_(interval) {}

SlotMonitor::~SlotMonitor() { stop(); }

void SlotMonitor::start() { thread_ = std::thread([this] { run(); }); }

void SlotMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SlotMonitor::run() {
  wal::SlotStatsReader reader(dsn_);
  bool failing = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto usage = reader.read(slot_);
    if (!usage) {
      // Once per outage, not once per interval.
      if (!failing) {
        spdlog::warn("slot={} cannot read the slot's retained WAL: {}", slot_,
                     usage.error().describe());
      }
      failing = true;
    } else {
      failing = false;
      const auto& u = *usage;
      stats_.retained_wal_bytes = u && u->retained_wal_bytes ? *u->retained_wal_bytes : -1;
    }
    lock.lock();
    cv_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace app
