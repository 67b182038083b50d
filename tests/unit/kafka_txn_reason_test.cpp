// The reasons the transactional producer reports, decided from librdkafka's
// error codes alone, and the names the relay derives for a slot.
#include <gtest/gtest.h>

#include "kafka/checkpoint_store.h"
#include "kafka/txn_reason.h"

namespace kafka {
namespace {

TEST(KafkaTxnReason, EveryFencingCodeIsFenced) {
  for (auto code : {RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
                    RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH, RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION,
                    RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID, RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID}) {
    EXPECT_EQ(detail::txn_reason(code, txn_errc::fatal), txn_errc::fenced)
        << rd_kafka_err2name(code);
  }
}

TEST(KafkaTxnReason, AuthorizationAndSupportFailuresNameWhatToChange) {
  EXPECT_EQ(
      detail::txn_reason(RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, txn_errc::fatal),
      txn_errc::unauthorized);
  EXPECT_EQ(detail::txn_reason(RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, txn_errc::fatal),
            txn_errc::unauthorized);
  EXPECT_EQ(detail::txn_reason(RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE, txn_errc::fatal),
            txn_errc::unsupported);

  auto e = detail::txn_error(txn_errc::unauthorized,
                             RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                             "init_transactions", "outbox-relay-orders", "denied");
  EXPECT_EQ(e.code, txn_errc::unauthorized);
  EXPECT_NE(e.message.find("TRANSACTIONAL_ID_AUTHORIZATION_FAILED"), std::string::npos);
  EXPECT_NE(e.message.find("WRITE and DESCRIBE on TransactionalId 'outbox-relay-orders'"),
            std::string::npos)
      << e.message;
}

TEST(KafkaTxnReason, EachAuthorizationFailureNamesTheResourceAndTheAclToGrant) {
  const CheckpointPlace place{"outbox-relay-orders", "outbox-relay-checkpoints", 0};
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", &place),
            "grant the relay's principal WRITE and DESCRIBE on TransactionalId "
            "'outbox-relay-orders'");
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", &place),
            "grant the relay's principal READ on Group 'outbox-relay-orders' (the checkpoint "
            "group)");
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", &place),
            "grant the relay's principal READ on Topic 'outbox-relay-checkpoints' (the "
            "checkpoint topic)");
  // Outside the checkpoint's steps a refused topic is one the relay writes.
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", nullptr),
            "grant the relay's principal WRITE on the output topics");
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", nullptr),
            "grant the relay's principal READ on the checkpoint group");
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED,
                                 "outbox-relay-orders", nullptr),
            "grant the relay's principal IDEMPOTENT_WRITE on the Cluster");
  EXPECT_EQ(detail::acl_to_grant(RD_KAFKA_RESP_ERR__FENCED, "outbox-relay-orders", &place), "");

  auto e = detail::txn_error(txn_errc::unauthorized, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
                             "send_offsets_to_transaction", "outbox-relay-orders", "denied",
                             &place);
  EXPECT_EQ(e.message,
            "send_offsets_to_transaction for transactional.id 'outbox-relay-orders' failed: "
            "GROUP_AUTHORIZATION_FAILED: denied; grant the relay's principal READ on Group "
            "'outbox-relay-orders' (the checkpoint group)");
}

TEST(KafkaTxnReason, UnknownCodesTakeTheCallersDefault) {
  EXPECT_EQ(detail::txn_reason(RD_KAFKA_RESP_ERR__INCONSISTENT, txn_errc::aborted),
            txn_errc::aborted);
  EXPECT_EQ(detail::txn_reason(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, txn_errc::fatal),
            txn_errc::fatal);
}

TEST(KafkaTxnReason, FailedDeliveriesSayWhetherTheRecordIsAtFault) {
  for (auto code : {RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE,
                    RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE}) {
    EXPECT_EQ(detail::delivery_failure_reason(code), txn_errc::record_too_large)
        << rd_kafka_err2name(code);
  }
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
            txn_errc::record_rejected);
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED),
            txn_errc::record_rejected);
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT), txn_errc::aborted);
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR__PURGE_QUEUE), txn_errc::aborted);
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR_PRODUCER_FENCED), txn_errc::fenced);
  EXPECT_EQ(detail::delivery_failure_reason(RD_KAFKA_RESP_ERR__FATAL), txn_errc::fatal);
}

TEST(KafkaTxnReason, OnlyTheAbortReasonsLeaveTheProducerReady) {
  EXPECT_TRUE(is_aborted(txn_errc::aborted));
  EXPECT_TRUE(is_aborted(txn_errc::record_too_large));
  EXPECT_TRUE(is_aborted(txn_errc::record_rejected));
  EXPECT_FALSE(is_aborted(txn_errc::fenced));
  EXPECT_FALSE(is_aborted(txn_errc::timed_out));
  EXPECT_FALSE(is_aborted(std::error_code()));
}

TEST(KafkaSlotNames, TransactionalIdAndCheckpointPlacesDeriveFromTheSlot) {
  EXPECT_EQ(transactional_id_for(kDefaultTransactionalIdPrefix, "orders_slot"),
            "outbox-relay-orders_slot");
  EXPECT_EQ(single_slot_checkpoint_place("outbox-relay-", "orders_slot"),
            (CheckpointPlace{"outbox-relay-orders_slot", "outbox-relay-checkpoints", 0}));
  EXPECT_EQ(group_checkpoint_place("relays", "relays.slots", 3),
            (CheckpointPlace{"relays", "relays.slots.checkpoints", 3}));
}

}  // namespace
}  // namespace kafka
