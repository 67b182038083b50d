#include "kafka/transactional_producer.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "kafka/producer_core.h"
#include "kafka/txn_reason.h"

namespace kafka {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// How long a commit runs on its thread at least, however short the caller's
// wait: one not done by then ends timed_out and is resumed by the next call.
constexpr milliseconds kMinCommitRun{500};

// An abort that commit() decides on gets at least this long, even when the
// commit used up the caller's timeout: a transaction left open holds back
// every read_committed consumer of its partitions until the broker's
// transaction timeout.
constexpr milliseconds kMinAbortTime{5000};
// The same for the new handle after an abort (renew_handle()): its
// init_transactions waits for the coordinator to finish the abort.
constexpr milliseconds kMinRenewTime{10000};
// How long init() waits for the checkpoint partition to show in the
// metadata before it reports it missing.
constexpr milliseconds kCheckpointTopicWait{5000};

int remaining_ms(Clock::time_point deadline) {
  return static_cast<int>(std::max<int64_t>(
      0, std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count()));
}

// What a failed rd_kafka_error_t said, copied out so it can be destroyed at once.
struct StepError {
  rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string detail;
  bool fatal = false;
  bool retriable = false;
  bool requires_abort = false;
};

StepError take(rd_kafka_error_t* e) {
  StepError s;
  s.code = rd_kafka_error_code(e);
  s.detail = rd_kafka_error_string(e);
  s.fatal = rd_kafka_error_is_fatal(e);
  s.retriable = rd_kafka_error_is_retriable(e);
  s.requires_abort = rd_kafka_error_txn_requires_abort(e);
  rd_kafka_error_destroy(e);
  return s;
}

// Calls `step` with the time left until it succeeds, fails for good or the
// deadline passes. Retriable errors are retried, as librdkafka's
// transactions.c example does, with a backoff so that a coordinator that is
// moving is not asked in a tight loop; commit and abort resume where the
// timed-out call stopped.
template <typename Step>
std::optional<StepError> retry_until(Step step, Clock::time_point deadline) {
  milliseconds backoff{50};
  for (;;) {
    rd_kafka_error_t* e = step(remaining_ms(deadline));
    if (e == nullptr) return std::nullopt;
    StepError s = take(e);
    if (!s.retriable || s.fatal || s.requires_abort || Clock::now() + backoff >= deadline) return s;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, milliseconds(1000));
  }
}

}  // namespace

GroupMetadata GroupMetadata::adopt(rd_kafka_consumer_group_metadata_t* metadata) {
  OUTBOX_ASSERT(metadata != nullptr);
  return GroupMetadata(metadata);
}

GroupMetadata GroupMetadata::for_group(const std::string& group_id) {
  return GroupMetadata(rd_kafka_consumer_group_metadata_new(group_id.c_str()));
}

GroupMetadata::GroupMetadata(GroupMetadata&& other) noexcept
    : metadata_(std::exchange(other.metadata_, nullptr)) {}

GroupMetadata& GroupMetadata::operator=(GroupMetadata&& other) noexcept {
  if (this != &other) {
    if (metadata_) rd_kafka_consumer_group_metadata_destroy(metadata_);
    metadata_ = std::exchange(other.metadata_, nullptr);
  }
  return *this;
}

GroupMetadata::~GroupMetadata() {
  if (metadata_) rd_kafka_consumer_group_metadata_destroy(metadata_);
}

TransactionalProducer::TransactionalProducer(const TransactionalProducerOptions& options)
    : options_(options), group_metadata_(GroupMetadata::for_group(options.checkpoint.group_id)) {}

common::Result<std::unique_ptr<TransactionalProducer>> TransactionalProducer::create(
    const TransactionalProducerOptions& options) {
  if (options.transactional_id.empty()) {
    return make_txn_error(txn_errc::invalid_config, "transactional.id is empty");
  }
  if (options.checkpoint.group_id.empty() || options.checkpoint.topic.empty() ||
      options.checkpoint.partition < 0) {
    return make_txn_error(txn_errc::invalid_config,
                          "checkpoint place group '" + options.checkpoint.group_id + "' topic '" +
                              options.checkpoint.topic + "' partition " +
                              std::to_string(options.checkpoint.partition) + " is incomplete");
  }
  detail::Properties props = producer_properties(options.producer);
  // Exactly-once rests on these: the user's properties do not override them.
  props["transactional.id"] = options.transactional_id;
  props["enable.idempotence"] = "true";
  props["acks"] = "all";
  props["transaction.timeout.ms"] = std::to_string(options.transaction_timeout.count());
  // librdkafka 2.0's send_offsets_to_transaction waits for its request
  // whatever the call's timeout, up to socket.timeout.ms (60 s by default)
  // when the coordinator does not answer; the relay's loop must answer the
  // walsender well within wal_sender_timeout (and renew nothing it cannot
  // prove) meanwhile.
  if (!options.producer.properties.count("socket.timeout.ms")) {
    props["socket.timeout.ms"] = "2000";
  }
  auto core = detail::ProducerCore::create(props, "transactional Kafka producer");
  if (!core) return make_txn_error(txn_errc::invalid_config, core.error().describe());
  std::unique_ptr<TransactionalProducer> p(new TransactionalProducer(options));
  p->properties_ = std::move(props);
  p->core_ = std::move(*core);
  p->wakeup_fd_ = p->core_->wakeup_fd();
  return p;
}

TransactionalProducer::~TransactionalProducer() {
  settle_for_good();
  // Left open, the transaction would hold back read_committed consumers of
  // its partitions until the broker's transaction timeout.
  if (state_ == State::kInTransaction || state_ == State::kAbortPending) {
    if (auto r = abort_until(Clock::now() + std::min(kMinAbortTime, options_.transaction_timeout));
        !r) {
      spdlog::warn(
          "transactional_id={} abort at shutdown failed: {}; the broker aborts it after "
          "kafka.transaction_timeout, and read_committed consumers of its partitions wait until "
          "then",
          options_.transactional_id, r.error().describe());
    }
  }
}

common::Result<void> TransactionalProducer::fail(common::Error error) {
  state_ = State::kFailed;
  failure_ = error;
  spdlog::error("transactional_id={} {}", options_.transactional_id, error.describe());
  return error;
}

common::Result<void> TransactionalProducer::init(milliseconds timeout) {
  if (state_ == State::kFailed) return *failure_;
  // Taking the slot's output calls init() again when what followed it (the
  // checkpoint read) timed out: the epoch it got still fences every earlier
  // producer, and nothing has been sent since.
  if (state_ == State::kReady) return {};
  OUTBOX_ASSERT(state_ == State::kNew);
  const auto deadline = Clock::now() + timeout;
  rd_kafka_t* rk = core_->rk();
  // Once done, init_transactions may not be called again on this handle: a
  // repeated init() after a missing checkpoint topic only checks again.
  auto e = transactions_initialized_
               ? std::nullopt
               : retry_until([&](int ms) { return rd_kafka_init_transactions(rk, ms); }, deadline);
  if (e) {
    if (e->retriable) {
      return detail::txn_error(
          txn_errc::timed_out, e->code, "init_transactions", options_.transactional_id,
          e->detail + "; no transaction coordinator answered within " +
              std::to_string(timeout.count()) +
              " ms: the brokers must be reachable and have a usable __transaction_state topic "
              "(transaction.state.log.replication.factor and transaction.state.log.min.isr at "
              "most the number of live brokers)");
    }
    const txn_errc reason = detail::txn_reason(e->code, txn_errc::fatal);
    return fail(detail::txn_error(
        reason == txn_errc::timed_out || reason == txn_errc::invalid_config ? txn_errc::fatal
                                                                            : reason,
        e->code, "init_transactions", options_.transactional_id, e->detail));
  }

  transactions_initialized_ = true;

  // The broker refuses offset commits for a partition it does not have,
  // and librdkafka would retry that until every commit timed out.
  const auto& place = options_.checkpoint;
  auto count = detail::await_partitions(
      rk, place.topic, place.partition + 1,
      std::min(milliseconds(remaining_ms(deadline)), kCheckpointTopicWait));
  if (!count) {
    const auto code = static_cast<rd_kafka_resp_err_t>(count.error().code.value());
    return detail::txn_error(detail::txn_reason(code, txn_errc::fatal), code, "checkpoint topic",
                             options_.transactional_id, count.error().describe(),
                             &options_.checkpoint);
  }
  if (!count->has_value() || **count <= place.partition) {
    return make_txn_error(txn_errc::invalid_config,
                          "checkpoint topic '" + place.topic + "' has no partition " +
                              std::to_string(place.partition) +
                              (count->has_value() ? " (it has " + std::to_string(**count) + ")"
                                                  : " (it is missing)") +
                              ": create it with a partition per slot (ensure_checkpoint_topic)");
  }
  state_ = State::kReady;
  return {};
}

void TransactionalProducer::use_group_metadata(GroupMetadata metadata) {
  group_metadata_ = std::move(metadata);
}

common::Result<void> TransactionalProducer::begin() {
  if (state_ == State::kFailed) return *failure_;
  OUTBOX_ASSERT(!job_.valid() && !job_result_ && state_ == State::kReady);
  if (renew_before_begin_) {
    renew_before_begin_ = false;
    renew_handle(Clock::now() + kMinRenewTime);
    if (state_ == State::kFailed) return *failure_;
  }
  core_->reset_first_failure();
  refused_for_abort_ = false;
  if (rd_kafka_error_t* e = rd_kafka_begin_transaction(core_->rk())) {
    // Only state errors come from here: the producer is fenced or failed.
    StepError s = take(e);
    return fail(detail::txn_error(detail::txn_reason(s.code, txn_errc::fatal), s.code,
                                  "begin_transaction", options_.transactional_id, s.detail));
  }
  state_ = State::kInTransaction;
  return {};
}

common::Result<void> TransactionalProducer::commit(const Checkpoint& checkpoint,
                                                   milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  // A caller that does not wait (timeout 0) still gives the commit time to
  // run; it asks again for the outcome.
  const auto job_deadline = Clock::now() + std::max(timeout, kMinCommitRun);
  for (;;) {
    if (!job_.valid() && !job_result_) {
      if (state_ == State::kFailed) return *failure_;
      if (state_ == State::kCommitPending) {
        // The checkpoint went into the transaction already; a different
        // one now would mean the caller lost track of what it committed.
        OUTBOX_ASSERT(pending_checkpoint_ && *pending_checkpoint_ == checkpoint);
      } else {
        OUTBOX_ASSERT(state_ == State::kInTransaction);
      }
      job_checkpoint_ = checkpoint;
      job_in_flight_ = core_->in_flight();
      job_in_flight_bytes_ = core_->in_flight_bytes();
      job_ = std::async(std::launch::async, [this, checkpoint, job_deadline] {
        auto r = commit_until(checkpoint, job_deadline);
        core_->wake();
        return r;
      });
    } else if (job_.valid()) {
      OUTBOX_ASSERT(job_checkpoint_ == checkpoint);
    }
    if (!settle(milliseconds(remaining_ms(deadline)))) {
      return make_txn_error(txn_errc::timed_out,
                            "transactional.id '" + options_.transactional_id +
                                "': the commit is still waiting for Kafka after " +
                                std::to_string(timeout.count()) + " ms");
    }
    common::Result<void> r = std::move(*job_result_);
    job_result_.reset();
    // A commit that ran out of the time it was started with resumes while
    // this call has time left.
    if (r || r.error().code != make_error_code(txn_errc::timed_out) ||
        Clock::now() >= deadline ||
        (state_ != State::kInTransaction && state_ != State::kCommitPending)) {
      return r;
    }
  }
}

bool TransactionalProducer::settle(milliseconds wait) {
  if (!job_.valid()) return true;
  if (job_.wait_for(wait) != std::future_status::ready) return false;
  job_result_ = job_.get();
  return true;
}

void TransactionalProducer::settle_for_good() {
  if (job_.valid()) job_.wait();
  settle(milliseconds(0));
}

common::Result<void> TransactionalProducer::commit_until(const Checkpoint& checkpoint,
                                                         Clock::time_point deadline) {
  if (state_ == State::kCommitPending) return finish_commit(deadline);
  // librdkafka would refuse the commit for it anyway (_INCONSISTENT); the
  // report of the failed record tells why.
  if (core_->first_failure() != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return abort_because(abort_cause(RD_KAFKA_RESP_ERR__INCONSISTENT, "", "produce"), deadline);
  }
  // The records first: the checkpoint's AddOffsetsToTxn sent while the
  // records' AddPartitionsToTxn is still with the coordinator is answered
  // CONCURRENT_TRANSACTIONS and retried only after retry.backoff.ms (100 ms
  // by default), in about one commit in ten (bench/RESULTS-txn-commit.md).
  // Nothing is sent yet when the flush runs out of time: the transaction is
  // still open, and commit() again resumes here.
  if (const rd_kafka_resp_err_t e = rd_kafka_flush(core_->rk(), remaining_ms(deadline));
      e == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    return detail::txn_error(txn_errc::timed_out, e, "flush", options_.transactional_id,
                             std::to_string(core_->in_flight()) + " records not yet acknowledged");
  }
  if (core_->first_failure() != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return abort_because(abort_cause(RD_KAFKA_RESP_ERR__INCONSISTENT, "", "produce"), deadline);
  }
  if (auto r = send_checkpoint(checkpoint, deadline); !r) return r;
  pending_checkpoint_ = checkpoint;
  return finish_commit(deadline);
}

common::Result<void> TransactionalProducer::send_checkpoint(const Checkpoint& checkpoint,
                                                            Clock::time_point deadline) {
  const auto& place = options_.checkpoint;
  const std::string text = encode_checkpoint(checkpoint);
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* tp =
      rd_kafka_topic_partition_list_add(offsets, place.topic.c_str(), place.partition);
  // Nothing is read from the checkpoint topic; the offset only has to be
  // valid (librdkafka skips negative ones), the metadata is the checkpoint.
  tp->offset = 0;
  tp->metadata = strdup(text.c_str());
  tp->metadata_size = text.size();
  rd_kafka_t* rk = core_->rk();
  auto e = retry_until(
      [&](int ms) {
        return rd_kafka_send_offsets_to_transaction(rk, offsets, group_metadata_.get(), ms);
      },
      deadline);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (!e) return {};
  if (e->fatal) {
    return fail(detail::txn_error(detail::txn_reason(e->code, txn_errc::fatal), e->code,
                                  "send_offsets_to_transaction", options_.transactional_id,
                                  e->detail, &options_.checkpoint));
  }
  if (e->requires_abort) {
    return abort_because(abort_cause(e->code, e->detail, "send_offsets_to_transaction"), deadline);
  }
  if (e->retriable) {
    // Nothing was sent: the transaction is still open, commit() or abort()
    // may be called again.
    return detail::txn_error(txn_errc::timed_out, e->code, "send_offsets_to_transaction",
                             options_.transactional_id, e->detail);
  }
  return fail(detail::txn_error(txn_errc::fatal, e->code, "send_offsets_to_transaction",
                                options_.transactional_id, e->detail));
}

common::Result<void> TransactionalProducer::finish_commit(Clock::time_point deadline) {
  rd_kafka_t* rk = core_->rk();
  auto e = retry_until([&](int ms) { return rd_kafka_commit_transaction(rk, ms); }, deadline);
  if (!e) {
    state_ = State::kReady;
    last_committed_ = pending_checkpoint_;
    pending_checkpoint_.reset();
    return {};
  }
  if (e->fatal) {
    return fail(detail::txn_error(detail::txn_reason(e->code, txn_errc::fatal), e->code,
                                  "commit_transaction", options_.transactional_id, e->detail));
  }
  if (e->requires_abort) {
    return abort_because(abort_cause(e->code, e->detail, "commit_transaction"), deadline);
  }
  if (e->retriable) {
    state_ = State::kCommitPending;
    return detail::txn_error(txn_errc::timed_out, e->code, "commit_transaction",
                             options_.transactional_id,
                             e->detail + "; the outcome is unknown until commit() is called again");
  }
  return fail(detail::txn_error(txn_errc::fatal, e->code, "commit_transaction",
                                options_.transactional_id, e->detail));
}

common::Result<void> TransactionalProducer::abort(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  if (!settle(timeout)) {
    return make_txn_error(txn_errc::timed_out,
                          "transactional.id '" + options_.transactional_id +
                              "': a commit is still waiting for Kafka; abort() again later");
  }
  // What the commit came to no longer matters to a caller that aborts.
  job_result_.reset();
  if (state_ == State::kFailed) return *failure_;
  OUTBOX_ASSERT(state_ != State::kNew);
  if (state_ == State::kCommitPending) {
    // librdkafka lets only the timed-out call resume (_CONFLICT otherwise).
    return make_txn_error(
        txn_errc::timed_out,
        "transactional.id '" + options_.transactional_id +
            "': a commit is pending; call commit() again or destroy the producer");
  }
  return abort_until(deadline);
}

common::Result<void> TransactionalProducer::abort_until(Clock::time_point deadline) {
  if (state_ == State::kFailed) return *failure_;
  if (state_ == State::kReady) return {};
  OUTBOX_ASSERT(state_ == State::kInTransaction || state_ == State::kAbortPending ||
                state_ == State::kCommitPending);
  rd_kafka_t* rk = core_->rk();
  // Nothing of an aborted transaction is ever read, so nothing of it is
  // waited for: abort_transaction flushes what is still queued or in
  // flight, and a record the broker keeps refusing (too large for the
  // topic), or one waiting for a topic that does not exist, would hold it
  // until its timeout. Purged in flight, the partition's sequence numbers
  // have a gap that only a new epoch closes (renew_handle() at the next
  // begin()).
  if (core_->in_flight() > 0) {
    rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    renew_before_begin_ = true;
  }
  auto e = retry_until([&](int ms) { return rd_kafka_abort_transaction(rk, ms); }, deadline);
  if (!e) {
    state_ = State::kReady;
    pending_checkpoint_.reset();
    return {};
  }
  if (e->retriable && !e->fatal) {
    state_ = State::kAbortPending;
    return detail::txn_error(txn_errc::timed_out, e->code, "abort_transaction",
                             options_.transactional_id, e->detail);
  }
  return fail(detail::txn_error(detail::txn_reason(e->code, txn_errc::fatal), e->code,
                                "abort_transaction", options_.transactional_id, e->detail));
}

common::Error TransactionalProducer::abort_cause(int error_code, const std::string& detail,
                                                 const char* step) const {
  // A failed delivery is the first cause: librdkafka's own error for it
  // (_INCONSISTENT, "n message(s) failed delivery") names no record.
  const rd_kafka_resp_err_t failed = core_->first_failure();
  if (failed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return detail::txn_error(detail::delivery_failure_reason(failed), failed, "delivery",
                             options_.transactional_id, core_->first_failure_detail());
  }
  const auto code = static_cast<rd_kafka_resp_err_t>(error_code);
  txn_errc reason = detail::txn_reason(code, txn_errc::aborted);
  // A refused checkpoint commit for a missing partition or in a timeout is
  // still only an aborted transaction for the caller.
  if (reason == txn_errc::timed_out || reason == txn_errc::invalid_config) {
    reason = txn_errc::aborted;
  }
  return detail::txn_error(reason, code, step, options_.transactional_id, detail,
                           &options_.checkpoint);
}

common::Result<void> TransactionalProducer::abort_because(common::Error cause,
                                                          Clock::time_point deadline) {
  spdlog::warn("transactional_id={} aborting the transaction: {}", options_.transactional_id,
               cause.describe());
  if (auto r = abort_until(std::max(deadline, Clock::now() + kMinAbortTime)); !r) return r;
  const rd_kafka_resp_err_t failed = core_->first_failure();
  if (failed != RD_KAFKA_RESP_ERR_NO_ERROR && failed != RD_KAFKA_RESP_ERR__PURGE_QUEUE &&
      failed != RD_KAFKA_RESP_ERR__PURGE_INFLIGHT && core_->in_flight() == 0) {
    renew_handle(std::max(deadline, Clock::now() + kMinRenewTime));
  }
  cause.message = "transaction aborted: " + cause.message;
  return cause;
}

// A record the broker refused leaves a gap in its partition's sequence
// numbers that the abort does not close: librdkafka bumps the epoch only
// when the next write to that partition fails with
// OUT_OF_ORDER_SEQUENCE_NUMBER, which would abort the replay once more. A
// new handle gets a new epoch from init_transactions, and every sequence
// starts afresh. Should that fail, the next call reports it.
common::Result<void> TransactionalProducer::reset() {
  settle_for_good();
  job_result_.reset();
  auto core =
      detail::ProducerCore::replace(std::move(core_), properties_, "transactional Kafka producer");
  if (!core) return fail(make_txn_error(txn_errc::fatal, core.error().describe()));
  core_ = std::move(*core);
  state_ = State::kNew;
  failure_.reset();
  pending_checkpoint_.reset();
  refused_for_abort_ = false;
  renew_before_begin_ = false;
  transactions_initialized_ = false;
  return {};
}

void TransactionalProducer::renew_handle(Clock::time_point deadline) {
  renew_before_begin_ = false;
  auto core =
      detail::ProducerCore::replace(std::move(core_), properties_, "transactional Kafka producer");
  if (!core) {
    state_ = State::kFailed;
    failure_ = make_txn_error(txn_errc::fatal, core.error().describe());
    return;
  }
  core_ = std::move(*core);
  rd_kafka_t* rk = core_->rk();
  if (auto e = retry_until([&](int ms) { return rd_kafka_init_transactions(rk, ms); }, deadline)) {
    const txn_errc reason =
        e->retriable ? txn_errc::timed_out : detail::txn_reason(e->code, txn_errc::fatal);
    state_ = State::kFailed;
    failure_ = detail::txn_error(reason, e->code, "init_transactions after an abort",
                                 options_.transactional_id, e->detail);
    spdlog::error("transactional_id={} {}", options_.transactional_id, failure_->describe());
  }
}

bool TransactionalProducer::must_abort() const {
  if (job_.valid()) return false;
  return refused_for_abort_ || core_->first_failure() != RD_KAFKA_RESP_ERR_NO_ERROR;
}

relay::ProduceResult TransactionalProducer::produce(const relay::OutboxRecord& record,
                                                    uint64_t token) {
  if (state_ == State::kFailed) {
    const bool fenced = failure_->code == make_error_code(txn_errc::fenced);
    return {relay::ProduceOutcome::kRejected, relay::DeliveryStatus::kFatal,
            fenced ? relay::DeliveryReason::kFenced : relay::DeliveryReason::kOther,
            failure_->describe()};
  }
  OUTBOX_ASSERT(!job_.valid() && state_ == State::kInTransaction);
  const rd_kafka_resp_err_t err = core_->produce(record, token);
  if (err == RD_KAFKA_RESP_ERR__STATE) {
    // librdkafka takes no record into a transaction in an abortable error
    // state: an earlier delivery failed.
    refused_for_abort_ = true;
    return {relay::ProduceOutcome::kRejected, relay::DeliveryStatus::kRetriable,
            relay::DeliveryReason::kOther,
            "transaction must be aborted: " + std::string(rd_kafka_err2str(err))};
  }
  return detail::produce_result(err);
}

int TransactionalProducer::poll(milliseconds timeout, const ReportFn& on_report) {
  if (job_.valid()) {
    // Emptied before looking at the commit, so that the wakeup of a commit
    // that ends right after is not lost; through the fd, which outlives a
    // handle the commit thread may be replacing.
    detail::drain_pipe(wakeup_fd_);
    if (!settle(timeout)) return 0;
    timeout = milliseconds(0);
  }
  return core_->poll(timeout, on_report);
}

int TransactionalProducer::wakeup_fd() const {
  return wakeup_fd_;
}
size_t TransactionalProducer::in_flight() const {
  return job_.valid() ? job_in_flight_ : core_->in_flight();
}
uint64_t TransactionalProducer::in_flight_bytes() const {
  return job_.valid() ? job_in_flight_bytes_ : core_->in_flight_bytes();
}

void TransactionalProducer::purge() {
  // A running commit flushes what is queued; there is nothing to drop.
  if (job_.valid()) return;
  rd_kafka_purge(core_->rk(), RD_KAFKA_PURGE_F_QUEUE);
}

std::string TransactionalProducer::failure() const {
  if (job_.valid()) return {};
  if (failure_) return failure_->describe();
  return core_->fatal_error();
}

}  // namespace kafka
