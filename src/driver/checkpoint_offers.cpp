#include "driver/checkpoint_offers.h"

namespace driver {

void CheckpointOffers::offer(wal::Lsn confirmed) {
  constexpr std::chrono::hours kRefresh{1};
  if (!sink_ || !system_identifier_ || confirmed.value() == 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (confirmed == offered_ && now - offered_at_ < kRefresh) return;
  sink_->offer(relay::Checkpoint{confirmed, std::nullopt, system_identifier_});
  offered_ = confirmed;
  offered_at_ = now;
}

void CheckpointOffers::serve() {
  if (!sink_) return;
  sink_->serve();
  if (const uint64_t written = sink_->written_lsn(); written != 0) {
    stats_.checkpoint_lsn = written;
    stats_.checkpoint_known = true;
  }
}

}  // namespace driver
