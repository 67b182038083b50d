#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "relay/publisher.h"

namespace kafka {

struct ProducerOptions {
  std::string brokers;
  std::map<std::string, std::string> properties;  // user overrides, applied last
  uint64_t max_inflight_messages = 20000;
  uint64_t max_inflight_bytes = 268435456;
  std::string client_id = "outbox-relay";
};

// An idempotent, acks=all producer whose delivery reports are served only from
// poll() on the caller's thread. librdkafka's main queue signals a pipe when
// it has events so the relay's poll() loop can wait on it with the libpq socket.
class Producer final : public relay::Publisher {
 public:
  static common::Result<std::unique_ptr<Producer>> create(const ProducerOptions& options);
  ~Producer() override;

  relay::ProduceResult produce(const relay::OutboxRecord& record, uint64_t token) override;
  int poll(std::chrono::milliseconds timeout, const ReportFn& on_report) override;
  int wakeup_fd() const override { return wake_read_fd_; }
  size_t in_flight() const override { return in_flight_; }
  uint64_t in_flight_bytes() const override { return in_flight_bytes_; }

  // Drops records not yet sent; their reports arrive from poll() as failures.
  void purge() override;
  // A fatal producer error (idempotence broken, fenced), or empty.
  std::string fatal_error() const override;

 private:
  Producer() = default;
  static void on_delivery(void* rk, const void* message, void* opaque);
  void drain_wakeup_pipe();

  struct Handle;
  std::unique_ptr<Handle> handle_;
  int wake_read_fd_ = -1;
  int wake_write_fd_ = -1;
  size_t in_flight_ = 0;
  uint64_t in_flight_bytes_ = 0;
  const ReportFn* current_report_fn_ = nullptr;
};

relay::DeliveryStatus classify_error(int rd_kafka_resp_err);

// librdkafka's version, e.g. "2.0.2", for the build-info metric.
std::string library_version();

}  // namespace kafka
