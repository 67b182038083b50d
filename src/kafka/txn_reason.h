#pragma once

// librdkafka's error codes, met in a transactional step or a checkpoint
// read, turned into the reason callers act on (txn_errc). Internal to
// src/kafka. Decided from codes and the error's flags only, never from its
// text.

#include <librdkafka/rdkafka.h>

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "kafka/checkpoint_store.h"
#include "kafka/client_config.h"
#include "kafka/txn_errc.h"

namespace kafka::detail {

// The reason for a code on its own; `otherwise` when the code says nothing
// specific.
txn_errc txn_reason(rd_kafka_resp_err_t code, txn_errc otherwise);

// The reason for a failed delivery inside a transaction, which librdkafka
// then makes abortable.
txn_errc delivery_failure_reason(rd_kafka_resp_err_t code);

// The ACL an authorization failure `code` calls for, as a sentence naming
// the resource ("grant the relay's principal READ on Group 'g'"); empty for
// other codes. `checkpoint` is the checkpoint's place when the failed step
// reads or commits the checkpoint: a refused topic is then the checkpoint
// topic, otherwise an output topic.
std::string acl_to_grant(rd_kafka_resp_err_t code, std::string_view transactional_id,
                         const CheckpointPlace* checkpoint);

// An error for a failed step (`step` as in "commit_transaction"), its
// message naming the transactional.id, librdkafka's code name and text, and
// for unauthorized and unsupported what to grant or change (`checkpoint` as
// for acl_to_grant()).
common::Error txn_error(txn_errc reason, rd_kafka_resp_err_t code, std::string_view step,
                        std::string_view transactional_id, std::string_view detail,
                        const CheckpointPlace* checkpoint = nullptr);

// The configuration of a consumer that acts for the checkpoint group at
// `place` without joining it (reads or commits its offsets), with `extra`
// settings on top; its logs go to spdlog. invalid_config when rejected.
common::Result<OwnedConf> checkpoint_client_conf(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const CheckpointPlace& place, const std::map<std::string, std::string>& extra);

}  // namespace kafka::detail
