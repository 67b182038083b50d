// Reads the records outbox-relay publishes and prints one line per row:
//
//   <topic> <partition> <offset> <key> <outbox-id> <outbox-lsn>
//
// With exactly-once delivery (the relay's default), read with
// isolation.level=read_committed: each row arrives once, in commit order per
// key. A read_uncommitted reader, or any reader of at_least_once delivery,
// may see a row again after a crash or an aborted Kafka transaction; --dedupe
// keeps the first occurrence of each outbox-id, which is in order per key.
//
//   outbox-consumer-example --brokers HOST:PORT --topic T [--group G]
//       [--read-uncommitted] [--dedupe] [--idle-ms N]
//
// Exits once nothing new arrived for --idle-ms (default: never).
#include <librdkafka/rdkafka.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>

namespace {

volatile sig_atomic_t g_stop = 0;

struct Options {
  std::string brokers;
  std::string topic;
  std::string group = "outbox-consumer-example";
  bool read_committed = true;
  bool dedupe = false;
  long idle_ms = -1;
};

bool parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--brokers" && has_value) {
      o.brokers = argv[++i];
    } else if (a == "--topic" && has_value) {
      o.topic = argv[++i];
    } else if (a == "--group" && has_value) {
      o.group = argv[++i];
    } else if (a == "--idle-ms" && has_value) {
      o.idle_ms = std::stol(argv[++i]);
    } else if (a == "--read-uncommitted") {
      o.read_committed = false;
    } else if (a == "--dedupe") {
      o.dedupe = true;
    } else {
      return false;
    }
  }
  return !o.brokers.empty() && !o.topic.empty();
}

std::string header(const rd_kafka_message_t* m, const char* name) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(m, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR) return "-";
  const void* value = nullptr;
  size_t size = 0;
  if (rd_kafka_header_get_last(headers, name, &value, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
      value == nullptr) {
    return "-";
  }
  return std::string(static_cast<const char*>(value), size);
}

bool set(rd_kafka_conf_t* conf, const char* key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key, value.c_str(), err, sizeof err) == RD_KAFKA_CONF_OK) return true;
  std::fprintf(stderr, "%s: %s\n", key, err);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: %s --brokers HOST:PORT --topic T [--group G] [--read-uncommitted] "
                 "[--dedupe] [--idle-ms N]\n",
                 argv[0]);
    return 2;
  }
  signal(SIGINT, [](int) { g_stop = 1; });
  signal(SIGTERM, [](int) { g_stop = 1; });

  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (!set(conf, "bootstrap.servers", o.brokers) || !set(conf, "group.id", o.group) ||
      !set(conf, "isolation.level", o.read_committed ? "read_committed" : "read_uncommitted") ||
      !set(conf, "auto.offset.reset", "earliest") || !set(conf, "enable.auto.commit", "true")) {
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (rk == nullptr) {
    std::fprintf(stderr, "%s\n", err);
    return 1;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, o.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);

  std::unordered_set<std::string> seen;
  auto last = std::chrono::steady_clock::now();
  while (!g_stop) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (m == nullptr) {
      const auto idle = std::chrono::steady_clock::now() - last;
      if (o.idle_ms >= 0 && idle >= std::chrono::milliseconds(o.idle_ms)) break;
      continue;
    }
    if (m->err) {
      if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        std::fprintf(stderr, "%s\n", rd_kafka_message_errstr(m));
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    last = std::chrono::steady_clock::now();
    const std::string id = header(m, "outbox-id");
    if (!o.dedupe || seen.insert(id).second) {
      const std::string key =
          m->key ? std::string(static_cast<const char*>(m->key), m->key_len) : std::string("-");
      std::printf("%s %d %lld %s %s %s\n", rd_kafka_topic_name(m->rkt), m->partition,
                  static_cast<long long>(m->offset), key.c_str(), id.c_str(),
                  header(m, "outbox-lsn").c_str());
    }
    rd_kafka_message_destroy(m);
  }
  std::fflush(stdout);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return 0;
}
