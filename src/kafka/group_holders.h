#pragma once

// Who holds each slot of a relay group, as `outbox-relay status` shows it,
// read without joining the group.
//
// GroupMember commits offset 0 with its identity ("host/pid/id") as the
// metadata for every coordination partition it holds, once per heartbeat
// interval: the committed metadata names the last instance that held the
// slot. Whether one holds it now is the group's description
// (DescribeConsumerGroups): a member whose assignment has the partition.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace kafka {

struct SlotHolder {
  // The metadata of the group's last commit for the slot's partition;
  // nullopt when none was ever committed.
  std::optional<std::string> last_committed_by;
  // Whether a member has the partition assigned now; nullopt when the
  // group's description could not be read (describe_error says why).
  std::optional<bool> assigned;
  // The assigned member's host as the broker sees it ("/10.0.0.7").
  std::string member_host;
};

struct GroupHolders {
  std::string state;  // Stable, Empty, PreparingRebalance, ... or "unknown"
  std::string describe_error;
  std::vector<SlotHolder> slots;  // by slot index
};

// errc::unavailable when the committed offsets cannot be read in `timeout`;
// `properties` are the user's kafka.properties (security settings).
common::Result<GroupHolders> read_group_holders(const std::string& brokers,
                                                const std::map<std::string, std::string>& properties,
                                                const std::string& group_id,
                                                const std::string& coordination_topic, int slots,
                                                std::chrono::milliseconds timeout);

}  // namespace kafka
