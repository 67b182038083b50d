#pragma once

// What the idempotent Producer and the TransactionalProducer share: the
// librdkafka handle, the topic-handle cache, the wakeup pipe, in-flight
// accounting and the delivery reports. Internal to src/kafka: it includes
// librdkafka, which the public headers do not.

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <unordered_map>

#include "common/result.h"
#include "relay/publisher.h"

namespace kafka::detail {

const std::error_category& kafka_category();
common::Error kafka_error(rd_kafka_resp_err_t err, std::string message);

using Properties = std::map<std::string, std::string>;

// The partition count of `topic`, nullopt when the cluster does not know it.
common::Result<std::optional<int>> partition_count(rd_kafka_t* rk, const std::string& topic,
                                                   std::chrono::milliseconds timeout);

// partition_count(), asked again every 100 ms while the topic is missing or
// has fewer than `at_least` partitions, until `timeout` (the last ask may
// take up to a second beyond it): a topic just
// created (here or by another instance) takes a moment to show in the
// metadata.
common::Result<std::optional<int>> await_partitions(rd_kafka_t* rk, const std::string& topic,
                                                    int at_least,
                                                    std::chrono::milliseconds timeout);

// Creates `topic` with the broker's replication factor and the given topic
// configs. A topic that already exists is not an error.
common::Result<void> create_topic(rd_kafka_t* rk, const std::string& topic, int partitions,
                                  const Properties& configs, std::chrono::milliseconds timeout);

// Reads whatever a non-blocking pipe holds, so that poll(2) on it waits for
// the next write; safe from any thread.
void drain_pipe(int fd);

// A delivery report whose topic outlives librdkafka's message: one served
// while no poll() was running waits here for the next poll().
struct HeldReport {
  relay::DeliveryReport report;
  std::string topic;
};

class ProducerCore {
 public:
  using ReportFn = relay::Publisher::ReportFn;

  // `properties` are complete (ours and the user's, merged by the caller).
  // `what` names the producer in errors ("Kafka producer").
  static common::Result<std::unique_ptr<ProducerCore>> create(const Properties& properties,
                                                              const std::string& what);
  // A new librdkafka handle in place of `old`'s, which is destroyed first:
  // the wakeup pipe (so wakeup_fd() stays the same for the caller's loop)
  // and the reports `old` held carry over. `old` must have nothing in
  // flight.
  static common::Result<std::unique_ptr<ProducerCore>> replace(std::unique_ptr<ProducerCore> old,
                                                               const Properties& properties,
                                                               const std::string& what);
  ~ProducerCore();
  ProducerCore(const ProducerCore&) = delete;
  ProducerCore& operator=(const ProducerCore&) = delete;

  rd_kafka_t* rk() const { return rk_; }

  // Hands the record to librdkafka; NO_ERROR when it was queued. On success
  // the record counts as in flight until its report.
  rd_kafka_resp_err_t produce(const relay::OutboxRecord& record, uint64_t token);

  // Serves reports held since the last poll(), then librdkafka's queue.
  int poll(std::chrono::milliseconds timeout, const ReportFn& on_report);
  int wakeup_fd() const { return wake_read_fd_; }
  // Makes wakeup_fd() readable, from any thread.
  void wake() { signal_wakeup(); }
  size_t in_flight() const { return in_flight_; }
  uint64_t in_flight_bytes() const { return in_flight_bytes_; }
  // A fatal producer error (idempotence broken, fenced), or empty.
  std::string fatal_error() const;

  // The error of the first failed delivery since the last reset. librdkafka
  // serves reports inside commit and abort as well (they flush), so this is
  // how the transactional producer learns why a transaction must abort.
  rd_kafka_resp_err_t first_failure() const { return first_failure_; }
  const std::string& first_failure_detail() const { return first_failure_detail_; }
  void reset_first_failure() {
    first_failure_ = RD_KAFKA_RESP_ERR_NO_ERROR;
    first_failure_detail_.clear();
  }

 private:
  ProducerCore() = default;
  common::Result<void> open(const Properties& properties, const std::string& what);
  void close_handle();
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  void deliver(const rd_kafka_message_t* m);
  rd_kafka_topic_t* topic(const std::string& name);
  void drain_wakeup_pipe();
  void signal_wakeup();

  rd_kafka_t* rk_ = nullptr;
  // Topic handles by name, so that produce() skips librdkafka's locked
  // lookup by name; the last one used is checked first.
  std::unordered_map<std::string, rd_kafka_topic_t*> topics_;
  const std::pair<const std::string, rd_kafka_topic_t*>* last_topic_ = nullptr;
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  size_t in_flight_ = 0;
  uint64_t in_flight_bytes_ = 0;
  const ReportFn* current_report_fn_ = nullptr;
  std::vector<HeldReport> held_;
  // held_'s reports while poll() serves them; kept for its capacity.
  std::vector<HeldReport> serving_;
  bool discard_reports_ = false;
  rd_kafka_resp_err_t first_failure_ = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string first_failure_detail_;
};

relay::ProduceResult produce_result(rd_kafka_resp_err_t err);

}  // namespace kafka::detail
