#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "relay/stats.h"

namespace app {

// Asks the Kafka cluster for its broker list every `interval`, on a thread
// and a client of its own, and records in `stats.kafka_answered_unix_ms`
// when a broker last answered: the evidence /readyz asks for, since a
// streaming pipeline that has nothing to send never learns that Kafka went
// away. A failed probe is the stats' last error; the first one of an outage
// is logged, and so is the recovery.
class KafkaProbe {
 public:
  KafkaProbe(relay::PipelineStats& stats, std::string brokers,
             std::map<std::string, std::string> properties, std::chrono::milliseconds interval);
  ~KafkaProbe();
  void start();
  void stop();

 private:
  void run();

  relay::PipelineStats& stats_;
  std::string brokers_;
  std::map<std::string, std::string> properties_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

// How often the probe asks, and how long it waits for an answer, so that a
// readiness bound of `ready_kafka_timeout` sees at least two answers.
std::chrono::milliseconds kafka_probe_interval(std::chrono::milliseconds ready_kafka_timeout);

}  // namespace app
