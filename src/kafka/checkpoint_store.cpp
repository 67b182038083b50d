#include "kafka/checkpoint_store.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <thread>

#include "kafka/client_config.h"
#include "kafka/producer_core.h"
#include "kafka/txn_reason.h"

namespace kafka {

namespace {

std::string describe(const CheckpointPlace& place) {
  return "group '" + place.group_id + "' topic '" + place.topic + "' partition " +
         std::to_string(place.partition);
}

common::Error read_error(rd_kafka_resp_err_t code, const CheckpointPlace& place) {
  txn_errc reason = detail::txn_reason(code, txn_errc::fatal);
  if (reason == txn_errc::fenced) reason = txn_errc::fatal;
  std::string message = "reading the checkpoint of " + describe(place) +
                        " failed: " + rd_kafka_err2name(code) + ": " + rd_kafka_err2str(code);
  if (const std::string acl = detail::acl_to_grant(code, "", &place); !acl.empty()) {
    message += "; " + acl;
  }
  return make_txn_error(reason, std::move(message));
}

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kCommittedSlice{500};
constexpr std::chrono::milliseconds kCoordinatorRetry{100};

bool coordinator_moving(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
         err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
         err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
}

// The first authorization failure among the consumer's error events, if any.
std::optional<rd_kafka_resp_err_t> coordinator_refusal(rd_kafka_t* rk) {
  std::optional<rd_kafka_resp_err_t> refused;
  while (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 0)) {
    if (!refused && m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        detail::txn_reason(m->err, txn_errc::fatal) == txn_errc::unauthorized) {
      refused = m->err;
    }
    rd_kafka_message_destroy(m);
  }
  return refused;
}

}  // namespace

std::string transactional_id_for(std::string_view prefix, std::string_view slot) {
  return std::string(prefix) + std::string(slot);
}

CheckpointPlace single_slot_checkpoint_place(std::string_view prefix, std::string_view slot) {
  return {std::string(prefix) + std::string(slot), std::string(prefix) + "checkpoints", 0};
}

CheckpointPlace group_checkpoint_place(std::string_view coordination_group,
                                       std::string_view coordination_topic, int slot_index) {
  return {std::string(coordination_group), std::string(coordination_topic) + ".checkpoints",
          slot_index};
}

common::Result<std::optional<Checkpoint>> read_checkpoint(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const CheckpointPlace& place, std::chrono::milliseconds timeout) {
  // read_committed makes the offset fetch ask for stable offsets (KIP-447):
  // the broker answers only once no open transaction holds a commit to them.
  auto conf = detail::checkpoint_client_conf(brokers, properties, place,
                                             {{"isolation.level", "read_committed"}});
  if (!conf) return conf.error();
  auto client = detail::new_client(RD_KAFKA_CONSUMER, std::move(*conf), "the checkpoint reader");
  if (!client) return make_txn_error(txn_errc::invalid_config, client.error().describe());
  rd_kafka_t* rk = *client;
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, place.topic.c_str(), place.partition);
  // A group coordinator lookup the broker refuses (no DESCRIBE on the group)
  // is not an answer to rd_kafka_committed(), which waits for a coordinator
  // until its timeout: librdkafka reports the refusal once, as a consumer
  // error event, and keeps asking. Asked in slices, between which the
  // events are looked at, the refusal ends the wait.
  //
  // A coordinator that moved or is still loading its log (right after a
  // broker restart or a hang) answers NOT_COORDINATOR or LOAD_IN_PROGRESS:
  // asked again until the timeout, as librdkafka does for its own requests.
  const auto deadline = Clock::now() + timeout;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
  for (;;) {
    const auto slice = std::clamp(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
        std::chrono::milliseconds(1), kCommittedSlice);
    err = rd_kafka_committed(rk, list, static_cast<int>(slice.count()));
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = list->elems[0].err;
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
      if (const auto refused = coordinator_refusal(rk)) {
        err = *refused;
        break;
      }
    } else if (!coordinator_moving(err) || Clock::now() + kCoordinatorRetry >= deadline) {
      break;
    } else {
      std::this_thread::sleep_for(kCoordinatorRetry);
    }
    if (Clock::now() >= deadline) break;
  }
  const rd_kafka_topic_partition_t& tp = list->elems[0];
  common::Result<std::optional<Checkpoint>> result = std::optional<Checkpoint>();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    result = read_error(err, place);
  } else if (tp.offset != RD_KAFKA_OFFSET_INVALID) {
    // An offset without a checkpoint in it is not ours either: the place
    // is shared with something else, and guessing a position would skip
    // or repeat rows.
    const std::string_view text(static_cast<const char*>(tp.metadata), tp.metadata_size);
    auto checkpoint = parse_checkpoint(text);
    if (checkpoint) {
      result = std::optional<Checkpoint>(*checkpoint);
    } else {
      result = make_txn_error(txn_errc::malformed_checkpoint,
                              checkpoint.error().message + " (" + describe(place) + ")");
    }
  }
  rd_kafka_topic_partition_list_destroy(list);
  // The reader never joined the group: nothing to leave.
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  return result;
}

common::Result<int> ensure_checkpoint_topic(const std::string& brokers,
                                            const std::map<std::string, std::string>& properties,
                                            const std::string& topic, int partitions,
                                            std::chrono::milliseconds timeout) {
  detail::Properties props = properties;
  props["bootstrap.servers"] = brokers;
  props["client.id"] = "outbox-relay-admin";
  auto conf = detail::new_conf(props);
  if (!conf) return make_txn_error(txn_errc::invalid_config, conf.error().describe());
  detail::route_logs_to_spdlog(conf->get());
  auto client = detail::new_client(RD_KAFKA_PRODUCER, std::move(*conf), "the admin client");
  if (!client) return make_txn_error(txn_errc::invalid_config, client.error().describe());
  rd_kafka_t* rk = *client;
  auto to_txn_error = [&](const common::Error& e) {
    const auto code = static_cast<rd_kafka_resp_err_t>(e.code.value());
    txn_errc reason = detail::txn_reason(code, txn_errc::fatal);
    if (reason == txn_errc::fenced) reason = txn_errc::fatal;
    return make_txn_error(reason, "checkpoint topic: " + e.describe());
  };
  common::Result<int> result = 0;
  auto count = detail::partition_count(rk, topic, timeout);
  if (!count) {
    result = to_txn_error(count.error());
  } else if (count->has_value()) {
    result = **count;
  } else if (auto created = detail::create_topic(rk, topic, partitions,
                                                 {{"cleanup.policy", "compact"}}, timeout);
             !created) {
    result = to_txn_error(created.error());
  } else {
    // Another instance may have created it first, with its own count.
    auto after = detail::await_partitions(rk, topic, partitions, timeout);
    if (!after) {
      result = to_txn_error(after.error());
    } else if (!after->has_value()) {
      result = make_txn_error(txn_errc::timed_out,
                              "checkpoint topic '" + topic +
                                  "' was created but does not show in the metadata after " +
                                  std::to_string(timeout.count()) + " ms");
    } else {
      result = **after;
    }
  }
  rd_kafka_destroy(rk);
  if (result && *result < partitions) {
    return make_txn_error(txn_errc::invalid_config,
                          "checkpoint topic '" + topic + "' has " + std::to_string(*result) +
                              " partitions, fewer than the " + std::to_string(partitions) +
                              " slots; add partitions (kafka-topics --alter --partitions " +
                              std::to_string(partitions) + ")");
  }
  return result;
}

}  // namespace kafka
