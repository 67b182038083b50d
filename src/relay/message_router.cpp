#include "relay/message_router.h"

#include <fmt/format.h>

#include <utility>

#include "config/names.h"
#include "relay/errc.h"
#include "relay/message_envelope.h"
#include "relay/value_codec.h"

namespace relay {

MessageRouter::MessageRouter(const config::OutboxConfig& cfg)
    : prefix_(cfg.message_prefix),
      allow_non_transactional_(cfg.allow_non_transactional_messages),
      null_payload_(cfg.null_payload) {}

RouteOutcome MessageRouter::route(const wal::Message& message, const RowContext& ctx) {
  auto envelope = parse_envelope(message.content);
  if (!envelope) {
    // Nothing in it can be trusted: the whole content goes along, so that
    // the event can still be recovered from the dead-letter topic.
    BadRow b;
    b.reason = envelope.error().message;
    b.row_id = message.lsn.to_string();
    b.message_prefix = prefix_;
    b.payload = std::string(message.content);
    return RouteOutcome{std::move(b)};
  }
  const MessageEnvelope& e = *envelope;
  std::string id = e.id ? std::string(*e.id) : message.lsn.to_string();
  auto bad = [&](std::string reason) {
    BadRow b;
    b.reason = std::move(reason);
    b.row_id = std::move(id);
    b.message_prefix = prefix_;
    if (e.topic) b.original_topic = std::string(*e.topic);
    if (e.payload) b.payload = std::string(*e.payload);
    return RouteOutcome{std::move(b)};
  };

  const bool tombstone = !e.payload && null_payload_ == config::NullPayloadPolicy::kTombstone;
  if (!e.payload && !tombstone) return bad("payload is null");
  if (!e.topic) return bad("topic is null");
  OutboxRecord record;
  record.null_value = tombstone;
  record.topic.assign(*e.topic);
  if (record.topic.empty() || record.topic != last_valid_topic_) {
    if (auto valid = config::check_topic_name(record.topic); !valid) {
      return bad(fmt::format("topic {} is not a valid Kafka topic name: {}",
                             quote_value(record.topic), valid.error().describe()));
    }
    last_valid_topic_ = record.topic;
  }
  if (e.partition < -1) return bad(fmt::format("partition is negative: {}", e.partition));
  record.partition = e.partition;
  if (e.key) record.key.emplace(*e.key);
  if (e.headers) {
    header_reader_.document().assign(*e.headers);
    if (auto read = header_reader_.read(record.headers); !read) return bad(read.error().message);
  }
  // Written to the WAL at once, whether or not its transaction commits: it
  // may announce a change that never happened.
  if (!message.transactional() && !allow_non_transactional_) {
    return bad(
        "non-transactional message (pg_logical_emit_message with transactional = false): it is "
        "decoded even when its transaction rolls back; set "
        "outbox.allow_non_transactional_messages: true to publish such messages");
  }
  relay_headers_.append(record.headers, std::move(id), ctx);
  if (e.payload) record.payload.assign(*e.payload);
  return RouteOutcome{std::move(record)};
}

}  // namespace relay
