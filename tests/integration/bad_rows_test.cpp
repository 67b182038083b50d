// Rows the relay cannot publish as they are: the dead-letter policy carries
// them to the dead-letter topic and keeps going in order; the halt policy
// stops without confirming past them.
#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class BadRowsTest : public RelayTest {
 protected:
  // The schema in sql/ forbids some of these mistakes; loosen it the way a
  // hand-made outbox table might be.
  void loosen_schema(const OutboxDb& db) {
    pg().exec("ALTER TABLE outbox ALTER COLUMN topic DROP NOT NULL; "
              "ALTER TABLE outbox ALTER COLUMN payload DROP NOT NULL; "
              "ALTER TABLE outbox ALTER COLUMN headers TYPE text",
              db.name);
  }

  // Header keys and values in order, "k=v" or "k=<null>", comma-separated.
  static std::string shown(const harness::ConsumedRecord& r) {
    std::string out;
    for (const auto& [k, v] : r.headers) {
      if (!out.empty()) out += ", ";
      out += k + "=" + (v ? *v : "<null>");
    }
    return out;
  }

  // "outbox-id=<id>, outbox-lsn=<its lsn>, outbox-xid=<its xid>", after
  // checking that the LSN and the xid are well-formed.
  static std::string relay_headers(const harness::ConsumedRecord& r, const std::string& id) {
    const std::string lsn = header(r, "outbox-lsn").value_or("?").value_or("?");
    const std::string xid = header(r, "outbox-xid").value_or("?").value_or("?");
    EXPECT_NO_THROW(lsn_position(lsn)) << lsn;
    EXPECT_TRUE(!xid.empty() && xid.find_first_not_of("0123456789") == std::string::npos) << xid;
    return "outbox-id=" + id + ", outbox-lsn=" + lsn + ", outbox-xid=" + xid;
  }

  void insert(const OutboxDb& db, int n, const std::string& topic_sql,
              const std::string& headers_sql, const std::string& payload_sql) {
    pg().exec("INSERT INTO outbox (id, topic, key, headers, payload) VALUES ('" + row_id(n) +
                  "', " + topic_sql + ", 'same-key', " + headers_sql + ", " + payload_sql + ")",
              db.name);
  }
};

TEST_F(BadRowsTest, DeadLetterPolicyDivertsBadRowsAndKeepsOrderOfTheRest) {
  auto db = make_outbox_db();
  loosen_schema(db);
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  const std::string dlq = unique("dlq");
  kafka().create_topic(topic, 1);
  kafka().create_topic(dlq, 1);
  // A topic that does not exist fails after the metadata propagation wait;
  // shortened so the test need not wait librdkafka's default 30 s.
  std::string body = basic_config(
      db, slot, "outbox:\n  on_bad_row: dead_letter\n  dead_letter_topic: " + dlq + "\n");
  body.replace(body.find("  drain_timeout"), 0,
               "  properties: {topic.metadata.propagation.max.ms: \"2000\"}\n");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string t = "'" + topic + "'";
  insert(db, 1, t, "NULL", "'good-1'");
  insert(db, 2, "NULL", "NULL", "'null-topic'");
  insert(db, 3, t, "'{not json'", "'bad-headers'");
  insert(db, 4, t, "NULL", "convert_to(repeat('x', 2 * 1024 * 1024), 'UTF8')");
  insert(db, 5, t, "'{\"h\": \"v\"}'", "'good-2'");
  insert(db, 6, "'" + topic + "-missing'", "NULL", "'unknown-topic'");
  insert(db, 7, t, "NULL", "NULL");
  insert(db, 8, "'not a topic!'", "NULL", "'bad-topic-name'");
  const std::string end = current_wal_lsn(db);

  auto good = kafka().consume(read_committed(), topic, 2, 60s);
  ASSERT_EQ(good.size(), 2u);
  EXPECT_EQ(good[0].value, "good-1");
  EXPECT_EQ(good[1].value, "good-2");
  EXPECT_LT(good[0].offset, good[1].offset);

  auto dead = kafka().consume(read_committed(), dlq, 6, 60s);
  ASSERT_EQ(dead.size(), 6u);
  std::map<std::string, harness::ConsumedRecord> by_id;
  for (const auto& r : dead) by_id[*header(r, "outbox-id").value_or("")] = r;
  for (int n : {2, 3, 4, 6, 7, 8}) ASSERT_TRUE(by_id.count(row_id(n))) << n;
  for (const auto& [id, r] : by_id) {
    auto err = header(r, "outbox-error");
    ASSERT_TRUE(err && *err) << id;
    EXPECT_FALSE((*err)->empty());
    ASSERT_TRUE(header(r, "outbox-lsn").has_value()) << id;
  }
  EXPECT_NE((*header(by_id[row_id(2)], "outbox-error"))->find("topic"), std::string::npos);
  EXPECT_NE((*header(by_id[row_id(3)], "outbox-error"))->find("headers"), std::string::npos);
  EXPECT_EQ(by_id[row_id(2)].value, "null-topic");
  EXPECT_EQ(by_id[row_id(3)].value, "bad-headers");
  EXPECT_EQ(by_id[row_id(6)].value, "unknown-topic");
  // Every dead letter names the topic its row named; a null topic is a
  // null header value.
  using Header = std::optional<std::optional<std::string>>;
  EXPECT_EQ(header(by_id[row_id(2)], "outbox-original-topic"),
            Header(std::optional<std::string>()));
  for (int n : {3, 4, 7}) {
    EXPECT_EQ(header(by_id[row_id(n)], "outbox-original-topic"), Header(topic)) << n;
  }
  EXPECT_EQ(header(by_id[row_id(6)], "outbox-original-topic"), Header(topic + "-missing"));
  EXPECT_EQ(header(by_id[row_id(8)], "outbox-original-topic"), Header("not a topic!"));
  // The two the router turns away before the topic was valid, header by header.
  const auto& null_payload = by_id[row_id(7)];
  EXPECT_EQ(shown(null_payload), relay_headers(null_payload, row_id(7)) +
                                     ", outbox-error=payload is null, "
                                     "outbox-source-table=public.outbox, outbox-original-topic=" +
                                     topic);
  EXPECT_TRUE(null_payload.value.empty());
  EXPECT_EQ(null_payload.key, std::optional<std::string>(row_id(7)));
  const auto& bad_topic = by_id[row_id(8)];
  EXPECT_EQ(shown(bad_topic),
            relay_headers(bad_topic, row_id(8)) +
                ", outbox-error=topic 'not a topic!' is not a valid Kafka topic name: a Kafka "
                "topic name has 1 to 249 characters, each a letter, a digit, '.', '_' or '-', "
                "outbox-source-table=public.outbox, outbox-original-topic=not a topic!");
  EXPECT_EQ(bad_topic.value, "bad-topic-name");
  // Too large for the broker, so too large for the dead-letter topic as well:
  // the record says how big the payload was instead.
  EXPECT_EQ(header(by_id[row_id(4)], "outbox-payload-size"),
            std::optional<std::optional<std::string>>(std::to_string(2 * 1024 * 1024)));

  const std::string log = relay->log_contents();
  for (int n : {2, 3, 4, 6, 7, 8}) EXPECT_NE(log.find(row_id(n)), std::string::npos) << log;
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
  expect_clean_stop(*relay);
}

// Debezium's route.tombstone.on.empty.payload: a NULL payload becomes a
// record with a null value, keyed and with its headers like any other, so
// that a compacted topic forgets the key.
TEST_F(BadRowsTest, NullPayloadBecomesATombstoneWhenConfigured) {
  auto db = make_outbox_db();
  loosen_schema(db);
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  const std::string dlq = unique("dlq");
  kafka().create_topic(topic, 1);
  kafka().create_topic(dlq, 1);
  auto relay = start_relay(write_config(basic_config(
      db, slot, "outbox:\n  null_payload: tombstone\n  dead_letter_topic: " + dlq + "\n")));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string t = "'" + topic + "'";
  insert(db, 1, t, "'{\"eventType\": \"OrderCreated\"}'", "'created'");
  insert(db, 2, t, "'{\"eventType\": \"OrderDeleted\"}'", "NULL");
  insert(db, 3, t, "NULL", "''");
  insert(db, 4, "NULL", "NULL", "NULL");  // a null topic is still a bad row

  auto got = kafka().consume(read_committed(), topic, 3, 60s);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].value, "created");
  EXPECT_FALSE(got[0].value_null);
  EXPECT_TRUE(got[1].value_null);
  EXPECT_EQ(got[1].value, "");
  EXPECT_EQ(got[1].key, std::optional<std::string>("same-key"));
  EXPECT_EQ(shown(got[1]), "eventType=OrderDeleted, " + relay_headers(got[1], row_id(2)));
  EXPECT_FALSE(got[2].value_null) << "an empty payload is not a tombstone";
  EXPECT_EQ(shown(got[2]), relay_headers(got[2], row_id(3)));

  auto dead = kafka().consume(read_committed(), dlq, 1, 60s);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(header(dead[0], "outbox-id"), std::optional<std::optional<std::string>>(row_id(4)));
  EXPECT_EQ(header(dead[0], "outbox-error"),
            std::optional<std::optional<std::string>>("topic is null"));
  expect_clean_stop(*relay);
}

TEST_F(BadRowsTest, HaltPolicyExitsWithoutConfirmingPastTheBadRow) {
  auto db = make_outbox_db();
  loosen_schema(db);
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  auto relay = start_relay(
      write_config(basic_config(db, slot, "outbox:\n  on_bad_row: halt\n")));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string t = "'" + topic + "'";
  insert(db, 1, t, "NULL", "'good-1'");
  const std::string before_bad = current_wal_lsn(db);
  insert(db, 2, "NULL", "NULL", "'null-topic'");
  insert(db, 3, t, "NULL", "'after-bad'");

  auto code = relay->wait_exit(60s);
  ASSERT_EQ(code, std::optional<int>(1)) << relay->log_contents();
  const std::string log = relay->log_contents();
  EXPECT_NE(log.find(row_id(2)), std::string::npos) << log;
  EXPECT_NE(log.find("lsn="), std::string::npos) << log;

  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "good-1");
  EXPECT_EQ(slot_confirmed_past(db, slot, before_bad), std::optional<bool>(false))
      << confirmed_flush(db, slot).value_or("?");

  // Restarted, it halts again at the same row: nothing after it is skipped.
  auto again = start_relay(write_config(basic_config(db, slot, "outbox:\n  on_bad_row: halt\n")));
  EXPECT_EQ(again->wait_exit(60s), std::optional<int>(1)) << again->log_contents();
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s).size(), 1u);
}

// Exactly once, a record the broker refuses (larger than the topic's
// max.message.bytes) under the halt policy: the relay aborts the Kafka
// transaction that holds it and exits at once, not after waiting out the
// abort and the drain for a record that can never be delivered. Nothing
// after it becomes readable; once the operator raises the limit, a restart
// publishes it and what followed, and the key's order is A, B, C.
TEST_F(BadRowsTest, HaltOnARecordTheBrokerRefusesExitsPromptlyAndKeepsTheKeysOrderAfterTheFix) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  harness::create_topic(kafka().bootstrap(), topic, 1, 30s, {{"max.message.bytes", "2000"}});
  const std::string config = write_config(basic_config(db, slot, "outbox:\n  on_bad_row: halt\n"));
  auto relay = start_relay(config);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string t = "'" + topic + "'";
  insert(db, 1, t, "NULL", "'A'");
  ASSERT_EQ(kafka().consume(read_committed(), topic, 1, 30s).size(), 1u) << relay->log_contents();
  const std::string before_bad = current_wal_lsn(db);
  // Hex digits of md5s: lz4 cannot bring 9,600 of them under 2,000 bytes.
  const auto refused_at = std::chrono::steady_clock::now();
  insert(db, 2, t, "NULL",
         "convert_to((SELECT string_agg(md5(i::text), '') FROM generate_series(1, 300) i), "
         "'UTF8')");
  insert(db, 3, t, "NULL", "'C'");

  auto code = relay->wait_exit(60s);
  const auto took = std::chrono::steady_clock::now() - refused_at;
  ASSERT_EQ(code, std::optional<int>(1)) << relay->log_contents();
  EXPECT_LT(took, 5s) << "halting took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms\n"
                      << relay->log_contents();
  const std::string log = relay->log_contents();
  EXPECT_NE(log.find(row_id(2)), std::string::npos) << log;
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "A");
  EXPECT_EQ(slot_confirmed_past(db, slot, before_bad), std::optional<bool>(false))
      << confirmed_flush(db, slot).value_or("?");

  kafka().alter_topic_config(topic, "max.message.bytes", "1048588");
  auto fixed = start_relay(config);
  ASSERT_TRUE(wait_streaming(*fixed)) << fixed->log_contents();
  got = kafka().consume(read_committed(), topic, 3, 30s);
  ASSERT_EQ(got.size(), 3u) << fixed->log_contents();
  EXPECT_EQ(got[0].value, "A");
  EXPECT_EQ(header(got[1], "outbox-id"), std::optional<std::optional<std::string>>(row_id(2)));
  EXPECT_EQ(got[1].value.size(), 9600u);
  EXPECT_EQ(got[2].value, "C");
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s).size(), 3u);
  EXPECT_EQ(fixed->terminate(30s), std::optional<int>(0)) << fixed->log_contents();
}

}  // namespace
}  // namespace itest
