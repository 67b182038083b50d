// kafka-admin: topic chores for the demo and the benchmark, without the Kafka
// command-line tools (they need the broker's shell scripts and a JVM start per
// call).
//
//   kafka-admin BOOTSTRAP create-topic NAME PARTITIONS [CONFIG=VALUE ...]
//   kafka-admin BOOTSTRAP delete-topic NAME
//   kafka-admin BOOTSTRAP count NAME [--until N] [--timeout SECONDS] [--progress]
//
// `create-topic` sets any topic-level configs given, e.g.
// message.timestamp.type=LogAppendTime (the live latency benchmark).
// `count` prints the number of records in the topic: the sum over its
// partitions of the high watermark minus the low watermark. That equals the
// record count for a topic written by a non-transactional producer (an
// idempotent one included): transactions would add control records. With
// `--until N` one client polls every 20 ms until the count reaches N, so the
// benchmark's drain measurement costs no process start and no connection per
// poll; exit status 3 when the timeout passes first. `--progress` also prints
// "progress SECONDS COUNT" each time the count changes, SECONDS on the
// steady clock (CLOCK_MONOTONIC, the clock of Python's time.monotonic()), so
// that a caller can tell when the first record arrived and when the last did
// without a process or a poll of its own (the peers' start-up and
// steady-state rate in the benchmark).
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

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
#include "kafka/admin.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kUsage = 2;
constexpr int kTimedOut = 3;
constexpr std::chrono::milliseconds kPollInterval{20};
constexpr std::chrono::milliseconds kRequestTimeout{5000};
constexpr std::chrono::seconds kTopicTimeout{30};

int usage() {
  std::fprintf(stderr,
               "usage: kafka-admin BOOTSTRAP create-topic NAME PARTITIONS [CONFIG=VALUE ...]\n"
               "       kafka-admin BOOTSTRAP delete-topic NAME\n"
               "       kafka-admin BOOTSTRAP count NAME [--until N] [--timeout SECONDS] "
               "[--progress]\n");
  return kUsage;
}

template <typename T>
T value_or_throw(common::Result<T> r) {
  if (!r) throw std::runtime_error(r.error().describe());
  return std::move(r).value();
}

void throw_on_error(const common::Result<void>& r) {
  if (!r) throw std::runtime_error(r.error().describe());
}

kafka::Admin new_admin(const std::string& bootstrap) {
  return value_or_throw(
      kafka::Admin::create({bootstrap, {{"log_level", "3"}}, "outbox-kafka-admin"}));
}

int partition_count(kafka::Admin& admin, const std::string& topic) {
  auto info = value_or_throw(admin.describe_topic(topic, kRequestTimeout));
  if (!info) throw std::runtime_error("topic " + topic + " not in the broker's metadata");
  return info->partitions;
}

// The record count; nullopt (with the reason in `why`) while a partition
// has no leader to answer yet, e.g. just after its topic was created or
// while the broker restarts: not a count yet, ask again.
std::optional<int64_t> record_count(kafka::Admin& admin, const std::string& topic, int partitions,
                                    std::string& why) {
  int64_t total = 0;
  for (int p = 0; p < partitions; ++p) {
    auto w = admin.watermarks(topic, p, kRequestTimeout);
    if (!w) {
      why = w.error().describe();
      if (w.error().code == kafka::errc::unavailable) return std::nullopt;
      throw std::runtime_error(why);
    }
    total += w->high - w->low;
  }
  return total;
}

// One "progress SECONDS COUNT" line per change of the count; the time is
// taken after the count was read, so it is never early.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled) {}

  void seen(const std::optional<int64_t>& n) {
    if (!enabled_ || !n || *n == last_) return;
    last_ = *n;
    const double t = std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
    std::printf("progress %.6f %lld\n", t, static_cast<long long>(*n));
    std::fflush(stdout);
  }

 private:
  bool enabled_;
  int64_t last_ = -1;
};

int count(const std::string& bootstrap, const std::string& topic, int64_t until, double timeout_s,
          bool progress_lines) {
  kafka::Admin admin = new_admin(bootstrap);
  const int partitions = partition_count(admin, topic);
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  Progress progress(progress_lines);
  std::string why;
  std::optional<int64_t> n = record_count(admin, topic, partitions, why);
  progress.seen(n);
  while (!n || (until >= 0 && *n < until)) {
    if (Clock::now() >= deadline) {
      if (!n) throw std::runtime_error(why);
      std::printf("%lld\n", static_cast<long long>(*n));
      return kTimedOut;
    }
    std::this_thread::sleep_for(kPollInterval);
    n = record_count(admin, topic, partitions, why);
    progress.seen(n);
  }
  std::printf("%lld\n", static_cast<long long>(*n));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  const std::string bootstrap = argv[1];
  const std::string command = argv[2];
  const std::string topic = argv[3];
  // stdout carries the count a caller parses; librdkafka's lines go apart.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("kafka-admin"));
  try {
    if (command == "create-topic" && argc >= 5) {
      std::map<std::string, std::string> configs;
      for (int i = 5; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto eq = arg.find('=');
        if (eq == std::string::npos || eq == 0) return usage();
        configs[arg.substr(0, eq)] = arg.substr(eq + 1);
      }
      harness::create_topic(bootstrap, topic, std::atoi(argv[4]), kTopicTimeout, configs);
      return 0;
    }
    if (command == "delete-topic" && argc == 4) {
      kafka::Admin admin = new_admin(bootstrap);
      throw_on_error(admin.delete_topic(topic, kTopicTimeout));
      return 0;
    }
    if (command == "count") {
      int64_t until = -1;
      double timeout_s = 600;
      bool progress = false;
      for (int i = 4; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--until" && i + 1 < argc) {
          until = std::strtoll(argv[++i], nullptr, 10);
        } else if (arg == "--timeout" && i + 1 < argc) {
          timeout_s = std::strtod(argv[++i], nullptr);
        } else if (arg == "--progress") {
          progress = true;
        } else {
          return usage();
        }
      }
      return count(bootstrap, topic, until, timeout_s, progress);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kafka-admin: %s\n", e.what());
    return 1;
  }
  return usage();
}
