#include "kafka/producer_core.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "kafka/client_config.h"
#include "kafka/producer.h"

namespace kafka::detail {

namespace {

struct KafkaCategory : std::error_category {
  const char* name() const noexcept override { return "kafka"; }
  std::string message(int ev) const override {
    return rd_kafka_err2str(static_cast<rd_kafka_resp_err_t>(ev));
  }
};

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

const std::error_category& kafka_category() {
  static KafkaCategory c;
  return c;
}

common::Error kafka_error(rd_kafka_resp_err_t err, std::string message) {
  return common::Error{std::error_code(static_cast<int>(err), kafka_category()),
                       std::move(message)};
}

common::Result<std::optional<int>> partition_count(rd_kafka_t* rk, const std::string& topic,
                                                   std::chrono::milliseconds timeout) {
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, topic.c_str(), nullptr);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(rkt);
  if (err) return kafka_error(err, "metadata for topic '" + topic + "': " + rd_kafka_err2str(err));
  std::optional<int> count;
  if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
      md->topics[0].partition_cnt > 0) {
    count = md->topics[0].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return count;
}

common::Result<std::optional<int>> await_partitions(rd_kafka_t* rk, const std::string& topic,
                                                    int at_least,
                                                    std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    // Each ask gets a second at least, so that the last one, near the
    // deadline, still has time for an answer.
    auto count = partition_count(rk, topic, std::max(left, std::chrono::milliseconds(1000)));
    if (!count || (count->has_value() && **count >= at_least) ||
        left <= std::chrono::milliseconds(100)) {
      return count;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

common::Result<void> create_topic(rd_kafka_t* rk, const std::string& topic, int partitions,
                                  const Properties& configs, std::chrono::milliseconds timeout) {
  char errstr[512];
  rd_kafka_NewTopic_t* nt =
      rd_kafka_NewTopic_new(topic.c_str(), partitions, -1, errstr, sizeof errstr);
  if (!nt) return kafka_error(RD_KAFKA_RESP_ERR__INVALID_ARG, errstr);
  for (const auto& [key, value] : configs) {
    if (rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt, key.c_str(), value.c_str())) {
      rd_kafka_NewTopic_destroy(nt);
      return kafka_error(e, "topic '" + topic + "': config " + key + "=" + value);
    }
  }
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t* opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_ANY);
  rd_kafka_AdminOptions_set_operation_timeout(opts, static_cast<int>(timeout.count()), errstr,
                                              sizeof errstr);
  rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
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

relay::ProduceResult produce_result(rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return {relay::ProduceOutcome::kQueued};
  if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) return {relay::ProduceOutcome::kQueueFull};
  const Classified c = classify_error(err);
  return {relay::ProduceOutcome::kRejected, c.status, c.reason, rd_kafka_err2str(err)};
}

common::Result<std::unique_ptr<ProducerCore>> ProducerCore::create(const Properties& properties,
                                                                   const std::string& what) {
  std::unique_ptr<ProducerCore> core(new ProducerCore());
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return kafka_error(RD_KAFKA_RESP_ERR__FAIL, std::string("pipe: ") + std::strerror(errno));
  }
  core->wake_read_fd_ = fds[0];
  core->wake_write_fd_ = fds[1];
  if (auto r = core->open(properties, what); !r) return r.error();
  return core;
}

common::Result<std::unique_ptr<ProducerCore>> ProducerCore::replace(
    std::unique_ptr<ProducerCore> old, const Properties& properties, const std::string& what) {
  OUTBOX_ASSERT(old->in_flight_ == 0);
  old->close_handle();
  std::unique_ptr<ProducerCore> core(new ProducerCore());
  core->wake_read_fd_ = std::exchange(old->wake_read_fd_, -1);
  core->wake_write_fd_ = std::exchange(old->wake_write_fd_, -1);
  core->held_ = std::move(old->held_);
  if (auto r = core->open(properties, what); !r) return r.error();
  if (!core->held_.empty()) core->signal_wakeup();
  return core;
}

common::Result<void> ProducerCore::open(const Properties& properties, const std::string& what) {
  auto conf = new_conf(properties);
  if (!conf) return conf.error();
  route_logs_to_spdlog(conf->get());
  rd_kafka_conf_set_dr_msg_cb(conf->get(), on_delivery);
  rd_kafka_conf_set_opaque(conf->get(), this);
  auto client = new_client(RD_KAFKA_PRODUCER, std::move(*conf), what);
  if (!client) return client.error();
  rk_ = *client;
  // librdkafka's main queue writes to the pipe when it turns non-empty, so
  // the relay's poll() loop can wait on it beside the libpq socket.
  rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk_);
  rd_kafka_queue_io_event_enable(main_queue, wake_write_fd_, "1", 1);
  rd_kafka_queue_destroy(main_queue);
  return {};
}

// Reports of records still queued are served (held, or dropped when
// discard_reports_ says nobody wants them) so that their opaques are freed.
void ProducerCore::close_handle() {
  if (!rk_) return;
  rd_kafka_queue_t* main_queue = rd_kafka_queue_get_main(rk_);
  rd_kafka_queue_io_event_enable(main_queue, -1, nullptr, 0);
  rd_kafka_queue_destroy(main_queue);
  rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
  rd_kafka_flush(rk_, 1000);
  for (auto& [name, rkt] : topics_) rd_kafka_topic_destroy(rkt);
  topics_.clear();
  last_topic_ = nullptr;
  rd_kafka_destroy(rk_);
  rk_ = nullptr;
}

ProducerCore::~ProducerCore() {
  discard_reports_ = true;
  close_handle();
  if (wake_read_fd_ >= 0) close(wake_read_fd_);
  if (wake_write_fd_ >= 0) close(wake_write_fd_);
}

rd_kafka_topic_t* ProducerCore::topic(const std::string& name) {
  if (last_topic_ && name == last_topic_->first) return last_topic_->second;
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk_, name.c_str(), nullptr);
    if (!rkt) return nullptr;
    it = topics_.emplace(name, rkt).first;
  }
  last_topic_ = &*it;
  return it->second;
}

rd_kafka_resp_err_t ProducerCore::produce(const relay::OutboxRecord& record, uint64_t token) {
  rd_kafka_topic_t* rkt = topic(record.topic);
  if (!rkt) return rd_kafka_last_error();
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
      rk_, RD_KAFKA_V_RKT(rkt),
      RD_KAFKA_V_PARTITION(record.partition < 0 ? RD_KAFKA_PARTITION_UA : record.partition),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_VALUE(record.null_value ? nullptr : const_cast<char*>(record.payload.data()),
                       record.null_value ? 0 : record.payload.size()),
      RD_KAFKA_V_KEY(key_data, key_size), RD_KAFKA_V_HEADERS(headers),
      RD_KAFKA_V_OPAQUE(token_to_opaque(token)), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // On failure the headers were not taken over by librdkafka.
    rd_kafka_headers_destroy(headers);
    return err;
  }
  ++in_flight_;
  in_flight_bytes_ += bytes;
  return RD_KAFKA_RESP_ERR_NO_ERROR;
}

void ProducerCore::on_delivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* m, void* opaque) {
  static_cast<ProducerCore*>(opaque)->deliver(m);
}

void ProducerCore::deliver(const rd_kafka_message_t* m) {
  --in_flight_;
  // librdkafka's copies have the sizes produce() counted.
  in_flight_bytes_ -= m->len + m->key_len;
  if (m->err && first_failure_ == RD_KAFKA_RESP_ERR_NO_ERROR) {
    first_failure_ = m->err;
    first_failure_detail_ = std::string(rd_kafka_err2str(m->err)) + " (a record to " +
                            (m->rkt ? rd_kafka_topic_name(m->rkt) : "?") + " [" +
                            std::to_string(m->partition) + "])";
  }
  if (discard_reports_) return;

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
      rd_kafka_fatal_error(rk_, buf, sizeof buf);
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
      for (size_t i = 0;
           rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
           ++i) {
        relay::Header h{name, std::nullopt};
        if (value) h.value.emplace(static_cast<const char*>(value), size);
        report.record->headers.push_back(std::move(h));
      }
    }
  }
  if (current_report_fn_) {
    (*current_report_fn_)(report);
    return;
  }
  // Served outside poll(): inside a transaction's commit or abort, which
  // flush. The report waits for the next poll(), as the interface promises,
  // and the pipe says there is one.
  HeldReport& held = held_.emplace_back();
  held.topic = std::string(report.topic);
  held.report = std::move(report);
  held.report.topic = {};
  signal_wakeup();
}

void drain_pipe(int fd) {
  char buf[256];
  while (read(fd, buf, sizeof buf) > 0) {
  }
}

void ProducerCore::drain_wakeup_pipe() {
  drain_pipe(wake_read_fd_);
}

void ProducerCore::signal_wakeup() {
  // A full pipe is readable already.
  [[maybe_unused]] ssize_t n = write(wake_write_fd_, "1", 1);
}

int ProducerCore::poll(std::chrono::milliseconds timeout, const ReportFn& on_report) {
  drain_wakeup_pipe();
  int served = 0;
  if (!held_.empty()) {
    serving_.swap(held_);
    for (HeldReport& h : serving_) {
      h.report.topic = h.topic;
      on_report(h.report);
      ++served;
    }
    serving_.clear();
    timeout = std::chrono::milliseconds(0);
  }
  current_report_fn_ = &on_report;
  served += rd_kafka_poll(rk_, static_cast<int>(timeout.count()));
  current_report_fn_ = nullptr;
  return served;
}

std::string ProducerCore::fatal_error() const {
  char buf[512];
  if (rd_kafka_fatal_error(rk_, buf, sizeof buf) == RD_KAFKA_RESP_ERR_NO_ERROR) return {};
  return buf;
}

}  // namespace kafka::detail
