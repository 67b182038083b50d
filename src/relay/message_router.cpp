#include "relay/message_router.h"

#include <fmt/format.h>

#include <utility>

#include "config/names.h"
#include "relay/errc.h"
#include "relay/message_envelope.h"
#include "relay/value_codec.h"

namespace relay {

MessageRouter::MessageRouter(const config::OutboxConfig& cfg)
    : prefix_(cfg.message_prefix), allow_non_transactional_(cfg.allow_non_transactional_messages) {}

RouteOutcome MessageRouter::route(const wal::Message& message, const RowContext& ctx) {
  RouteOutcome routed = route_envelope(message, ctx);
  auto* record = std::get_if<OutboxRecord>(&routed);
  if (record == nullptr || message.transactional() || allow_non_transactional_) return routed;
  // Written to the WAL at once, whether or not its transaction commits: it
  // may describe a change that never happened.
  BadRow bad;
  bad.reason =
      "non-transactional message (pg_logical_emit_message with transactional = false): it is "
      "decoded even when its transaction rolls back; set "
      "outbox.allow_non_transactional_messages: true to publish such messages";
  for (const Header& h : record->headers) {
    if (h.key == kHeaderId && h.value) bad.row_id = *h.value;
  }
  bad.message_prefix = prefix_;
  bad.original_topic = std::move(record->topic);
  bad.payload = std::move(record->payload);
  return RouteOutcome{std::move(bad)};
}

RouteOutcome MessageRouter::route_envelope(const wal::Message& message, const RowContext& ctx) {
  const std::string lsn_id = message.lsn.to_string();
  auto bad = [&](std::string reason) {
    BadRow b;
    b.reason = std::move(reason);
    b.row_id = lsn_id;
    b.message_prefix = prefix_;
    return b;
  };
  auto envelope = parse_envelope(message.content);
  if (!envelope) {
    // Nothing in it can be trusted: the whole content goes along, so that
    // the event can still be recovered from the dead-letter topic.
    BadRow b = bad(envelope.error().message);
    b.payload = std::string(message.content);
    return RouteOutcome{std::move(b)};
  }
  const MessageEnvelope& e = *envelope;
  OutboxRecord record;
  std::string id = e.id ? std::string(*e.id) : lsn_id;
  auto bad_field = [&](std::string reason) {
    BadRow b = bad(std::move(reason));
    b.row_id = id;
    if (e.topic) b.original_topic = std::string(*e.topic);
    if (e.payload) b.payload = std::string(*e.payload);
    return RouteOutcome{std::move(b)};
  };

  if (!e.payload) return bad_field("payload is null");
  if (!e.topic) return bad_field("topic is null");
  record.topic.assign(*e.topic);
  if (record.topic.empty() || record.topic != last_valid_topic_) {
    if (auto valid = config::check_topic_name(record.topic); !valid) {
      return bad_field(fmt::format("topic {} is not a valid Kafka topic name: {}",
                                   quote_value(record.topic), valid.error().describe()));
    }
    last_valid_topic_ = record.topic;
  }
  if (e.partition < -1) return bad_field(fmt::format("partition is negative: {}", e.partition));
  record.partition = e.partition;
  if (e.key) record.key.emplace(*e.key);
  record.headers.reserve(4);
  if (e.headers) {
    header_reader_.document().assign(*e.headers);
    if (auto read = header_reader_.read(record.headers); !read) {
      return bad_field(read.error().message);
    }
  }
  record.headers.push_back(Header{std::string(kHeaderId), std::move(id)});
  record.headers.push_back(Header{std::string(kHeaderLsn), ctx.commit_lsn.to_string()});
  record.headers.push_back(Header{std::string(kHeaderXid), std::to_string(ctx.xid)});
  record.payload.assign(*e.payload);
  return RouteOutcome{std::move(record)};
}

}  // namespace relay
