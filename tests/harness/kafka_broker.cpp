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
#include "harness/signal_cleanup.h"
#include "harness/wait.h"
#include "kafka/admin.h"

namespace harness {
namespace {

constexpr const char* kScript = "kafka-broker.sh";
using Clock = std::chrono::steady_clock;

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
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

// The harness's settings for every client it makes, then the caller's.
std::map<std::string, std::string> client_properties(const ClientSettings& client) {
  std::map<std::string, std::string> props = {
      {"bootstrap.servers", client.bootstrap},
      // Tests stop and freeze the broker on purpose; its clients' reconnect
      // chatter would bury the output that matters.
      {"log_level", "2"},
      {"log.connection.close", "false"},
      {"client.id", "outbox-test-harness"},
  };
  for (const auto& [k, v] : client.properties) props[k] = v;
  return props;
}

// `extra` after both.
rd_kafka_conf_t* base_conf(const ClientSettings& client,
                           const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> props = client_properties(client);
  for (const auto& [k, v] : extra) props[k] = v;
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error("librdkafka config " + k + ": " + err);
    }
  }
  return conf;
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

kafka::Admin new_admin(const ClientSettings& client) {
  auto admin = kafka::Admin::create({client.bootstrap, client_properties(client)});
  if (!admin) throw std::runtime_error(admin.error().describe());
  return std::move(admin).value();
}

// The topic's metadata, or nullopt while the cluster does not show it (or
// does not answer).
std::optional<kafka::TopicInfo> topic_state(kafka::Admin& admin, const std::string& topic,
                                            std::chrono::milliseconds timeout) {
  auto info = admin.describe_topic(topic, timeout);
  return info ? *info : std::nullopt;
}

ConsumedRecord to_record(const rd_kafka_message_t* m) {
  ConsumedRecord r;
  r.topic = rd_kafka_topic_name(m->rkt);
  r.partition = m->partition;
  r.offset = m->offset;
  if (m->key != nullptr) r.key = std::string(static_cast<const char*>(m->key), m->key_len);
  if (m->payload != nullptr) r.value.assign(static_cast<const char*>(m->payload), m->len);
  r.value_null = m->payload == nullptr;
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
  // assign() needs a group id, but no group is joined and nothing committed.
  const std::string group =
      "outbox-test-harness-" + std::to_string(::getpid()) + "-" + std::to_string(++serial);
  rd_kafka_conf_t* conf = base_conf(client, {{"group.id", group},
                                             {"enable.auto.commit", "false"},
                                             {"enable.auto.offset.store", "false"},
                                             {"enable.partition.eof", "true"},
                                             {"auto.offset.reset", "earliest"},
                                             {"fetch.wait.max.ms", "100"}});
  std::unique_ptr<rd_kafka_t, ConsumerDeleter> rk(new_client(RD_KAFKA_CONSUMER, conf).release());
  rd_kafka_poll_set_consumer(rk.get());

  // The topic may not exist yet (the relay can create it on first use).
  kafka::Admin admin = new_admin(client);
  std::optional<kafka::TopicInfo> state;
  harness::wait_until(
      [&] {
        state = topic_state(admin, topic, std::max(remaining(end), std::chrono::milliseconds(1)));
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
  b->on_signal_ = detail::run_on_signal({detail::script_path(kScript),
                                         TempDir::keep_requested() ? "kill" : "destroy",
                                         b->broker_dir_});
  std::string extra;
  for (const auto& line : options.extra_properties) extra += line + "\n";
  std::string format_args;
  for (const auto& arg : options.format_args) format_args += arg + "\n";
  b->bootstrap_ = detail::run_script(kScript, {"start", b->broker_dir_},
                                     {{"KAFKA_EXTRA_PROPS", extra},
                                      {"KAFKA_SECURE_PROTOCOL", options.secure_protocol},
                                      {"KAFKA_FORMAT_ARGS", format_args},
                                      {"KAFKA_LISTEN_ADDRESS", options.listen_address}});
  if (b->bootstrap_.rfind(options.listen_address + ":", 0) != 0) {
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
  detail::forget_on_signal(on_signal_);
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

void KafkaBroker::acl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"acl", broker_dir_};
  argv.insert(argv.end(), args.begin(), args.end());
  detail::run_script(kScript, argv);
}

void KafkaBroker::alter_topic_config(const std::string& topic, const std::string& key,
                                     const std::string& value) {
  detail::run_script(kScript, {"configs", broker_dir_, "--alter", "--entity-type", "topics",
                               "--entity-name", topic, "--add-config", key + "=" + value});
}

void KafkaBroker::create_topic(const std::string& name, int partitions,
                               std::chrono::milliseconds deadline) {
  harness::create_topic(bootstrap_, name, partitions, deadline);
}

void create_topic(const std::string& bootstrap, const std::string& name, int partitions,
                  std::chrono::milliseconds deadline,
                  const std::map<std::string, std::string>& configs) {
  const auto end = Clock::now() + deadline;
  kafka::Admin admin = new_admin(ClientSettings{bootstrap, {}});
  if (auto r = admin.create_topic(kafka::NewTopic{name, partitions, 1, configs}, deadline); !r) {
    throw std::runtime_error(r.error().describe());
  }
  // Created is not yet servable: wait until every partition has a leader in
  // the metadata that producers and consumers will see.
  const bool ready = wait_until(
      [&] {
        auto s = topic_state(admin, name, std::chrono::seconds(5));
        return s && s->partitions == partitions && s->partitions_with_leader == partitions;
      },
      std::max(remaining(end), std::chrono::milliseconds(0)), std::chrono::milliseconds(100));
  if (!ready) {
    throw std::runtime_error("topic " + name + " created but its partitions have no leader");
  }
}

std::optional<int> KafkaBroker::partition_count(const std::string& topic,
                                                std::chrono::milliseconds timeout) {
  kafka::Admin admin = new_admin(ClientSettings{bootstrap_, {}});
  auto s = topic_state(admin, topic, timeout);
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
  return consume_all_until_quiet(ClientSettings{bootstrap_, {}}, topic, quiet_period, deadline);
}

std::vector<ConsumedRecord> KafkaBroker::consume_all_until_quiet(
    const ClientSettings& client, const std::string& topic, std::chrono::milliseconds quiet_period,
    std::chrono::milliseconds deadline) {
  // Quiet only counts once everything already in the log has been read, so
  // a slow first fetch never ends the read early.
  return read_topic(client, topic, deadline, [&](const ReadProgress& p) {
    return p.at_end && Clock::now() - p.last_activity >= quiet_period;
  });
}

}  // namespace harness
