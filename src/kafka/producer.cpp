#include "kafka/producer.h"

#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>

namespace kafka {

namespace {

struct KafkaCategory : std::error_category {
  const char* name() const noexcept override { return "kafka"; }
  std::string message(int ev) const override {
    return rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(ev));
  }
};

const std::error_category& kafka_category() {
  static KafkaCategory c;
  return c;
}

common::Error kafka_error(rd_kafka_resp_err_t err, std::string message) {
  return common::Error{std::error_code(static_cast<int>(err), kafka_category()),
                       std::move(message)};
}

// The record's token travels as the librdkafka message opaque itself, so a
// record in flight costs no allocation of ours.
void* token_to_opaque(uint64_t token) {
  static_assert(sizeof(void*) >= sizeof(uint64_t));
  return reinterpret_cast<void*>(static_cast<uintptr_t>(token));
}

uint64_t opaque_to_token(void* opaque) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(opaque));
}

// librdkafka logs with syslog levels, from its own threads; spdlog's logger
// is thread-safe, so its lines join ours in the same format instead of going
// raw to stderr.
void on_log(const rd_kafka_t* /*rk*/, int level, const char* facility, const char* message) {
  spdlog::level::level_enum lv = spdlog::level::debug;
  if (level <= 2) {
    lv = spdlog::level::critical;
  } else if (level == 3) {
    lv = spdlog::level::err;
  } else if (level == 4) {
    lv = spdlog::level::warn;
  } else if (level <= 6) {
    lv = spdlog::level::info;
  }
  spdlog::log(lv, "component=librdkafka facility={} {}", facility, message);
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

namespace {

relay::ProduceResult rejected(rd_kafka_resp_err_t err) {
  const Classified c = classify_error(err);
  return {relay::ProduceOutcome::kRejected, c.status, c.reason, rd_kafka_err2str(err)};
}

}  // namespace

common::Result<std::unique_ptr<Producer>> Producer::create(const ProducerOptions& options) {
  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto set = [&](const std::string& key, const std::string& value) -> common::Result<void> {
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return kafka_error(RD_KAFKA_RESP_ERR__INVALID_ARG,
                         "kafka property '" + key + "': " + errstr);
    }
    return {};
  };

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
  for (const auto& [k, v] : props) {
    if (auto r = set(k, v); !r) {
      rd_kafka_conf_destroy(conf);
      return r.error();
    }
  }

  rd_kafka_conf_set_log_cb(conf, on_log);
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t* rk, const rd_kafka_message_t* m, void* op) {
    on_delivery(rk, m, op);
  });
  std::unique_ptr<Producer> p(new Producer());
  rd_kafka_conf_set_opaque(conf, p.get());

  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return kafka_error(RD_KAFKA_RESP_ERR__INVALID_ARG,
                       std::string("cannot create Kafka producer: ") + errstr);
  }
  p->handle_ = std::make_unique<Handle>();
  p->handle_->rk = rk;

  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return kafka_error(RD_KAFKA_RESP_ERR__FAIL, std::string("pipe: ") + std::strerror(errno));
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
    return rejected(err);
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
    return rejected(err);
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
  const Classified classified = classify_error(m->err);
  report.status = classified.status;
  report.reason = classified.reason;
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


common::Result<bool> Producer::topic_exists(const std::string& topic,
                                           std::chrono::milliseconds timeout) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(handle_->rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(handle_->rk, 0, rkt, &md, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(rkt);
  if (err) return kafka_error(err, "metadata for topic '" + topic + "': " + rd_kafka_err2str(err));
  bool exists = md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                md->topics[0].partition_cnt > 0;
  rd_kafka_metadata_destroy(md);
  return exists;
}

common::Result<void> Producer::create_topic(const std::string& topic, int partitions,
                                           std::chrono::milliseconds timeout) {
  char errstr[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof errstr);
  if (!nt) return kafka_error(RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
  rd_kafka_queue_t* q = rd_kafka_queue_new(handle_->rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(handle_->rk, RD_KAFKA_ADMIN_OP_ANY);
  rd_kafka_AdminOptions_set_operation_timeout(opts, static_cast<int>(timeout.count()), errstr,
                                              sizeof errstr);
  rd_kafka_CreateTopics(handle_->rk, &nt, 1, opts, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, static_cast<int>(timeout.count()) + 1000);
  common::Result<void> result;
  if (!ev) {
    result = kafka_error(RD_KAFKA_RESP_ERR__TIMED_OUT, "creating topic '" + topic + "' timed out");
  } else if (rd_kafka_event_error(ev)) {
    result = kafka_error(rd_kafka_event_error(ev),
                         "creating topic '" + topic + "': " + rd_kafka_event_error_string(ev));
  } else {
    const rd_kafka_CreateTopics_result_t* res = rd_kafka_event_CreateTopics_result(ev);
    size_t n = 0;
    const rd_kafka_topic_result_t** trs = rd_kafka_CreateTopics_result_topics(res, &n);
    for (size_t i = 0; i < n; ++i) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(trs[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char* msg = rd_kafka_topic_result_error_string(trs[i]);
        result = kafka_error(e, "creating topic '" + topic + "': " + (msg ? msg : ""));
      }
    }
  }
  if (ev) rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(opts);
  rd_kafka_queue_destroy(q);
  rd_kafka_NewTopic_destroy(nt);
  return result;
}

}  // namespace kafka
