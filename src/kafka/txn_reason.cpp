#include "kafka/txn_reason.h"

#include "kafka/producer.h"

namespace kafka::detail {

txn_errc txn_reason(rd_kafka_resp_err_t code, txn_errc otherwise) {
  switch (code) {
    // librdkafka reports a newer epoch of our transactional.id as _FENCED
    // (it folds PRODUCER_FENCED and INVALID_PRODUCER_EPOCH into it); the raw
    // codes are listed for the paths that pass them through.
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    // The group coordinator refuses an offset commit from a member of an
    // older generation: the checkpoint's slot was handed to someone else.
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID:
      return txn_errc::fenced;
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      return txn_errc::unauthorized;
    case RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION:
    case RD_KAFKA_RESP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT:
      return txn_errc::unsupported;
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return txn_errc::timed_out;
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return txn_errc::invalid_config;
    default:
      return otherwise;
  }
}

txn_errc delivery_failure_reason(rd_kafka_resp_err_t code) {
  const Classified classified = classify_error(code);
  if (classified.reason == relay::DeliveryReason::kTooLarge) return txn_errc::record_too_large;
  switch (classified.status) {
    case relay::DeliveryStatus::kPermanent:
      return txn_errc::record_rejected;
    case relay::DeliveryStatus::kFatal:
      return txn_reason(code, txn_errc::fatal);
    case relay::DeliveryStatus::kOk:
    case relay::DeliveryStatus::kRetriable:
      break;
  }
  return txn_errc::aborted;
}

std::string acl_to_grant(rd_kafka_resp_err_t code, std::string_view transactional_id,
                         const CheckpointPlace* checkpoint) {
  const std::string grant = "grant the relay's principal ";
  switch (code) {
    // FindCoordinator needs DESCRIBE on the transactional.id, InitProducerId
    // and every later transactional request WRITE.
    case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
      return grant + "WRITE and DESCRIBE on TransactionalId '" + std::string(transactional_id) +
             "'";
    // OffsetFetch (reading the checkpoint) needs DESCRIBE on the group,
    // AddOffsetsToTxn and TxnOffsetCommit (committing it) READ, which
    // implies DESCRIBE.
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
      if (checkpoint) {
        return grant + "READ on Group '" + checkpoint->group_id + "' (the checkpoint group)";
      }
      return grant + "READ on the checkpoint group";
    // TxnOffsetCommit needs READ on the topic of every offset it commits,
    // as a consumer's OffsetCommit does; a produce needs WRITE.
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
      if (checkpoint) {
        return grant + "READ on Topic '" + checkpoint->topic + "' (the checkpoint topic)";
      }
      return grant + "WRITE on the output topics";
    // Brokers before Kafka 2.8 ask idempotent and transactional producers
    // for it in InitProducerId.
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return grant + "IDEMPOTENT_WRITE on the Cluster";
    default:
      return {};
  }
}

common::Error txn_error(txn_errc reason, rd_kafka_resp_err_t code, std::string_view step,
                        std::string_view transactional_id, std::string_view detail,
                        const CheckpointPlace* checkpoint) {
  std::string message = std::string(step) + " for transactional.id '" +
                        std::string(transactional_id) + "' failed: " + rd_kafka_err2name(code);
  if (!detail.empty()) message += ": " + std::string(detail);
  switch (reason) {
    case txn_errc::unauthorized:
      if (const std::string acl = acl_to_grant(code, transactional_id, checkpoint); !acl.empty()) {
        message += "; " + acl;
      }
      break;
    case txn_errc::unsupported:
      message +=
          "; the brokers must support transactions (Kafka 0.11 or later) with a usable "
          "__transaction_state topic";
      break;
    default:
      break;
  }
  return make_txn_error(reason, std::move(message));
}

common::Result<OwnedConf> checkpoint_client_conf(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const CheckpointPlace& place, const std::map<std::string, std::string>& extra) {
  std::map<std::string, std::string> props = properties;
  props["bootstrap.servers"] = brokers;
  props["client.id"] = "outbox-relay-checkpoint";
  props["group.id"] = place.group_id;
  props["enable.auto.commit"] = "false";
  for (const auto& [k, v] : extra) props[k] = v;
  auto conf = new_conf(props);
  if (!conf) return make_txn_error(txn_errc::invalid_config, conf.error().describe());
  route_logs_to_spdlog(conf->get());
  return conf;
}

}  // namespace kafka::detail
