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
              "ALTER TABLE outbox ALTER COLUMN headers TYPE text",
              db.name);
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
  const std::string end = current_wal_lsn(db);

  auto good = kafka().consume(read_committed(), topic, 2, 60s);
  ASSERT_EQ(good.size(), 2u);
  EXPECT_EQ(good[0].value, "good-1");
  EXPECT_EQ(good[1].value, "good-2");
  EXPECT_LT(good[0].offset, good[1].offset);

  auto dead = kafka().consume(read_committed(), dlq, 4, 60s);
  ASSERT_EQ(dead.size(), 4u);
  std::map<std::string, harness::ConsumedRecord> by_id;
  for (const auto& r : dead) by_id[*header(r, "outbox-id").value_or("")] = r;
  ASSERT_TRUE(by_id.count(row_id(2)) && by_id.count(row_id(3)) && by_id.count(row_id(4)) &&
              by_id.count(row_id(6)));
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
  EXPECT_EQ(header(by_id[row_id(6)], "outbox-original-topic"),
            std::optional<std::optional<std::string>>(topic + "-missing"));
  // Too large for the broker, so too large for the dead-letter topic as well:
  // the record says how big the payload was instead.
  EXPECT_EQ(header(by_id[row_id(4)], "outbox-payload-size"),
            std::optional<std::optional<std::string>>(std::to_string(2 * 1024 * 1024)));

  const std::string log = relay->log_contents();
  for (int n : {2, 3, 4, 6}) EXPECT_NE(log.find(row_id(n)), std::string::npos) << log;
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
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
  auto past = pg().query_scalar("SELECT confirmed_flush_lsn > '" + before_bad +
                                    "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" +
                                    slot + "'",
                                db.name);
  EXPECT_EQ(past, std::optional<std::string>("f")) << confirmed_flush(db, slot).value_or("?");

  // Restarted, it halts again at the same row: nothing after it is skipped.
  auto again = start_relay(write_config(basic_config(db, slot, "outbox:\n  on_bad_row: halt\n")));
  EXPECT_EQ(again->wait_exit(60s), std::optional<int>(1)) << again->log_contents();
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s).size(), 1u);
}

}  // namespace
}  // namespace itest
