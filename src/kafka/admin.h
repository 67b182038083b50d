#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "kafka/errc.h"

namespace kafka {

struct AdminOptions {
  std::string brokers;
  // The user's kafka.properties (security.protocol, sasl.*, ssl.*), applied
  // after the admin's own settings.
  std::map<std::string, std::string> properties;
  std::string client_id = "outbox-relay-admin";
};

// What the cluster's metadata says of one topic.
struct TopicInfo {
  int partitions = 0;
  int partitions_with_leader = 0;
};

struct NewTopic {
  std::string name;
  int partitions = 1;
  int replication_factor = -1;                 // -1: the broker's default.replication.factor
  std::map<std::string, std::string> configs;  // topic-level, e.g. cleanup.policy
};

// The low and high watermark of one partition: high - low records for a
// topic written without transactions.
struct Watermarks {
  int64_t low = 0;
  int64_t high = 0;
};

// Topic checks and creation for the relay, the group member and the test
// harness, over a client of its own that lives as long as the Admin. Every
// request blocks the caller for at most its timeout; failures come back as
// kafka::errc, decided from librdkafka's code (errc::unavailable for the
// cluster not answering or a partition without a leader yet, so the caller
// may ask again).
class Admin {
 public:
  static common::Result<Admin> create(const AdminOptions& options);
  Admin(Admin&&) noexcept;
  Admin& operator=(Admin&&) noexcept;
  ~Admin();

  // nullopt when the metadata has no usable entry for the topic: unknown to
  // the cluster, or an error for that topic alone.
  common::Result<std::optional<TopicInfo>> describe_topic(const std::string& topic,
                                                          std::chrono::milliseconds timeout);
  // True when the topic exists with at least one partition.
  common::Result<bool> topic_exists(const std::string& topic, std::chrono::milliseconds timeout);
  // The topic's partition count; 0 when it does not exist.
  common::Result<int> partition_count(const std::string& topic, std::chrono::milliseconds timeout);
  // Returns once the controller has created it (the operation timeout), not
  // once every broker's metadata shows it. errc::topic_exists when it is
  // already there.
  common::Result<void> create_topic(const NewTopic& topic, std::chrono::milliseconds timeout);
  common::Result<void> delete_topic(const std::string& topic, std::chrono::milliseconds timeout);
  common::Result<Watermarks> watermarks(const std::string& topic, int partition,
                                        std::chrono::milliseconds timeout);
  // A metadata request for the broker list only: ok once a broker answered
  // within `timeout` (a round trip, not a connection still open from before),
  // errc::unavailable when none did.
  common::Result<void> ping(std::chrono::milliseconds timeout);

 private:
  struct Handle;
  explicit Admin(std::unique_ptr<Handle> handle);

  std::unique_ptr<Handle> handle_;
};

}  // namespace kafka
