#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "kafka/errc.h"
#include "relay/checkpoint.h"
#include "relay/lease.h"

namespace kafka {

struct GroupOptions {
  std::string brokers;
  std::map<std::string, std::string> properties;  // the user's kafka.properties
  std::string group_id;
  std::string topic;  // the coordination topic: partition i is slot i
  int slots = 1;
  std::chrono::milliseconds session_timeout{10000};
  std::string instance;  // host/pid/id, for client.id and commit metadata
  // At least once: where the slots' checkpoints are committed by this
  // member (partition i for slot i, see checkpoint_store.h); empty for none.
  std::string checkpoint_topic;
};

// Told, on the group thread, which slots this instance gained or lost. Both
// return only when the change is complete: on_revoked after the slots'
// pipelines have stopped and released their replication connections.
class GroupListener {
 public:
  virtual ~GroupListener() = default;
  virtual void on_assigned(const std::vector<int>& slots) = 0;
  virtual void on_revoked(const std::vector<int>& slots, bool lost) = 0;
};

// Membership of the consumer group that shares out the slots. A consumer on
// the coordination topic that never reads a record: the group's partition
// assignment (cooperative-sticky, so a rebalance moves only the slots that
// must move) is the slot assignment.
//
// It also keeps the Lease. The evidence of membership is an offset commit
// for the assigned partitions: the coordinator accepts it only from a member
// of the current generation, so an accepted commit proves that, at some
// moment after it was sent, the coordinator counted this instance in. The
// coordinator expels a member session.timeout.ms after the last heartbeat it
// received, and heartbeats go out every heartbeat.interval.ms on the same
// connection ahead of the commit, so the expulsion cannot come before
// send time + session timeout - heartbeat interval. The lease is shorter
// still, by a margin for scheduling and clock rates.
class GroupMember {
 public:
  static common::Result<std::unique_ptr<GroupMember>> create(const GroupOptions& options,
                                                             relay::Lease& lease,
                                                             GroupListener& listener);
  ~GroupMember();

  // Creates the coordination topic with one partition per slot if it is
  // missing. errc::too_few_partitions when it exists with fewer.
  common::Result<int> ensure_topic(std::chrono::milliseconds timeout);
  common::Result<void> subscribe();
  // Serves rebalances and commit results for up to `timeout`; renews the
  // lease. Call it often: nothing happens between calls.
  void poll(std::chrono::milliseconds timeout);
  // Leaves the group without closing: every slot is revoked through the
  // listener on a later poll(), and the others rebalance at once;
  // subscribe() joins again.
  void leave();
  // Revokes every slot through the listener and leaves the group, so that
  // the others rebalance now rather than after the session timeout.
  void close();

  // At least once: the checkpoint of slot `slot`, committed by the member
  // under its generation on the next poll(), so that a deposed member's is
  // refused. Thread-safe; a newer offer replaces one not yet sent. Dropped
  // when the slot is lost; written when it is revoked cleanly.
  void offer_checkpoint(int slot, const relay::Checkpoint& checkpoint);
  // The LSN of the last checkpoint of `slot` the coordinator accepted.
  uint64_t checkpoint_written(int slot) const;

  const std::vector<int>& assigned() const { return assigned_; }
  bool joined() const { return joined_.load(); }
  // Rebalance callbacks served: assignments, revocations and losses.
  uint64_t rebalances() const { return rebalances_.load(); }
  std::chrono::milliseconds lease_validity() const {
    return lease_validity_for(options_.session_timeout);
  }
  static std::chrono::milliseconds lease_validity_for(std::chrono::milliseconds session_timeout);

 private:
  GroupMember(const GroupOptions& options, relay::Lease& lease, GroupListener& listener);
  static void on_rebalance(void* rk, int err, void* partitions, void* opaque);
  static void on_commit(void* rk, int err, void* offsets, void* opaque);
  void rebalance(int err, void* partitions);
  void commit_result(int err);
  void maybe_commit();
  void maybe_commit_checkpoints(bool revoked_too = false);
  void checkpoint_result(int err, const void* offsets);

  struct Handle;
  std::unique_ptr<Handle> handle_;
  GroupOptions options_;
  relay::Lease& lease_;
  GroupListener& listener_;
  std::vector<int> assigned_;
  std::atomic<bool> joined_{false};
  std::atomic<uint64_t> rebalances_{0};
  bool closed_ = false;
  bool commit_in_flight_ = false;
  relay::Lease::Nanos commit_sent_at_{0};
  relay::Lease::Nanos next_commit_at_{0};
  relay::Lease::Nanos last_commit_warning_{0};
  mutable std::mutex checkpoint_mutex_;
  std::map<int, relay::Checkpoint> checkpoint_waiting_;
  std::map<int, relay::Checkpoint> checkpoint_in_flight_;
  std::set<int> checkpoint_parting_;
  std::unique_ptr<std::atomic<uint64_t>[]> checkpoint_written_;
  relay::Lease::Nanos last_checkpoint_warning_{0};
};

}  // namespace kafka
