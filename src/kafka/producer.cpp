#include "kafka/producer.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>

#include "kafka/client_config.h"

namespace kafka {

namespace {

// The record's token travels as the librdkafka message opaque itself, so a
// record in flight costs no allocation of ours.
void* token_to_opaque(uint64_t token) {
  static_assert(sizeof(void*) >= sizeof(uint64_t));
  return reinterpret_cast<void*>(static_cast<uintptr_t>(token));
}

uint64_t opaque_to_token(void* opaque) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(opaque));
}

}  // namespace

std::string library_version() { return rd_kafka_version_str(); }

struct Producer::Handle {
  rd_kafka_t* rk = nullptr;
  // Topic handles by name, so that produce() skips librdkafka's locked
  // lookup by name; the last one used is checked first.
  std::unordered_map<std::string, rd_kafka_topic_t*> topics;
  const std::pair<const std::string, rd_kafka_topic_t*>* last = nullptr;

  rd_kafka_topic_t* topic(const std::string& name) {
    if (last && name == last->first) return last->second;
    auto it = topics.find(name);
    if (it == topics.end()) {
      rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, name.c_str(), nullptr);
      if (!rkt) return nullptr;
      it = topics.emplace(name, rkt).first;
    }
    last = &*it;
    return it->second;
  }

  ~Handle() {
    for (auto& [name, rkt] : topics) rd_kafka_topic_destroy(rkt);
    if (rk) rd_kafka_destroy(rk);
  }
};

relay::DeliveryStatus classify_error(int err) {
  switch (static_cast<rd_kafka_resp_err_t>(err)) {
    case RD_KAFKA_RESP_ERR_NO_ERROR:
      return relay::DeliveryStatus::kOk;
    // Records that will never be accepted as they are: retrying would spin
    // forever and pin the slot, so they go to the bad-row policy.
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return relay::DeliveryStatus::kPermanent;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
      return relay::DeliveryStatus::kFatal;
    default:
      return relay::DeliveryStatus::kRetriable;
  }
}

common::Result<std::unique_ptr<Producer>> Producer::create(const ProducerOptions& options) {
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
  auto conf = detail::new_conf(props);
  if (!conf) return conf.error();

  detail::route_logs_to_spdlog(conf->get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), [](rd_kafka_t* rk, const rd_kafka_message_t* m,
                                              void* op) { on_delivery(rk, m, op); });
  std::unique_ptr<Producer> p(new Producer());
  rd_kafka_conf_set_opaque(conf->get(), p.get());

  auto client = detail::new_client(RD_KAFKA_PRODUCER, std::move(*conf), "Kafka producer");
  if (!client) return client.error();
  rd_kafka_t* rk = *client;
  p->handle_ = std::make_unique<Handle>();
  p->handle_->rk = rk;

  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return common::Error{std::error_code(errno, std::system_category()),
                         std::string("pipe: ") + std::strerror(errno)};
  }
  p->wake_read_fd_ = fds[0];
  p->wake_write_fd_ = fds[1];
  rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk);
  rd_kafka_queue_io_event_enable(main_queue, p->wake_write_fd_, "1", 1);
  rd_kafka_queue_destroy(main_queue);
  return p;
}

Producer::~Producer() {
  if (handle_ && handle_->rk) {
    rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(handle_->rk);
    rd_kafka_queue_io_event_enable(main_queue, -1, nullptr, 0);
    rd_kafka_queue_destroy(main_queue);
    // Reports of records still queued are not wanted any more, but their
    // opaques must be freed: purge, then serve them with no callback.
    rd_kafka_purge(handle_->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    ReportFn ignore = [](const relay::DeliveryReport&) {};
    current_report_fn_ = &ignore;
    rd_kafka_flush(handle_->rk, 1000);
    current_report_fn_ = nullptr;
  }
  handle_.reset();
  if (wake_read_fd_ >= 0) close(wake_read_fd_);
  if (wake_write_fd_ >= 0) close(wake_write_fd_);
}

relay::ProduceResult Producer::produce(const relay::OutboxRecord& record, uint64_t token) {
  rd_kafka_topic_t* rkt = handle_->topic(record.topic);
  if (!rkt) {
    rd_kafka_resp_err_t err = rd_kafka_last_error();
    return {relay::ProduceOutcome::kRejected, classify_error(err), rd_kafka_err2str(err)};
  }
  rd_kafka_headers_t* headers = rd_kafka_headers_new(record.headers.size());
  for (const auto& h : record.headers) {
    rd_kafka_header_add(headers, h.key.data(), static_cast<ssize_t>(h.key.size()),
                        h.value ? h.value->data() : nullptr,
                        h.value ? static_cast<ssize_t>(h.value->size()) : 0);
  }
  const uint64_t bytes = record.payload.size() + (record.key ? record.key->size() : 0);
  const void* key_data = record.key ? record.key->data() : nullptr;
  const size_t key_size = record.key ? record.key->size() : 0;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      handle_->rk, RD_KAFKA_V_RKT(rkt),
      RD_KAFKA_V_PARTITION(record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_VALUE(const_cast<char*>(record.payload.data()), record.payload.size()),
      RD_KAFKA_V_KEY(key_data, key_size),
      RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(token_to_opaque(token)), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // On failure the headers were not taken over by librdkafka.
    rd_kafka_headers_destroy(headers);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return {relay::ProduceOutcome::kQueueFull};
    return {relay::ProduceOutcome::kRejected, classify_error(err), rd_kafka_err2str(err)};
  }
  ++in_flight_;
  in_flight_bytes_ += bytes;
  return {relay::ProduceOutcome::kQueued};
}

void Producer::on_delivery(void* /*rk*/, const void* message, void* opaque) {
  auto* self = static_cast<Producer*>(opaque);
  const auto* m = static_cast<const rd_kafka_message_t*>(message);
  --self->in_flight_;
  // librdkafka's copies have the sizes produce() counted.
  self->in_flight_bytes_ -= m->len + m->key_len;

  relay::DeliveryReport report;
  report.token = opaque_to_token(m->_private);
  report.status = classify_error(m->err);
  report.partition = m->partition;
  report.offset = m->offset;
  if (m->rkt) report.topic = rd_kafka_topic_name(m->rkt);
  if (m->err) {
    report.error = rd_kafka_err2str(m->err);
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_fatal_error(self->handle_->rk, buf, sizeof buf);
      report.error += std::string(": ") + buf;
    }
    // A failed record keeps what the bad-row policy needs to dead-letter it.
    report.record.emplace();
    if (m->rkt) report.record->topic = rd_kafka_topic_name(m->rkt);
    if (m->key) report.record->key.emplace(static_cast<const char*>(m->key), m->key_len);
    if (m->payload) report.record->payload.assign(static_cast<const char*>(m->payload), m->len);
    rd_kafka_headers_t* hdrs = nullptr;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
      const char* name;
      const void* value;
      size_t size;
      for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                         RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        relay::Header h{name, std::nullopt};
        if (value) h.value.emplace(static_cast<const char*>(value), size);
        report.record->headers.push_back(std::move(h));
      }
    }
  }
  if (self->current_report_fn_) (*self->current_report_fn_)(report);
}

void Producer::drain_wakeup_pipe() {
  char buf[256];
  while (read(wake_read_fd_, buf, sizeof buf) > 0) {
  }
}

int Producer::poll(std::chrono::milliseconds timeout, const ReportFn& on_report) {
  drain_wakeup_pipe();
  current_report_fn_ = &on_report;
  int served = rd_kafka_poll(handle_->rk, static_cast<int>(timeout.count()));
  current_report_fn_ = nullptr;
  return served;
}

void Producer::purge() {
  rd_kafka_purge(handle_->rk, RD_KAFKA_PURGE_F_QUEUE);
}

std::string Producer::fatal_error() const {
  char buf[512];
  if (rd_kafka_fatal_error(handle_->rk, buf, sizeof buf) == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return buf;
}

}  // namespace kafka
