#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/result.h"
#include "relay/publisher.h"

namespace kafka {

namespace detail {
class ProducerCore;
}

struct ProducerOptions {
  std::string brokers;
  std::map<std::string, std::string> properties;  // user overrides, applied last
  uint64_t max_inflight_messages = 20000;
  uint64_t max_inflight_bytes = 16777216;
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
  int wakeup_fd() const override;
  size_t in_flight() const override;
  uint64_t in_flight_bytes() const override;

  // Drops records not yet sent; their reports arrive from poll() as failures.
  void purge() override;

 private:
  Producer() = default;

  std::unique_ptr<detail::ProducerCore> core_;
};

// Our settings of every producer (idempotent, acks=all, the Java client's
// partitioner, batching, queue bounds that fit the in-flight limits), with
// the user's properties applied last.
std::map<std::string, std::string> producer_properties(const ProducerOptions& options);

// What a librdkafka error code means for a record: whether it can ever be
// delivered, and why not. The one place error codes are interpreted.
struct Classified {
  relay::DeliveryStatus status;
  relay::DeliveryReason reason;
};
Classified classify_error(int rd_kafka_resp_err);


// librdkafka's version, e.g. "2.0.2", for the build-info metric.
std::string library_version();

}  // namespace kafka
