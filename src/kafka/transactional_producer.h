#pragma once

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "kafka/checkpoint.h"
#include "kafka/checkpoint_store.h"
#include "kafka/producer.h"
#include "kafka/txn_errc.h"
#include "relay/publisher.h"

// librdkafka's consumer group metadata, declared as rdkafka.h does so that
// this header needs no librdkafka.
typedef struct rd_kafka_consumer_group_metadata_s rd_kafka_consumer_group_metadata_t;

namespace kafka {

namespace detail {
class ProducerCore;
}

// Who commits the checkpoint, as the group coordinator sees it. From a
// consumer in the group (rd_kafka_consumer_group_metadata() of the
// coordination group's member) it carries the member id and generation, and
// the broker refuses the commit of a member that was deposed (fenced). For a
// group nobody joins (single-slot mode) only the group id.
class GroupMetadata {
 public:
  // Takes ownership of what rd_kafka_consumer_group_metadata() returned.
  static GroupMetadata adopt(rd_kafka_consumer_group_metadata_t* metadata);
  static GroupMetadata for_group(const std::string& group_id);

  GroupMetadata(GroupMetadata&&) noexcept;
  GroupMetadata& operator=(GroupMetadata&&) noexcept;
  ~GroupMetadata();

  const rd_kafka_consumer_group_metadata_t* get() const { return metadata_; }

 private:
  explicit GroupMetadata(rd_kafka_consumer_group_metadata_t* metadata) : metadata_(metadata) {}
  rd_kafka_consumer_group_metadata_t* metadata_ = nullptr;
};

struct TransactionalProducerOptions {
  // Brokers, the user's properties (applied over ours, except the three
  // below that exactly-once depends on), in-flight bounds, client.id.
  ProducerOptions producer;
  // transactional_id_for(prefix, slot): stable for the slot.
  std::string transactional_id;
  // The broker aborts a transaction left open longer. Bounds how long a
  // frozen or cut-off owner can hold back read_committed consumers, and
  // how long a commit may wait for its deliveries; message.timeout.ms must
  // not exceed it (librdkafka defaults it to this).
  std::chrono::milliseconds transaction_timeout{60000};
  CheckpointPlace checkpoint;
};

// A transactional producer for one slot: records of a span of PostgreSQL
// transactions and the checkpoint they reach go into one Kafka
// transaction, so that a read_committed consumer sees both or neither.
//
//   create -> init -> { begin -> produce/poll ... -> commit(checkpoint) } ...
//
// The Publisher side works as the idempotent Producer's does: produce()
// never blocks, delivery reports come only from poll(), on the caller's
// thread, once per record. A successful report means written, not visible:
// a record becomes visible when commit() returns ok, never earlier.
//
// A commit runs on a thread of its own, and commit() waits for it at most
// its timeout: librdkafka 2.0 blocks in send_offsets_to_transaction up to
// socket.timeout.ms whatever the timeout passed, and the caller's loop must
// keep answering its server meanwhile. While a commit runs, the producer
// is the commit's: poll() serves nothing (it only waits, up to its
// timeout, for the commit to end), purge() does nothing, in_flight() says
// what was in flight when it began, and abort() and reset() wait for it.
// The reports librdkafka serves while a commit or an abort flushes are held
// and handed out by the next poll() (the wakeup fd turns readable, and does
// again when a commit ends).
//
// Every librdkafka error is retried while retriable (with backoff, within
// the caller's timeout), and otherwise turned into a txn_errc reason; see
// txn_errc.h for what the caller does with each. Once the producer failed
// (fenced by a newer producer, or fatal) every call returns that error.
class TransactionalProducer final : public relay::TransactionalPublisher {
 public:
  static common::Result<std::unique_ptr<TransactionalProducer>> create(
      const TransactionalProducerOptions& options);
  ~TransactionalProducer() override;

  // init_transactions: registers the transactional.id with its coordinator
  // and bumps its epoch, which fences every earlier producer with that id,
  // a partitioned or frozen one included (their later requests are
  // refused), and aborts or completes the transaction such a producer left
  // open. Then checks that the checkpoint partition exists. Once it
  // succeeded, a repeated init() (before begin()) does nothing.
  common::Result<void> init(std::chrono::milliseconds timeout);

  // Replaces the group metadata the checkpoint is committed with (by
  // default GroupMetadata::for_group(options.checkpoint.group_id)); the
  // coordination group's member hands in a fresh one after each rebalance.
  void use_group_metadata(GroupMetadata metadata);

  common::Result<void> begin() override;
  // Sends `checkpoint` into the transaction (the checkpoint group's offset
  // metadata), then commits: waits for every delivery, then for the
  // coordinator. When the transaction cannot commit (a failed delivery, a
  // refused checkpoint) it is aborted here and the error says why
  // (is_aborted(code)). After timed_out the outcome is unknown (txn_errc.h);
  // a repeated commit() resumes it and must pass the same checkpoint. A
  // caller that must keep serving its own loop (keepalives) can pass a
  // short timeout, even 0, and call commit() again on timed_out until it
  // resolves; the commit itself runs for at least 500 ms at a time.
  common::Result<void> commit(const Checkpoint& checkpoint,
                              std::chrono::milliseconds timeout) override;
  // Aborts the open transaction: records not yet sent are purged (their
  // reports fail), and nothing of it ever becomes visible. Without an open
  // transaction, does nothing.
  common::Result<void> abort(std::chrono::milliseconds timeout) override;

  bool in_transaction() const override {
    return !job_.valid() && state_ == State::kInTransaction;
  }
  // A commit still running, or one that timed out after sending the
  // checkpoint: commit() with the same checkpoint resumes it.
  bool commit_pending() const override {
    return job_.valid() || state_ == State::kCommitPending;
  }
  // A new librdkafka handle and the state of a producer just created: init()
  // may be called again. Reports still held are kept for the next poll().
  common::Result<void> reset() override;
  // A delivery of the open transaction failed, or librdkafka refused a
  // record because of an earlier failure: it can only abort.
  bool must_abort() const;
  const std::string& transactional_id() const { return options_.transactional_id; }
  const std::optional<Checkpoint>& last_committed() const { return last_committed_; }

  // relay::Publisher. produce() needs an open transaction. A record refused
  // because the transaction must abort comes back kRejected with
  // DeliveryStatus::kRetriable: it is not the record's fault.
  relay::ProduceResult produce(const relay::OutboxRecord& record, uint64_t token) override;
  int poll(std::chrono::milliseconds timeout, const ReportFn& on_report) override;
  int wakeup_fd() const override;
  size_t in_flight() const override;
  uint64_t in_flight_bytes() const override;
  // Drops records not yet sent; their reports fail from poll(), and the
  // open transaction can then only abort.
  void purge() override;
  // Why the producer cannot continue (fenced, fatal), or empty.
  std::string failure() const;

 private:
  enum class State {
    kNew,            // init() not done
    kReady,          // between transactions
    kInTransaction,  // begin() done
    kCommitPending,  // commit() timed out after sending the checkpoint
    kAbortPending,   // abort() timed out
    kFailed,         // fenced or fatal: failure_ is all it answers
  };

  explicit TransactionalProducer(const TransactionalProducerOptions& options);
  common::Result<void> fail(common::Error error);
  // The commit itself, on the commit thread.
  common::Result<void> commit_until(const Checkpoint& checkpoint,
                                    std::chrono::steady_clock::time_point deadline);
  // Waits up to `wait` for a running commit to end and keeps its result in
  // job_result_; true when no commit runs any more.
  bool settle(std::chrono::milliseconds wait);
  void settle_for_good();
  common::Result<void> send_checkpoint(const Checkpoint& checkpoint,
                                       std::chrono::steady_clock::time_point deadline);
  common::Result<void> finish_commit(std::chrono::steady_clock::time_point deadline);
  common::Result<void> abort_until(std::chrono::steady_clock::time_point deadline);
  void renew_handle(std::chrono::steady_clock::time_point deadline);
  // Aborts because the transaction cannot commit, and returns why.
  common::Result<void> abort_because(common::Error cause,
                                     std::chrono::steady_clock::time_point deadline);
  common::Error abort_cause(int error_code, const std::string& detail, const char* step) const;

  TransactionalProducerOptions options_;
  std::map<std::string, std::string> properties_;  // librdkafka's, complete
  std::unique_ptr<detail::ProducerCore> core_;
  GroupMetadata group_metadata_;
  State state_ = State::kNew;
  std::optional<common::Error> failure_;
  std::optional<Checkpoint> pending_checkpoint_;
  std::optional<Checkpoint> last_committed_;
  bool refused_for_abort_ = false;
  // An abort purged records in flight: the next transaction needs a new
  // epoch (renew_handle()).
  bool renew_before_begin_ = false;
  bool transactions_initialized_ = false;
  // The running commit (valid until settled), its checkpoint, and what
  // was in flight when it began. Only the caller's thread touches these;
  // while job_ is valid, everything else belongs to the commit thread.
  std::future<common::Result<void>> job_;
  std::optional<common::Result<void>> job_result_;
  Checkpoint job_checkpoint_;
  size_t job_in_flight_ = 0;
  uint64_t job_in_flight_bytes_ = 0;
  int wakeup_fd_ = -1;
};

}  // namespace kafka
