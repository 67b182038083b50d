#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "harness/temp_dir.h"

namespace harness {

struct ConsumedRecord {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::optional<std::string> key;  // nullopt: null key
  std::string value;               // a null value reads as empty
  bool value_null = false;         // a null value (a tombstone)
  // In record order; a null header value is nullopt.
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  int64_t timestamp_ms = -1;
  int timestamp_type = 0;  // rd_kafka_timestamp_type_t: 1 create time, 2 log append time
};

// How a harness client reaches a broker: its bootstrap address and any
// librdkafka properties on top of the harness's own (security.protocol,
// sasl.*, ssl.* for a secured listener).
struct ClientSettings {
  std::string bootstrap;
  std::map<std::string, std::string> properties;
};

// A throwaway single-node Kafka broker (KRaft) on free ports, loopback unless
// told otherwise
// (tests/harness/kafka-broker.sh). Topics are never auto-created.
class KafkaBroker {
 public:
  struct Options {
    // server.properties lines added after the harness's own settings.
    std::vector<std::string> extra_properties;
    // SSL, SASL_SSL or SASL_PLAINTEXT: a second client listener named SECURE
    // with that protocol (see secure_bootstrap()); its settings go into
    // extra_properties as listener.name.secure.*. Empty: none.
    std::string secure_protocol;
    // Extra arguments of the storage format step, e.g. {"--add-scram",
    // "SCRAM-SHA-512=[name=relay,password=...]"} to create SASL/SCRAM users.
    std::vector<std::string> format_args;
    // The address the client listeners bind and advertise; clients in other
    // network namespaces need one they can route to.
    std::string listen_address = "127.0.0.1";
  };

  // Throws std::runtime_error with the broker's log tail if it cannot start.
  static std::unique_ptr<KafkaBroker> start(Options options);
  static std::unique_ptr<KafkaBroker> start() { return start(Options{}); }
  ~KafkaBroker();
  KafkaBroker(const KafkaBroker&) = delete;
  KafkaBroker& operator=(const KafkaBroker&) = delete;

  // "<listen_address>:<port>"; the same across stop/start_again and kill.
  const std::string& bootstrap() const { return bootstrap_; }
  // "<listen_address>:<port>" of the SECURE listener; empty without one.
  const std::string& secure_bootstrap() const { return secure_bootstrap_; }
  const std::string& dir() const { return broker_dir_; }
  std::string server_log() const;

  // Clean shutdown (SIGTERM; SIGKILL if it does not end in 30 s).
  void stop();
  // After stop() or kill(): same ports and data; returns once it serves.
  void start_again();
  void kill();
  // SIGSTOP / SIGCONT: a broker that hangs with its connections open.
  void freeze();
  void thaw();

  // Creates the topic (replication factor 1) and returns once metadata shows
  // every partition with a leader. Throws if creation fails, including when
  // the topic exists.
  void create_topic(const std::string& name, int partitions,
                    std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // Reads `topic` from the beginning of every partition with a fresh
  // consumer (assigned partitions, no group membership, no commits) until
  // `min_count` records have arrived or `deadline` has passed; returns what
  // it read either way, in arrival order (offset order within a partition).
  std::vector<ConsumedRecord> consume(const std::string& topic, size_t min_count,
                                      std::chrono::milliseconds deadline);
  // The same through `client`, e.g. the SECURE listener with credentials.
  std::vector<ConsumedRecord> consume(const ClientSettings& client, const std::string& topic,
                                      size_t min_count, std::chrono::milliseconds deadline);

  // Reads `topic` from the beginning until no record has arrived for
  // `quiet_period`, or `deadline` has passed.
  std::vector<ConsumedRecord> consume_all_until_quiet(const std::string& topic,
                                                      std::chrono::milliseconds quiet_period,
                                                      std::chrono::milliseconds deadline);
  // The same through `client`, e.g. with isolation.level=read_committed.
  std::vector<ConsumedRecord> consume_all_until_quiet(const ClientSettings& client,
                                                      const std::string& topic,
                                                      std::chrono::milliseconds quiet_period,
                                                      std::chrono::milliseconds deadline);

  // Runs Kafka's kafka-acls (kafka.admin.AclCommand) with `args` against
  // the PLAINTEXT listener, e.g. {"--add", "--allow-principal", "User:relay",
  // "--operation", "Write", "--topic", "events"}. With an authorizer
  // configured, that listener's principal (User:ANONYMOUS) must be a super
  // user. Throws with the tool's output if it fails.
  void acl(const std::vector<std::string>& args);
  // Sets one of `topic`'s settings on the running broker with Kafka's
  // kafka-configs (kafka.admin.ConfigCommand), as an operator would.
  void alter_topic_config(const std::string& topic, const std::string& key,
                          const std::string& value);

  // Partition count of `topic` from the broker's metadata; nullopt if the
  // broker does not know the topic.
  std::optional<int> partition_count(const std::string& topic,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  KafkaBroker() = default;

  std::unique_ptr<TempDir> dir_;
  std::string broker_dir_;
  std::string bootstrap_;
  std::string secure_bootstrap_;
  int on_signal_ = 0;
};

// Creates a topic with replication factor 1 and the given topic-level
// configs (e.g. message.timestamp.type) and waits until every partition has
// a leader; throws std::runtime_error on failure.
void create_topic(const std::string& bootstrap, const std::string& name, int partitions,
                  std::chrono::milliseconds deadline = std::chrono::seconds(30),
                  const std::map<std::string, std::string>& configs = {});

}  // namespace harness
