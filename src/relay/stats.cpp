#include "relay/stats.h"

namespace relay {

SlotWalStatus slot_wal_status_from(std::string_view name) {
  for (size_t i = 0; i < kSlotWalStatusNames.size(); ++i) {
    if (name == kSlotWalStatusNames[i]) return static_cast<SlotWalStatus>(i);
  }
  return SlotWalStatus::kUnknown;
}

TopicCounters& TopicStatsRegistry::get(std::string_view topic) {
  std::lock_guard lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) {
    it = topics_.emplace(std::string(topic), std::make_unique<TopicCounters>()).first;
  }
  return *it->second;
}

void TopicStatsRegistry::for_each(
    const std::function<void(const std::string&, const TopicCounters&)>& fn) const {
  std::lock_guard lock(mu_);
  for (const auto& [topic, counters] : topics_) fn(topic, *counters);
}

void LatencyHistogram::observe_micros(int64_t micros, uint64_t count) {
  // The commit time comes from the server's clock: a relay clock behind it
  // would give negative latencies, which a histogram cannot hold.
  if (micros < 0) micros = 0;
  const double seconds = static_cast<double>(micros) / 1e6;
  size_t i = 0;
  while (i < kBoundsSeconds.size() && seconds > kBoundsSeconds[i]) ++i;
  buckets_[i].fetch_add(count, std::memory_order_relaxed);
  sum_micros_.fetch_add(micros * static_cast<int64_t>(count), std::memory_order_relaxed);
  count_.fetch_add(count, std::memory_order_release);
}

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  Snapshot s;
  s.count = count_.load(std::memory_order_acquire);
  s.sum_seconds = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  uint64_t running = 0;
  for (size_t i = 0; i < kBoundsSeconds.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  // Buckets are bumped before the count, so a concurrent observation can make
  // a bucket run ahead of the count; +Inf must equal the count and buckets
  // must not exceed it.
  running += buckets_[kBoundsSeconds.size()].load(std::memory_order_relaxed);
  if (running > s.count) s.count = running;
  return s;
}

}  // namespace relay
