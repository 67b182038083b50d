#include "harness/kafka_broker.h"

#include <librdkafka/rdkafka.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "harness/scripts.h"
#include "harness/wait.h"

namespace harness {
namespace {

constexpr const char* kScript = "kafka-broker.sh";
using Clock = std::chrono::steady_clock;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
};
template <typename T>
using Owned = std::unique_ptr<T, KafkaDeleter>;

// A consumer is closed without the group protocol's goodbye: it never
// joined a group, and the goodbye would wait on a broker a test may have
// frozen.
struct ConsumerDeleter {
  void operator()(rd_kafka_t* rk) const {
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
};

rd_kafka_conf_t* base_conf(const ClientSettings& client) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("librdkafka config ") + k + ": " + err);
    }
  };
  set("bootstrap.servers", client.bootstrap);
  // Tests stop and freeze the broker on purpose; its clients' reconnect
  // chatter would bury the output that matters.
  set("log_level", "2");
  set("log.connection.close", "false");
  set("client.id", "outbox-test-harness");
  for (const auto& [k, v] : client.properties) set(k.c_str(), v);
  return conf;
}

rd_kafka_conf_t* base_conf(const std::string& bootstrap) {
  return base_conf(ClientSettings{bootstrap, {}});
}

Owned<rd_kafka_t> new_client(rd_kafka_type_t type, rd_kafka_conf_t* conf) {
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return Owned<rd_kafka_t>(rk);
}

int ms(std::chrono::milliseconds d) {
  return static_cast<int>(std::max<int64_t>(0, d.count()));
}

std::chrono::milliseconds remaining(Clock::time_point end) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
}

// Partitions of `topic` that have a leader, or nullopt if the metadata does
// not (yet) show the topic.
struct TopicState {
  int partitions = 0;
  int with_leader = 0;
};

std::optional<TopicState> topic_state(rd_kafka_t* rk, const std::string& topic,
                                      std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_metadata(rk, 1, nullptr, &md, ms(timeout)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return std::nullopt;
  }
  Owned<const rd_kafka_metadata_t> owned(md);
  for (int i = 0; i < md->topic_cnt; ++i) {
    const auto& t = md->topics[i];
    if (topic != t.topic) continue;
    if (t.err != RD_KAFKA_RESP_ERR_NO_ERROR) return std::nullopt;
    TopicState s;
    s.partitions = t.partition_cnt;
    for (int p = 0; p < t.partition_cnt; ++p) {
      if (t.partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR && t.partitions[p].leader >= 0) {
        ++s.with_leader;
      }
    }
    return s;
  }
  return std::nullopt;
}

ConsumedRecord to_record(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name;
    const void* value;
    size_t size;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         ++i) {
      if (value == nullptr) {
        r.headers.emplace_back(name, std::nullopt);
      } else {
        r.headers.emplace_back(name, std::string(static_cast<const char*>(value), size));
      }
    }
  }
  rd_kafka_timestamp_type_t type;
  r.timestamp_ms = rd_kafka_message_timestamp(m, &type);
  r.timestamp_type = static_cast<int>(type);
  return r;
}

struct ReadProgress {
  size_t count = 0;
  // Every partition has reported end-of-partition since its last record.
  bool at_end = false;
  Clock::time_point last_activity;
};

// Reads `topic` from the beginning of all its partitions until `done` says
// so or `deadline` passes.
std::vector<ConsumedRecord> read_topic(const ClientSettings& client, const std::string& topic,
                                       std::chrono::milliseconds deadline,
                                       const std::function<bool(const ReadProgress&)>& done) {
  const auto end = Clock::now() + deadline;
  static std::atomic<int> serial{0};
  rd_kafka_conf_t* conf = base_conf(client);
  char err[512];
  // assign() needs a group id, but no group is joined and nothing committed.
  const std::string group =
      "outbox-test-harness-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
  for (const auto& [k, v] :
       std::vector<std::pair<const char*, std::string>>{{"group.id", group},
                                                        {"enable.auto.commit", "false"},
                                                        {"enable.auto.offset.store", "false"},
                                                        {"enable.partition.eof", "true"},
                                                        {"auto.offset.reset", "earliest"},
                                                        {"fetch.wait.max.ms", "100"}}) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("librdkafka config ") + k + ": " + err);
    }
  }
  std::unique_ptr<rd_kafka_t, ConsumerDeleter> rk(new_client(RD_KAFKA_CONSUMER, conf).release());
  rd_kafka_poll_set_consumer(rk.get());

  // The topic may not exist yet (the relay can create it on first use).
  std::optional<TopicState> state;
  harness::wait_until(
      [&] {
        state =
            topic_state(rk.get(), topic, std::max(remaining(end), std::chrono::milliseconds(1)));
        return state && state->partitions > 0;
      },
      std::max(remaining(end), std::chrono::milliseconds(0)), std::chrono::milliseconds(200));
  if (!state || state->partitions == 0) return {};

  Owned<rd_kafka_topic_partition_list_t> list(rd_kafka_topic_partition_list_new(state->partitions));
  for (int p = 0; p < state->partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_resp_err_t e = rd_kafka_assign(rk.get(), list.get())) {
    throw std::runtime_error("assign " + topic + ": " + rd_kafka_err2str(e));
  }

  std::vector<ConsumedRecord> out;
  std::set<int32_t> at_end;
  ReadProgress progress;
  progress.last_activity = Clock::now();
  while (!done(progress)) {
    const auto left = remaining(end);
    if (left.count() <= 0) break;
    Owned<rd_kafka_message_t> m(rd_kafka_consumer_poll(rk.get(), std::min(ms(left), 100)));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(m->partition);
    } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      at_end.erase(m->partition);
      out.push_back(to_record(m.get()));
      progress.last_activity = Clock::now();
    }
    // Other errors (broker away, leader moving) are retried by librdkafka;
    // the deadline bounds the wait.
    progress.count = out.size();
    progress.at_end = static_cast<int>(at_end.size()) == state->partitions;
  }
  return out;
}

}  // namespace

std::unique_ptr<KafkaBroker> KafkaBroker::start(Options options) {
  std::unique_ptr<KafkaBroker> b(new KafkaBroker());
  b->dir_ = std::make_unique<TempDir>("outbox-kafka");
  b->broker_dir_ = b->dir_->path() + "/kafka";
  std::string extra;
  for (const auto& line : options.extra_properties) extra += line + "\n";
  std::string format_args;
  for (const auto& arg : options.format_args) format_args += arg + "\n";
  b->bootstrap_ = detail::run_script(kScript, {"start", b->broker_dir_},
                                     {{"KAFKA_EXTRA_PROPS", extra},
                                      {"KAFKA_SECURE_PROTOCOL", options.secure_protocol},
                                      {"KAFKA_FORMAT_ARGS", format_args}});
  if (b->bootstrap_.rfind("127.0.0.1:", 0) != 0) {
    throw std::runtime_error("kafka-broker.sh start printed no address: " + b->bootstrap_);
  }
  if (!options.secure_protocol.empty()) {
    std::ifstream in(b->broker_dir_ + "/secure.bootstrap");
    std::getline(in, b->secure_bootstrap_);
    if (b->secure_bootstrap_.empty()) {
      throw std::runtime_error("kafka-broker.sh wrote no secure.bootstrap in " + b->broker_dir_);
    }
  }
  return b;
}

KafkaBroker::~KafkaBroker() {
  try {
    detail::run_script(kScript, {TempDir::keep_requested() ? "kill" : "destroy", broker_dir_});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harness: %s\n", e.what());
  }
}

std::string KafkaBroker::server_log() const {
  std::ifstream in(broker_dir_ + "/server.log", std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void KafkaBroker::stop() {
  detail::run_script(kScript, {"stop", broker_dir_});
}
void KafkaBroker::start_again() {
  detail::run_script(kScript, {"start-again", broker_dir_});
}
void KafkaBroker::kill() {
  detail::run_script(kScript, {"kill", broker_dir_});
}
void KafkaBroker::freeze() {
  detail::run_script(kScript, {"freeze", broker_dir_});
}
void KafkaBroker::thaw() {
  detail::run_script(kScript, {"thaw", broker_dir_});
}

void KafkaBroker::create_topic(const std::string& name, int partitions,
                               std::chrono::milliseconds deadline) {
  harness::create_topic(bootstrap_, name, partitions, deadline);
}

void create_topic(const std::string& bootstrap, const std::string& name, int partitions,
                  std::chrono::milliseconds deadline,
                  const std::map<std::string, std::string>& configs) {
  const auto end = Clock::now() + deadline;
  auto rk = new_client(RD_KAFKA_PRODUCER, base_conf(bootstrap));
  char err[512];
  Owned<rd_kafka_NewTopic_t> topic(
      rd_kafka_NewTopic_new(name.c_str(), partitions, 1, err, sizeof err));
  if (!topic) throw std::runtime_error("topic " + name + ": " + err);
  for (const auto& [key, value] : configs) {
    if (rd_kafka_NewTopic_set_config(topic.get(), key.c_str(), value.c_str()) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("topic " + name + ": config " + key);
    }
  }
  Owned<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms(deadline), err, sizeof err);
  // The broker answers once the controller has created the partitions.
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), ms(deadline), err, sizeof err);
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_NewTopic_t* topics[] = {topic.get()};
  rd_kafka_CreateTopics(rk.get(), topics, 1, options.get(), queue.get());
  Owned<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), ms(remaining(end))));
  if (!ev) throw std::runtime_error("create topic " + name + ": no answer in time");
  if (rd_kafka_event_error(ev.get())) {
    throw std::runtime_error("create topic " + name + ": " + rd_kafka_event_error_string(ev.get()));
  }
  size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev.get()), &count);
  for (size_t i = 0; i < count; ++i) {
    if (rd_kafka_topic_result_error(results[i])) {
      throw std::runtime_error("create topic " + name + ": " +
                               rd_kafka_topic_result_error_string(results[i]));
    }
  }
  // Created is not yet servable: wait until every partition has a leader in
  // the metadata that producers and consumers will see.
  const bool ready = wait_until(
      [&] {
        auto s = topic_state(rk.get(), name, std::chrono::seconds(5));
        return s && s->partitions == partitions && s->with_leader == partitions;
      },
      std::max(remaining(end), std::chrono::milliseconds(0)), std::chrono::milliseconds(100));
  if (!ready) {
    throw std::runtime_error("topic " + name + " created but its partitions have no leader");
  }
}

std::optional<int> KafkaBroker::partition_count(const std::string& topic,
                                                std::chrono::milliseconds timeout) {
  auto rk = new_client(RD_KAFKA_PRODUCER, base_conf(bootstrap_));
  auto s = topic_state(rk.get(), topic, timeout);
  if (!s) return std::nullopt;
  return s->partitions;
}

std::vector<ConsumedRecord> KafkaBroker::consume(const std::string& topic, size_t min_count,
                                                 std::chrono::milliseconds deadline) {
  return consume(ClientSettings{bootstrap_, {}}, topic, min_count, deadline);
}

std::vector<ConsumedRecord> KafkaBroker::consume(const ClientSettings& client,
                                                 const std::string& topic, size_t min_count,
                                                 std::chrono::milliseconds deadline) {
  return read_topic(client, topic, deadline,
                    [&](const ReadProgress& p) { return p.count >= min_count; });
}

std::vector<ConsumedRecord> KafkaBroker::consume_all_until_quiet(
    const std::string& topic, std::chrono::milliseconds quiet_period,
    std::chrono::milliseconds deadline) {
  // Quiet only counts once everything already in the log has been read, so
  // a slow first fetch never ends the read early.
  return read_topic(ClientSettings{bootstrap_, {}}, topic, deadline, [&](const ReadProgress& p) {
    return p.at_end && Clock::now() - p.last_activity >= quiet_period;
  });
}

}  // namespace harness
