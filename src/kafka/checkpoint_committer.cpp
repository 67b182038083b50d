#include "kafka/checkpoint_committer.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "kafka/checkpoint.h"
#include "kafka/client_config.h"
#include "kafka/producer_core.h"
#include "kafka/txn_errc.h"
#include "kafka/txn_reason.h"

namespace kafka {

struct CheckpointCommitter::Handle {
  rd_kafka_t* rk = nullptr;
  ~Handle() {
    // It never joined the group: nothing to leave.
    if (rk) rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
};

common::Result<std::unique_ptr<CheckpointCommitter>> CheckpointCommitter::create(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const CheckpointPlace& place) {
  auto conf = detail::checkpoint_client_conf(brokers, properties, place,
                                             {{"enable.auto.offset.store", "false"}});
  if (!conf) return conf.error();
  std::unique_ptr<CheckpointCommitter> c(new CheckpointCommitter(place));
  rd_kafka_conf_set_opaque(conf->get(), c.get());
  rd_kafka_conf_set_offset_commit_cb(
      conf->get(), [](rd_kafka_t* rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t* offsets,
                      void* op) { on_commit(rk, err, offsets, op); });
  auto client = detail::new_client(RD_KAFKA_CONSUMER, std::move(*conf), "the checkpoint writer");
  if (!client) return make_txn_error(txn_errc::invalid_config, client.error().describe());
  c->handle_ = std::make_unique<Handle>();
  c->handle_->rk = *client;
  return c;
}

CheckpointCommitter::CheckpointCommitter(CheckpointPlace place) : place_(std::move(place)) {}

CheckpointCommitter::~CheckpointCommitter() {
  if (!handle_) return;
  const auto deadline = std::chrono::steady_clock::now() + kFinalWait;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!in_flight_ && waiting_) {
      const relay::Checkpoint next = *waiting_;
      waiting_.reset();
      send(next);
    }
    if (!in_flight_) break;
    rd_kafka_poll(handle_->rk, 50);
  }
  if (in_flight_ || waiting_) {
    spdlog::warn(
        "checkpoint of {} group={} not written within {} ms at stop; the previous one stands",
        place_.topic, place_.group_id, kFinalWait.count());
  }
}

void CheckpointCommitter::serve() { rd_kafka_poll(handle_->rk, 0); }

void CheckpointCommitter::offer(const relay::Checkpoint& checkpoint) {
  serve();
  if (in_flight_) {
    waiting_ = checkpoint;
    return;
  }
  waiting_.reset();
  send(checkpoint);
}

void CheckpointCommitter::send(const relay::Checkpoint& checkpoint) {
  const std::string text = encode_checkpoint(checkpoint);
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* tp =
      rd_kafka_topic_partition_list_add(offsets, place_.topic.c_str(), place_.partition);
  // Nothing is read from the checkpoint topic: only the metadata matters.
  tp->offset = 0;
  tp->metadata = strdup(text.c_str());
  tp->metadata_size = text.size();
  in_flight_ = checkpoint;
  const rd_kafka_resp_err_t err = rd_kafka_commit(handle_->rk, offsets, 1);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (err) commit_result(err, nullptr);
}

void CheckpointCommitter::on_commit(void* /*rk*/, int err, void* offsets, void* opaque) {
  static_cast<CheckpointCommitter*>(opaque)->commit_result(err, offsets);
}

void CheckpointCommitter::commit_result(int err, void* offsets_ptr) {
  auto code = static_cast<rd_kafka_resp_err_t>(err);
  if (!code && offsets_ptr) {
    const auto* offsets = static_cast<const rd_kafka_topic_partition_list_t*>(offsets_ptr);
    for (int i = 0; i < offsets->cnt && !code; ++i) code = offsets->elems[i].err;
  }
  std::optional<relay::Checkpoint> sent = std::move(in_flight_);
  in_flight_.reset();
  if (!code) {
    if (sent && sent->end_lsn.value() > written_lsn_.load()) {
      written_lsn_ = sent->end_lsn.value();
    }
  } else {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ >= std::chrono::seconds(30)) {
      last_warning_ = now;
      std::string message = std::string(rd_kafka_err2name(code)) + ": " + rd_kafka_err2str(code);
      if (const std::string acl = detail::acl_to_grant(code, "", &place_); !acl.empty()) {
        message += "; " + acl;
      }
      spdlog::warn(
          "checkpoint lsn={} not written to group={} topic={} partition={}: {}; the relay "
          "streams on and writes it with the next confirmed position, but until one is "
          "written a slot lost meanwhile cannot be told from a first start",
          sent ? sent->end_lsn.to_string() : std::string("?"), place_.group_id, place_.topic,
          place_.partition, message);
    }
    // Written with the next offer, unless a newer one already waits.
    if (sent && !waiting_) waiting_ = sent;
  }
  if (waiting_ && !in_flight_ && !code) {
    relay::Checkpoint next = *waiting_;
    waiting_.reset();
    send(next);
  }
}

}  // namespace kafka
