#include "app/slot_monitor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "pg/replication_catalog.h"
#include "pg/replication_slot_stats.h"

namespace app {

namespace {

using Clock = std::chrono::steady_clock;

// Once per outage, not once per interval.
class WarnOnce {
 public:
  template <typename... Args>
  void warn(fmt::format_string<Args...> format, Args&&... args) {
    if (!failing_) spdlog::warn(format, std::forward<Args>(args)...);
    failing_ = true;
  }
  void ok() { failing_ = false; }

 private:
  bool failing_ = false;
};

}  // namespace

SlotMonitor::SlotMonitor(relay::PipelineStats& stats, std::string dsn, std::string slot,
                         std::chrono::milliseconds interval, std::optional<PublicationCheck> check)
    : stats_(stats),
      dsn_(std::move(dsn)),
      slot_(std::move(slot)),
      interval_(interval),
      check_(std::move(check)) {}

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

// A failed read leaves the last answer: the usage warning above already
// reports an unreachable server.
void SlotMonitor::publish_failover(pg::SlotStatsReader& reader) {
  auto failover = reader.read_failover(slot_);
  if (!failover) return;
  const auto& f = *failover;
  stats_.slot_failover = f ? (f->failover ? 1 : 0) : -1;
  stats_.failover_ready_standbys = f ? f->ready_standbys : -1;
}

void SlotMonitor::run() {
  pg::SlotStatsReader reader(dsn_);
  pg::CatalogWatch watch(dsn_);
  WarnOnce wal_warning;
  WarnOnce check_warning;
  WarnOnce status_warning;
  auto next_usage = Clock::now();
  auto next_check = Clock::now() + (check_ ? check_->interval : interval_);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const auto now = Clock::now();
    if (now >= next_usage) {
      next_usage = now + interval_;
      auto usage = reader.read(slot_);
      if (!usage) {
        stats_.last_error.set("cannot read the slot's retained WAL: " + usage.error().describe());
        wal_warning.warn(
            "slot={} cannot read the slot's retained WAL: {}; the retained-WAL and wal_status "
            "metrics keep their last value until it can (the stream reconnects on its own)",
            slot_, usage.error().describe());
      } else {
        wal_warning.ok();
        const auto& u = *usage;
        stats_.retained_wal_bytes = u && u->retained_wal_bytes ? *u->retained_wal_bytes : -1;
        stats_.safe_wal_bytes = u && u->safe_wal_size ? *u->safe_wal_size
                                                      : relay::PipelineStats::kSafeWalUnknown;
        const auto status = u && u->wal_status ? relay::slot_wal_status_from(*u->wal_status)
                                               : relay::SlotWalStatus::kUnknown;
        if (u && u->wal_status && status == relay::SlotWalStatus::kUnknown) {
          status_warning.warn("slot={} wal_status '{}' is not one this relay knows; left out of "
                              "the metrics",
                              slot_, *u->wal_status);
        } else {
          status_warning.ok();
        }
        stats_.wal_status = static_cast<int>(status);
      }
      publish_failover(reader);
    }
    // Only a streaming pipeline is judged: at every connect it checks the
    // same things itself, before START_REPLICATION.
    const uint32_t oid = stats_.outbox_oid.load();
    if (check_ && now >= next_check) {
      next_check = now + check_->interval;
      if (oid != 0 && stats_.state.load() == static_cast<int>(relay::PipelineState::kStreaming)) {
        auto checked = watch.check(check_->table, check_->publication, slot_, oid);
        if (checked) {
          check_warning.ok();
        } else if (pg::is_catalog_verdict(checked.error())) {
          stats_.catalog_alarm.raise(checked.error().describe());
        } else {
          stats_.last_error.set("cannot check the publication: " + checked.error().describe());
          check_warning.warn(
              "slot={} cannot check the publication: {}; asked again every {} ms (the stream "
              "checks it again at its next connection)",
              slot_, checked.error().describe(), check_->interval.count());
        }
      }
    }
    lock.lock();
    const auto wake = check_ ? std::min(next_usage, next_check) : next_usage;
    cv_.wait_until(lock, wake, [this] { return stopping_; });
  }
}

}  // namespace app
