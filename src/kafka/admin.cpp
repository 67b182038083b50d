#include "kafka/admin.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <climits>
#include <functional>

#include "kafka/client_config.h"

namespace kafka {

namespace {

using std::chrono::milliseconds;

struct Deleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(rd_kafka_DeleteTopic_t* t) const { rd_kafka_DeleteTopic_destroy(t); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

int ms(milliseconds d) {
  return static_cast<int>(std::clamp<int64_t>(d.count(), 0, INT_MAX));
}

errc classify(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return errc::topic_exists;
    // The cluster is away or busy, or a partition has no leader yet (a topic
    // just created, a broker restarting): asking again may work.
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_BROKER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return errc::unavailable;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
      return errc::invalid_config;
    default:
      return errc::rejected;
  }
}

common::Error admin_error(rd_kafka_resp_err_t err, const std::string& what,
                          const char* detail = nullptr) {
  return make_error(classify(err),
                    what + ": " + (detail && *detail ? detail : rd_kafka_err2str(err)));
}

// What CreateTopics or DeleteTopics answered for each topic.
const rd_kafka_topic_result_t** topic_results(rd_kafka_event_t* ev, size_t* n) {
  if (const auto* created = rd_kafka_event_CreateTopics_result(ev)) {
    return rd_kafka_CreateTopics_result_topics(created, n);
  }
  if (const auto* deleted = rd_kafka_event_DeleteTopics_result(ev)) {
    return rd_kafka_DeleteTopics_result_topics(deleted, n);
  }
  *n = 0;
  return nullptr;
}

// One request about topics: `send` queues it with the options and the reply
// queue, then the reply is awaited a second longer than the broker may take,
// and the first topic it failed for decides.
common::Result<void> topic_request(
    rd_kafka_t* rk, rd_kafka_admin_op_t op, milliseconds timeout, const std::string& what,
    const std::function<void(rd_kafka_AdminOptions_t*, rd_kafka_queue_t*)>& send) {
  char errstr[512];
  Owned<rd_kafka_AdminOptions_t> options(rd_kafka_AdminOptions_new(rk, op));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms(timeout), errstr, sizeof errstr);
  // The broker answers once the controller has carried the operation out.
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms(timeout), errstr, sizeof errstr);
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk));
  send(options.get(), queue.get());
  Owned<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), ms(timeout) + 1000));
  if (!ev) return make_error(errc::unavailable, what + " timed out");
  if (rd_kafka_resp_err_t err = rd_kafka_event_error(ev.get())) {
    return admin_error(err, what, rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results = topic_results(ev.get(), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i])) {
      return admin_error(err, what, rd_kafka_topic_result_error_string(results[i]));
    }
  }
  return {};
}

}  // namespace

struct Admin::Handle {
  rd_kafka_t* rk = nullptr;
  ~Handle() {
    if (rk) rd_kafka_destroy(rk);
  }
};

Admin::Admin(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {}
Admin::Admin(Admin&&) noexcept = default;
Admin& Admin::operator=(Admin&&) noexcept = default;
Admin::~Admin() = default;

common::Result<Admin> Admin::create(const AdminOptions& options) {
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", options.brokers},
      {"client.id", options.client_id},
  };
  for (const auto& [k, v] : options.properties) props[k] = v;
  // A metadata request for one topic would otherwise ask the broker to
  // create it (auto.create.topics.enable) with the broker's defaults, so
  // that a check found a topic nobody configured.
  props["allow.auto.create.topics"] = "false";
  auto conf = detail::new_conf(props);
  if (!conf) return conf.error();
  detail::route_logs_to_spdlog(conf->get());
  auto client = detail::new_client(RD_KAFKA_PRODUCER, std::move(*conf), "Kafka admin client");
  if (!client) return client.error();
  auto handle = std::make_unique<Handle>();
  handle->rk = *client;
  return Admin(std::move(handle));
}

common::Result<std::optional<TopicInfo>> Admin::describe_topic(const std::string& topic,
                                                               milliseconds timeout) {
  const std::string what = "metadata for topic '" + topic + "'";
  Owned<rd_kafka_topic_t> rkt(rd_kafka_topic_new(handle_->rk, topic.c_str(), nullptr));
  if (!rkt) return admin_error(rd_kafka_last_error(), what);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(handle_->rk, 0, rkt.get(), &md, ms(timeout));
  if (err) return admin_error(err, what);
  Owned<const rd_kafka_metadata_t> owned(md);
  if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::optional<TopicInfo>();
  }
  const rd_kafka_metadata_topic_t& t = md->topics[0];
  TopicInfo info;
  info.partitions = t.partition_cnt;
  for (int p = 0; p < t.partition_cnt; ++p) {
    if (t.partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partitions[p].leader >= 0) {
      ++info.partitions_with_leader;
    }
  }
  return std::optional<TopicInfo>(info);
}

common::Result<bool> Admin::topic_exists(const std::string& topic, milliseconds timeout) {
  auto info = describe_topic(topic, timeout);
  if (!info) return info.error();
  return info->has_value() && (*info)->partitions > 0;
}

common::Result<int> Admin::partition_count(const std::string& topic, milliseconds timeout) {
  auto info = describe_topic(topic, timeout);
  if (!info) return info.error();
  return info->has_value() ? (*info)->partitions : 0;
}

common::Result<void> Admin::create_topic(const NewTopic& topic, milliseconds timeout) {
  const std::string what = "creating topic '" + topic.name + "'";
  char errstr[512];
  Owned<rd_kafka_NewTopic_t> nt(rd_kafka_NewTopic_new(
      topic.name.c_str(), topic.partitions, topic.replication_factor, errstr, sizeof errstr));
  if (!nt) return make_error(errc::invalid_config, what + ": " + errstr);
  for (const auto& [key, value] : topic.configs) {
    if (rd_kafka_resp_err_t err =
            rd_kafka_NewTopic_set_config(nt.get(), key.c_str(), value.c_str())) {
      return admin_error(err, what + ": config " + key);
    }
  }
  rd_kafka_NewTopic_t* topics[] = {nt.get()};
  return topic_request(handle_->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout, what,
                       [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                         rd_kafka_CreateTopics(handle_->rk, topics, 1, options, queue);
                       });
}

common::Result<void> Admin::delete_topic(const std::string& topic, milliseconds timeout) {
  const std::string what = "deleting topic '" + topic + "'";
  Owned<rd_kafka_DeleteTopic_t> dt(rd_kafka_DeleteTopic_new(topic.c_str()));
  rd_kafka_DeleteTopic_t* topics[] = {dt.get()};
  return topic_request(handle_->rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout, what,
                       [&](rd_kafka_AdminOptions_t* options, rd_kafka_queue_t* queue) {
                         rd_kafka_DeleteTopics(handle_->rk, topics, 1, options, queue);
                       });
}

common::Result<Watermarks> Admin::watermarks(const std::string& topic, int partition,
                                             milliseconds timeout) {
  Watermarks w;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(handle_->rk, topic.c_str(), partition,
                                                             &w.low, &w.high, ms(timeout));
  if (err) return admin_error(err, "watermarks of " + topic + "/" + std::to_string(partition));
  return w;
}

common::Result<void> Admin::ping(milliseconds timeout) {
  // No topic handle of this client exists, so librdkafka asks for brokers
  // only; it waits for a usable broker within the same timeout.
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(handle_->rk, 0, nullptr, &md, ms(timeout));
  if (err) {
    return make_error(errc::unavailable, std::string("no Kafka broker answered within ") +
                                             std::to_string(timeout.count()) +
                                             " ms: " + rd_kafka_err2str(err));
  }
  rd_kafka_metadata_destroy(md);
  return {};
}

}  // namespace kafka
