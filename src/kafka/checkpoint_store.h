#pragma once

// Where a slot's checkpoint lives and how it is read back.
//
// The checkpoint is the metadata of an offset committed to a consumer group
// (the "checkpoint group") for one partition of a "checkpoint topic". The
// transactional producer commits it with send_offsets_to_transaction, so it
// becomes visible exactly when the records of the same Kafka transaction do.
// Nothing is ever written to the checkpoint topic: the broker only refuses
// offset commits for partitions that do not exist, so the topic must exist
// with a partition per slot (ensure_checkpoint_topic()).
//
// Places, as the relay derives them:
//   single-slot mode: group "<prefix><slot>", topic "<prefix>checkpoints",
//     partition 0 (one group per slot, so slots share the topic);
//   group mode: the coordination group itself, topic
//     "<coordination topic>.checkpoints", partition = the slot's index. The
//     coordination group's own commits (the lease evidence) go to the
//     coordination topic, so the two never overwrite each other, and the
//     producer can hand the broker the member's generation (GroupMetadata)
//     so that a deposed member's checkpoint is refused.
//
// A group with no members (single-slot mode) keeps its offsets for the
// broker's offsets.retention.minutes (7 days by default) after the last
// commit: a relay idle for longer must commit a transaction with the same
// checkpoint now and then, or the checkpoint expires.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kafka/checkpoint.h"

namespace kafka {

struct CheckpointPlace {
  std::string group_id;
  std::string topic;
  int32_t partition = 0;

  bool operator==(const CheckpointPlace&) const = default;
};

inline constexpr std::string_view kDefaultTransactionalIdPrefix = "outbox-relay-";

// "<prefix><slot>": the same on every start and every instance, so that the
// next owner of a slot fences the previous one (init()).
std::string transactional_id_for(std::string_view prefix, std::string_view slot);

CheckpointPlace single_slot_checkpoint_place(std::string_view prefix, std::string_view slot);
CheckpointPlace group_checkpoint_place(std::string_view coordination_group,
                                       std::string_view coordination_topic, int slot_index);

// The last committed checkpoint at `place`, nullopt when none was ever
// committed. Reads with isolation.level=read_committed, so that the broker
// answers only once no transaction holds a pending commit to that offset
// (it waits for the coordinator to finish it): call it after init(), whose
// fencing aborts or completes the previous owner's open transaction.
// `properties` are the user's kafka.properties (security settings).
// Errors: malformed_checkpoint (naming the metadata), timed_out,
// unauthorized (naming the ACL to grant on the group or the checkpoint
// topic; also when the broker refuses to look up the group's coordinator),
// invalid_config.
common::Result<std::optional<Checkpoint>> read_checkpoint(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const CheckpointPlace& place, std::chrono::milliseconds timeout);

// Creates `topic` with `partitions` partitions (one per slot) and
// cleanup.policy=compact when it is missing, and returns its partition
// count. invalid_config when it exists with fewer partitions.
common::Result<int> ensure_checkpoint_topic(const std::string& brokers,
                                            const std::map<std::string, std::string>& properties,
                                            const std::string& topic, int partitions,
                                            std::chrono::milliseconds timeout);

}  // namespace kafka
