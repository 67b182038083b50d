// The message envelope (relay/message_envelope.h) and the router that turns a
// message of the relay's prefix into a record or a bad row, byte for byte as
// sql/04-outbox-emit.sql writes it.
#include <gtest/gtest.h>

#include <string>

#include "envelope_writer.h"
#include "relay/errc.h"
#include "relay/message_envelope.h"
#include "relay/message_router.h"

namespace relay {
namespace {

using testing::EnvelopeFields;
using testing::write_envelope;

// What outbox.emit('orders', '42', '{"a": 1}'::jsonb, '{"type": "X"}')
// wrote on PostgreSQL 15 (pg_logical_slot_peek_binary_changes).
const std::string kFromPostgres = std::string(
    "\x01\0\0\0\x06orders\0\0\0\x02"
    "42\xff\xff\xff\xff\xff\xff\xff\xff\0\0\0\x0d"
    "{\"type\": \"X\"}\0\0\0\x08{\"a\": 1}",
    54);

std::string show(const std::vector<Header>& headers) {
  std::string out;
  for (const auto& h : headers) {
    if (!out.empty()) out += ", ";
    out += h.key + "=" + h.value.value_or("<null>");
  }
  return out;
}

TEST(MessageEnvelope, ReadsWhatPostgresWrote) {
  auto e = parse_envelope(kFromPostgres);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(e->topic, std::optional<std::string_view>("orders"));
  EXPECT_EQ(e->key, std::optional<std::string_view>("42"));
  EXPECT_EQ(e->partition, -1);
  EXPECT_EQ(e->id, std::nullopt);
  EXPECT_EQ(e->headers, std::optional<std::string_view>("{\"type\": \"X\"}"));
  EXPECT_EQ(e->payload, std::optional<std::string_view>("{\"a\": 1}"));
}

TEST(MessageEnvelope, EveryFieldMayBeAbsentAndPayloadBytesAreKeptAsIs) {
  EnvelopeFields f;
  f.topic.reset();
  f.payload = std::string("\0\xff\x01", 3);
  f.partition = 7;
  const std::string bytes = write_envelope(f);
  auto e = parse_envelope(bytes);
  ASSERT_TRUE(e.ok()) << e.error().describe();
  EXPECT_EQ(e->topic, std::nullopt);
  EXPECT_EQ(e->key, std::nullopt);
  EXPECT_EQ(e->partition, 7);
  EXPECT_EQ(e->payload, std::optional<std::string_view>(std::string_view("\0\xff\x01", 3)));
  f.payload.reset();
  EXPECT_EQ(parse_envelope(write_envelope(f))->payload, std::nullopt);
}

TEST(MessageEnvelope, EveryProperPrefixIsTruncatedAndNamesTheField) {
  for (size_t len = 0; len < kFromPostgres.size(); ++len) {
    auto e = parse_envelope(kFromPostgres.substr(0, len));
    ASSERT_FALSE(e.ok()) << "prefix of " << len << " bytes parsed";
    EXPECT_EQ(e.error().code, make_error_code(errc::bad_row));
    EXPECT_NE(e.error().message.find("truncated reading"), std::string::npos) << e.error().message;
  }
  EXPECT_EQ(parse_envelope(kFromPostgres.substr(0, 12)).error().message,
            "message envelope: truncated reading key length (4 bytes) at offset 11: 1 bytes "
            "left");
}

TEST(MessageEnvelope, AByteAfterThePayloadIsRefused) {
  auto e = parse_envelope(kFromPostgres + "x");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "message envelope: 1 unexpected bytes after payload at offset 54");
}

TEST(MessageEnvelope, AnotherVersionIsRefusedNamingIt) {
  const std::string bytes = write_envelope({}, 2);
  auto e = parse_envelope(bytes);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message,
            "message envelope: version 0x02 at offset 0; this relay reads version 1");
  EXPECT_FALSE(parse_envelope("{\"topic\": \"orders\"}").ok());
  EXPECT_FALSE(parse_envelope("").ok());
}

TEST(MessageEnvelope, ANegativeLengthOtherThanMinusOneIsRefused) {
  std::string bytes = write_envelope({});
  bytes[1] = '\xff';  // topic length 0xff000006
  auto e = parse_envelope(bytes);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message,
            "message envelope: topic length -16777210 at offset 1 is negative (only -1, absent, "
            "is allowed)");
}

TEST(MessageEnvelope, ALengthBeyondTheContentIsTruncatedNotRead) {
  std::string bytes = write_envelope({});
  bytes[1] = '\x7f';  // topic length 0x7f000006
  auto e = parse_envelope(bytes);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("truncated reading topic (2130706438 bytes) at offset 5"),
            std::string::npos)
      << e.error().message;
}

// ---------------------------------------------------------------------------

config::OutboxConfig messages_config() {
  config::OutboxConfig c;
  c.source = config::OutboxSource::kMessages;
  return c;
}

// A transactional message of the relay's prefix at 0/1509D38, in the
// transaction whose commit is at 16/B374D848, xid 1234.
wal::Message message(const std::string& content, bool transactional = true) {
  wal::Message m;
  m.flags = transactional ? wal::Message::kTransactional : 0;
  m.lsn = wal::Lsn(0x1509D38);
  m.prefix = "outbox";
  m.content = content;
  return m;
}

RowContext ctx() {
  return RowContext{wal::Lsn(0x16B374D848), wal::Lsn(0x1509D38), 1234, {}};
}

OutboxRecord expect_record(RouteOutcome outcome) {
  if (auto* bad = std::get_if<BadRow>(&outcome)) {
    ADD_FAILURE() << "bad row: " << bad->reason;
    return {};
  }
  return std::get<OutboxRecord>(std::move(outcome));
}

BadRow expect_bad(RouteOutcome outcome) {
  if (std::holds_alternative<OutboxRecord>(outcome)) {
    ADD_FAILURE() << "routed as a record";
    return {};
  }
  return std::get<BadRow>(std::move(outcome));
}

TEST(MessageRouter, OnlyTheConfiguredPrefixIsOurs) {
  config::OutboxConfig cfg = messages_config();
  cfg.message_prefix = "events";
  MessageRouter router(cfg);
  wal::Message m = message("");
  EXPECT_FALSE(router.ours(m));
  m.prefix = "events";
  EXPECT_TRUE(router.ours(m));
  m.prefix = "events2";
  EXPECT_FALSE(router.ours(m));
}

TEST(MessageRouter, AnEnvelopeBecomesARecordWithTheRelayHeadersAfterItsOwn) {
  MessageRouter router(messages_config());
  const std::string content = kFromPostgres;
  OutboxRecord r = expect_record(router.route(message(content), ctx()));
  EXPECT_EQ(r.topic, "orders");
  EXPECT_EQ(r.key, std::optional<std::string>("42"));
  EXPECT_EQ(r.partition, -1);
  EXPECT_EQ(r.payload, "{\"a\": 1}");
  // Without an id of its own, the message's LSN: the same in every replay.
  EXPECT_EQ(show(r.headers),
            "type=X, outbox-id=0/1509D38, outbox-lsn=16/B374D848, outbox-xid=1234");
}

TEST(MessageRouter, TheEnvelopesIdPartitionAndHeaderArrayAreKept) {
  MessageRouter router(messages_config());
  EnvelopeFields f;
  f.id = "evt-1";
  f.partition = 3;
  f.headers = R"([{"key": "b", "value": "1"}, {"key": "a", "value": null}])";
  const std::string content = write_envelope(f);
  OutboxRecord r = expect_record(router.route(message(content), ctx()));
  EXPECT_EQ(r.partition, 3);
  EXPECT_EQ(r.key, std::nullopt);
  EXPECT_EQ(show(r.headers),
            "b=1, a=<null>, outbox-id=evt-1, outbox-lsn=16/B374D848, outbox-xid=1234");
}

TEST(MessageRouter, AMalformedEnvelopeIsABadRowCarryingTheWholeContent) {
  MessageRouter router(messages_config());
  const std::string content = "{\"topic\": \"orders\"}";
  BadRow bad = expect_bad(router.route(message(content), ctx()));
  EXPECT_EQ(bad.reason,
            "message envelope: version '{' (0x7b) at offset 0; this relay reads "
            "version 1");
  EXPECT_EQ(bad.row_id, "0/1509D38");
  EXPECT_EQ(bad.payload, std::optional<std::string>(content));
  EXPECT_EQ(bad.original_topic, std::nullopt);
  EXPECT_EQ(bad.message_prefix, std::optional<std::string>("outbox"));
  OutboxRecord dlq = Router::dead_letter(bad, ctx(), "outbox.dead-letter");
  EXPECT_EQ(dlq.key, std::optional<std::string>("0/1509D38"));
  EXPECT_EQ(dlq.payload, content);
  EXPECT_EQ(show(dlq.headers),
            "outbox-id=0/1509D38, outbox-lsn=16/B374D848, outbox-xid=1234, outbox-error=message "
            "envelope: version '{' (0x7b) at offset 0; this relay reads version 1, "
            "outbox-message-prefix=outbox, outbox-original-topic=<null>");
}

TEST(MessageRouter, FieldsARowWouldBeRefusedForAreBadRowsWithWhatWasRead) {
  MessageRouter router(messages_config());
  struct Case {
    EnvelopeFields fields;
    std::string reason;
  };
  EnvelopeFields null_topic;
  null_topic.topic.reset();
  EnvelopeFields bad_topic;
  bad_topic.topic = "orders/eu";
  EnvelopeFields negative;
  negative.partition = -2;
  EnvelopeFields headers;
  headers.headers = "[1]";
  EnvelopeFields null_payload;
  null_payload.payload.reset();
  const Case cases[] = {
      {null_topic, "topic is null"},
      {bad_topic,
       "topic 'orders/eu' is not a valid Kafka topic name: a Kafka topic name has 1 to 249 "
       "characters, each a letter, a digit, '.', '_' or '-'"},
      {negative, "partition is negative: -2"},
      {headers,
       "headers is not a JSON object or [{key,value}] array: element 0 is a number, expected "
       "{\"key\": ..., \"value\": ...}"},
      {null_payload, "payload is null"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.reason);
    EnvelopeFields f = c.fields;
    f.id = "evt-7";
    const std::string content = write_envelope(f);
    BadRow bad = expect_bad(router.route(message(content), ctx()));
    EXPECT_EQ(bad.reason, c.reason);
    EXPECT_EQ(bad.row_id, "evt-7");
    EXPECT_EQ(bad.original_topic, f.topic);
    EXPECT_EQ(bad.payload, f.payload);
    OutboxRecord dlq = Router::dead_letter(bad, ctx(), "dlq");
    EXPECT_EQ(dlq.key, std::optional<std::string>("evt-7"));
  }
}

TEST(MessageRouter, ANullPayloadIsATombstoneUnderTheTombstonePolicy) {
  EnvelopeFields f;
  f.key = "42";
  f.payload.reset();
  const std::string content = write_envelope(f);
  config::OutboxConfig cfg = messages_config();
  cfg.null_payload = config::NullPayloadPolicy::kTombstone;
  MessageRouter router(cfg);
  OutboxRecord r = expect_record(router.route(message(content), ctx()));
  EXPECT_TRUE(r.null_value);
  EXPECT_EQ(r.payload, "");
  EXPECT_EQ(r.key, std::optional<std::string>("42"));
  EXPECT_EQ(r.topic, "orders");
}

TEST(MessageRouter, ANonTransactionalMessageIsABadRowUnlessAllowed) {
  const std::string content = kFromPostgres;
  MessageRouter refusing(messages_config());
  BadRow bad = expect_bad(refusing.route(message(content, false), ctx()));
  EXPECT_NE(bad.reason.find("non-transactional message"), std::string::npos) << bad.reason;
  EXPECT_NE(bad.reason.find("outbox.allow_non_transactional_messages"), std::string::npos);
  EXPECT_EQ(bad.row_id, "0/1509D38");
  EXPECT_EQ(bad.original_topic, std::optional<std::string>("orders"));
  EXPECT_EQ(bad.payload, std::optional<std::string>("{\"a\": 1}"));

  config::OutboxConfig cfg = messages_config();
  cfg.allow_non_transactional_messages = true;
  MessageRouter allowing(cfg);
  OutboxRecord r = expect_record(allowing.route(message(content, false), ctx()));
  EXPECT_EQ(r.topic, "orders");
}

TEST(MessageRouter, ANonTransactionalMessageWithAMalformedEnvelopeSaysSo) {
  MessageRouter router(messages_config());
  const std::string content = "x";
  BadRow bad = expect_bad(router.route(message(content, false), ctx()));
  EXPECT_NE(bad.reason.find("message envelope: version"), std::string::npos) << bad.reason;
}

}  // namespace
}  // namespace relay
