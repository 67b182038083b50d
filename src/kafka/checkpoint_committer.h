#pragma once

// At least once, single-slot mode: writes the slot's checkpoint, after the
// position was confirmed to PostgreSQL, as the metadata of an offset
// committed to the checkpoint place (checkpoint_store.h) by a client that
// never joins the group: a "simple" commit, which the broker accepts while
// the group has no members, as it never has in single-slot mode. The same
// text the transactional producer commits, read back by read_checkpoint().
//
// One commit at a time; an offer made while one is in flight replaces any
// older one waiting, and goes out when the first is answered. Results are
// served on the caller's thread, by offer() and serve().

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "kafka/checkpoint_store.h"
#include "relay/checkpoint.h"

namespace kafka {

class CheckpointCommitter : public relay::CheckpointSink {
 public:
  // `properties` are the user's kafka.properties (security settings).
  static common::Result<std::unique_ptr<CheckpointCommitter>> create(
      const std::string& brokers, const std::map<std::string, std::string>& properties,
      const CheckpointPlace& place);
  // Waits up to `kFinalWait` for the commit in flight and the last offer.
  ~CheckpointCommitter() override;

  void offer(const relay::Checkpoint& checkpoint) override;
  uint64_t written_lsn() const override { return written_lsn_.load(); }
  // Serves commit results without offering anything.
  void serve();

  static constexpr std::chrono::milliseconds kFinalWait{2000};

 private:
  struct Handle;
  explicit CheckpointCommitter(CheckpointPlace place);
  static void on_commit(void* rk, int err, void* offsets, void* opaque);
  void commit_result(int err, void* offsets);
  void send(const relay::Checkpoint& checkpoint);

  CheckpointPlace place_;
  std::unique_ptr<Handle> handle_;
  std::optional<relay::Checkpoint> in_flight_;
  std::optional<relay::Checkpoint> waiting_;
  std::atomic<uint64_t> written_lsn_{0};
  std::chrono::steady_clock::time_point last_warning_{};
};

}  // namespace kafka
