#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "relay/checkpoint.h"
#include "relay/record.h"

namespace relay {

enum class DeliveryStatus {
  kOk,
  kPermanent,  // will never succeed as is: too large, unknown topic, not authorized
  kRetriable,  // ran out of delivery.timeout.ms on a failure that might clear
  kFatal,      // the producer cannot continue (fenced, idempotence broken)
};

// Why a record failed, decided once from the client library's error code
// where that code is known, so that nothing downstream reads error text.
enum class DeliveryReason {
  kNone,
  kTooLarge,       // the record exceeds a broker or topic size limit
  kUnknownTopic,   // the topic or partition does not exist
  kAuthorization,  // not allowed to write the topic (or the cluster)
  kTimeout,        // delivery.timeout.ms ran out
  kFenced,         // a newer producer or member owns the slot's output now
  kOther,
};

const char* to_string(DeliveryReason reason);

struct DeliveryReport {
  uint64_t token = 0;  // what was passed to produce()
  DeliveryStatus status = DeliveryStatus::kOk;
  DeliveryReason reason = DeliveryReason::kNone;
  std::string error;   // for humans; empty on success
  int32_t partition = -1;
  int64_t offset = -1;
  // The topic the record went to; valid during the report callback only.
  std::string_view topic;
  // Failed records only: the record as the producer held it, so that the
  // bad-row policy can dead-letter it without keeping a second copy.
  std::optional<OutboxRecord> record;
};

enum class ProduceOutcome { kQueued, kQueueFull, kRejected };

struct ProduceResult {
  ProduceOutcome outcome = ProduceOutcome::kQueued;
  DeliveryStatus status = DeliveryStatus::kOk;  // for kRejected
  DeliveryReason reason = DeliveryReason::kNone;
  std::string error;
};

class TransactionalPublisher;

// What the pipeline needs from Kafka. Delivery reports are only ever handed out
// from poll() on the caller's thread, once per produced record.
class Publisher {
 public:
  using ReportFn = std::function<void(const DeliveryReport&)>;

  virtual ~Publisher() = default;

  // Never blocks. kQueueFull means: poll() and try again later.
  virtual ProduceResult produce(const OutboxRecord& record, uint64_t token) = 0;
  // Serves pending delivery reports; waits up to `timeout` for the first one.
  virtual int poll(std::chrono::milliseconds timeout, const ReportFn& on_report) = 0;
  // A file descriptor that becomes readable when poll() has work, or -1.
  virtual int wakeup_fd() const { return -1; }
  virtual size_t in_flight() const = 0;
  virtual uint64_t in_flight_bytes() const = 0;
  // Drops records not yet sent; their reports still arrive from poll().
  virtual void purge() = 0;
  // The same publisher's transactions, when its records become visible only
  // as they commit (exactly once); null when each record is visible once
  // acknowledged (at least once).
  virtual TransactionalPublisher* transactions() { return nullptr; }
};

// A Publisher whose records become visible to read_committed consumers only
// when the transaction they were produced in commits, together with the
// checkpoint they reach (exactly-once). produce() needs an open transaction.
class TransactionalPublisher : public Publisher {
 public:
  TransactionalPublisher* transactions() override { return this; }
  virtual common::Result<void> begin() = 0;
  // Waits for every delivery of the open transaction, then commits it with
  // `checkpoint`. On failure the transaction was aborted, unless it is still
  // open or commit_pending(): then the time ran out, and commit() with the
  // same checkpoint resumes it.
  virtual common::Result<void> commit(const Checkpoint& checkpoint,
                                      std::chrono::milliseconds timeout) = 0;
  virtual bool commit_pending() const = 0;
  // Starts over as if just created, after the producer was fenced or failed
  // for good: taking the slot's output again fences whoever took it over.
  virtual common::Result<void> reset() = 0;
  // Nothing of the open transaction ever becomes visible.
  virtual common::Result<void> abort(std::chrono::milliseconds timeout) = 0;
  virtual bool in_transaction() const = 0;
};

}  // namespace relay
