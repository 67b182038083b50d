#include "kafka/producer.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>

#include "kafka/producer_core.h"


namespace kafka {

std::string library_version() {
  return rd_kafka_version_str();
}

Classified classify_error(int err) {
  using relay::DeliveryReason;
  using relay::DeliveryStatus;
  switch (static_cast<rd_kafka_resp_err_t>(err)) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return {DeliveryStatus::kOk, DeliveryReason::kNone};
    // Records that will never be accepted as they are: retrying would spin
    // forever and pin the slot, so they go to the bad-row policy.
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
      return {DeliveryStatus::kPermanent, DeliveryReason::kTooLarge};
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return {DeliveryStatus::kPermanent, DeliveryReason::kOther};
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      return {DeliveryStatus::kPermanent, DeliveryReason::kAuthorization};
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return {DeliveryStatus::kPermanent, DeliveryReason::kUnknownTopic};
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return {DeliveryStatus::kFatal, DeliveryReason::kAuthorization};
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR__FENCED:
      return {DeliveryStatus::kFatal, DeliveryReason::kFenced};
    case RD_KAFKA_RESP_ERR__FATAL:
      return {DeliveryStatus::kFatal, DeliveryReason::kOther};
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return {DeliveryStatus::kRetriable, DeliveryReason::kTimeout};
    default:
      return {DeliveryStatus::kRetriable, DeliveryReason::kOther};
  }
}

std::map<std::string, std::string> producer_properties(const ProducerOptions& options) {
  // Our queue must hold at least what the relay's limits let in flight, or
  // produce() would report a full queue before backpressure engages.
  const uint64_t queue_messages = std::max<uint64_t>(options.max_inflight_messages + 1000, 10000);
  const uint64_t queue_kbytes =
      std::min<uint64_t>(options.max_inflight_bytes / 1024 + 65536, 2097151);
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      // The Java client's default partitioner, so that keys land where Java
      // producers and Kafka Streams expect them.
      {"partitioner", "murmur2_random"},
      {"linger.ms", "5"},
      {"batch.num.messages", "10000"},
      {"compression.type", "lz4"},
      {"queue.buffering.max.messages", std::to_string(queue_messages)},
      {"queue.buffering.max.kbytes", std::to_string(queue_kbytes)},
      {"topic.metadata.propagation.max.ms", "10000"},
  };
  for (const auto& [k, v] : options.properties) props[k] = v;
  return props;
}

common::Result<std::unique_ptr<Producer>> Producer::create(const ProducerOptions& options) {
  auto core = detail::ProducerCore::create(producer_properties(options), "Kafka producer");
  if (!core) return core.error();
  std::unique_ptr<Producer> p(new Producer());
  p->core_ = std::move(*core);
  return p;
}

Producer::~Producer() = default;

relay::ProduceResult Producer::produce(const relay::OutboxRecord& record, uint64_t token) {
  return detail::produce_result(core_->produce(record, token));
}

int Producer::poll(std::chrono::milliseconds timeout, const ReportFn& on_report) {
  return core_->poll(timeout, on_report);
}

int Producer::wakeup_fd() const {
  return core_->wakeup_fd();
}
size_t Producer::in_flight() const {
  return core_->in_flight();
}
uint64_t Producer::in_flight_bytes() const {
  return core_->in_flight_bytes();
}

void Producer::purge() {
  rd_kafka_purge(core_->rk(), RD_KAFKA_PURGE_F_QUEUE);
}


}  // namespace kafka
