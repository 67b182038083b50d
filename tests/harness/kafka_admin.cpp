// kafka-admin: topic chores for the demo and the benchmark, without the Kafka
// command-line tools (they need the broker's shell scripts and a JVM start per
// call).
//
//   kafka-admin BOOTSTRAP create-topic NAME PARTITIONS [CONFIG=VALUE ...]
//   kafka-admin BOOTSTRAP delete-topic NAME
//   kafka-admin BOOTSTRAP count NAME [--until N] [--timeout SECONDS]
//
// `create-topic` sets any topic-level configs given, e.g.
// message.timestamp.type=LogAppendTime (the live latency benchmark).
// `count` prints the number of records in the topic: the sum over its
// partitions of the high watermark minus the low watermark. That equals the
// record count for a topic written by a non-transactional producer (an
// idempotent one included): transactions would add control records. With
// `--until N` one client polls every 20 ms until the count reaches N, so the
// benchmark's drain measurement costs no process start and no connection per
// poll; exit status 3 when the timeout passes first.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "harness/kafka_broker.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kUsage = 2;
constexpr int kTimedOut = 3;
constexpr std::chrono::milliseconds kPollInterval{20};
constexpr int kRequestTimeoutMs = 5000;

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
  void operator()(rd_kafka_DeleteTopic_t* t) const { rd_kafka_DeleteTopic_destroy(t); }
};
template <typename T>
using Owned = std::unique_ptr<T, RdKafkaDeleter>;

int usage() {
  std::fprintf(stderr,
               "usage: kafka-admin BOOTSTRAP create-topic NAME PARTITIONS [CONFIG=VALUE ...]\n"
               "       kafka-admin BOOTSTRAP delete-topic NAME\n"
               "       kafka-admin BOOTSTRAP count NAME [--until N] [--timeout SECONDS]\n");
  return kUsage;
}

Owned<rd_kafka_t> new_producer(const std::string& bootstrap) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  const std::pair<const char*, std::string> settings[] = {
      {"bootstrap.servers", bootstrap},
      {"client.id", "outbox-kafka-admin"},
      {"log_level", "3"},
  };
  for (const auto& [key, value] : settings) {
    if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw std::runtime_error(std::string("librdkafka config ") + key + ": " + err);
    }
  }
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("rd_kafka_new: ") + err);
  }
  return Owned<rd_kafka_t>(rk);
}

int partition_count(rd_kafka_t* rk, const std::string& topic) {
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, nullptr, &md, kRequestTimeoutMs);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("metadata: ") + rd_kafka_err2str(e));
  }
  Owned<const rd_kafka_metadata_t> owned(md);
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (topic != md->topics[i].topic) continue;
    if (md->topics[i].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("topic " + topic + ": " + rd_kafka_err2str(md->topics[i].err));
    }
    return md->topics[i].partition_cnt;
  }
  throw std::runtime_error("topic " + topic + " not in the broker's metadata");
}

// What a partition answers until it has a leader, e.g. just after its topic
// was created or while the broker restarts: not a count yet, ask again.
bool transient(rd_kafka_resp_err_t e) {
  return e == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
         e == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
         e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
         e == RD_KAFKA_RESP_ERR__TRANSPORT;
}

// The record count; nullopt (with the reason in `why`) while a partition
// answers with a transient error.
std::optional<int64_t> record_count(rd_kafka_t* rk, const std::string& topic, int partitions,
                                    std::string& why) {
  int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t e =
        rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &low, &high, kRequestTimeoutMs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      why = "watermarks of " + topic + "/" + std::to_string(p) + ": " + rd_kafka_err2str(e);
      if (transient(e)) return std::nullopt;
      throw std::runtime_error(why);
    }
    total += high - low;
  }
  return total;
}

int count(const std::string& bootstrap, const std::string& topic, int64_t until,
          double timeout_s) {
  auto rk = new_producer(bootstrap);
  const int partitions = partition_count(rk.get(), topic);
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  std::string why;
  std::optional<int64_t> n = record_count(rk.get(), topic, partitions, why);
  while (!n || (until >= 0 && *n < until)) {
    if (Clock::now() >= deadline) {
      if (!n) throw std::runtime_error(why);
      std::printf("%lld\n", static_cast<long long>(*n));
      return kTimedOut;
    }
    std::this_thread::sleep_for(kPollInterval);
    n = record_count(rk.get(), topic, partitions, why);
  }
  std::printf("%lld\n", static_cast<long long>(*n));
  return 0;
}

void delete_topic(const std::string& bootstrap, const std::string& topic) {
  auto rk = new_producer(bootstrap);
  char err[512];
  Owned<rd_kafka_DeleteTopic_t> del(rd_kafka_DeleteTopic_new(topic.c_str()));
  Owned<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_DELETETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), 30000, err, sizeof err);
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteTopic_t* topics[] = {del.get()};
  rd_kafka_DeleteTopics(rk.get(), topics, 1, options.get(), queue.get());
  Owned<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), 35000));
  if (!ev) throw std::runtime_error("delete topic " + topic + ": no answer in time");
  if (rd_kafka_event_error(ev.get())) {
    throw std::runtime_error("delete topic " + topic + ": " + rd_kafka_event_error_string(ev.get()));
  }
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_topic_result_error(results[i])) {
      throw std::runtime_error("delete topic " + topic + ": " +
                               rd_kafka_topic_result_error_string(results[i]));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string bootstrap = argv[1];
  const std::string command = argv[2];
  const std::string topic = argv[3];
  try {
    if (command == "create-topic" && argc >= 5) {
      std::map<std::string, std::string> configs;
      for (int i = 5; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto eq = arg.find('=');
        if (eq == std::string::npos || eq == 0) return usage();
        configs[arg.substr(0, eq)] = arg.substr(eq + 1);
      }
      harness::create_topic(bootstrap, topic, std::atoi(argv[4]), std::chrono::seconds(30),
                            configs);
      return 0;
    }
    if (command == "delete-topic" && argc == 4) {
      delete_topic(bootstrap, topic);
      return 0;
    }
    if (command == "count") {
      int64_t until = -1;
      double timeout_s = 600;
      for (int i = 4; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--until" && i + 1 < argc) {
          until = std::strtoll(argv[++i], nullptr, 10);
        } else if (arg == "--timeout" && i + 1 < argc) {
          timeout_s = std::strtod(argv[++i], nullptr);
        } else {
          return usage();
        }
      }
      return count(bootstrap, topic, until, timeout_s);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kafka-admin: %s\n", e.what());
    return 1;
  }
  return usage();
}
