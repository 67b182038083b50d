#include "app/kafka_probe.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "kafka/admin.h"

namespace app {

std::chrono::milliseconds kafka_probe_interval(std::chrono::milliseconds ready_kafka_timeout) {
  return std::clamp(ready_kafka_timeout / 3, std::chrono::milliseconds(100),
                    std::chrono::milliseconds(5000));
}

KafkaProbe::KafkaProbe(relay::PipelineStats& stats, std::string brokers,
                       std::map<std::string, std::string> properties,
                       std::chrono::milliseconds interval)
    : stats_(stats),
      brokers_(std::move(brokers)),
      properties_(std::move(properties)),
      interval_(interval) {
  // The pipelines' own clients log the outage; this one would only repeat it.
  properties_["log_level"] = "0";
}

KafkaProbe::~KafkaProbe() { stop(); }

void KafkaProbe::start() { thread_ = std::thread([this] { run(); }); }

void KafkaProbe::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KafkaProbe::run() {
  auto admin = kafka::Admin::create({brokers_, properties_, "outbox-relay-probe"});
  if (!admin) {
    // The same properties made the pipelines' clients, which report it.
    stats_.last_error.set("Kafka readiness probe: " + admin.error().describe());
    return;
  }
  bool failing = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    const auto next = std::chrono::steady_clock::now() + interval_;
    if (auto r = admin->ping(interval_); r) {
      stats_.kafka_answered_unix_ms = relay::unix_ms_now();
      if (failing) spdlog::info("kafka brokers={} answering again", brokers_);
      failing = false;
    } else {
      const int64_t last = stats_.kafka_answered_unix_ms.load();
      std::string message = r.error().describe();
      if (last != 0) {
        message +=
            "; last answer " + std::to_string((relay::unix_ms_now() - last) / 1000) + " s ago";
      }
      if (!failing) {
        spdlog::warn(
            "kafka brokers={} {}; /readyz answers 503 once no broker has answered for "
            "http.ready_kafka_timeout: check the brokers and the network path to them",
            brokers_, message);
      }
      failing = true;
      stats_.last_error.set("Kafka unreachable: " + message);
    }
    lock.lock();
    cv_.wait_until(lock, next, [this] { return stopping_; });
  }
}

}  // namespace app
