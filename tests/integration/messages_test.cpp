// Events written as logical decoding messages (outbox.emit() of
// sql/04-outbox-emit.sql, outbox.source: messages or both) against a real
// PostgreSQL and Kafka: in commit order among rows, gone with a rollback,
// whole at several megabytes, dead-lettered when bad, and neither lost nor
// duplicated across kill -9.
#include <atomic>
#include <random>
#include <thread>

#include "relay_fixture.h"

namespace itest {
namespace {

class MessagesTest : public RelayTest {
 protected:
  // A database with the schema of sql/ and outbox.emit().
  OutboxDb messages_db() {
    OutboxDb db = make_outbox_db();
    std::ifstream in(std::string(OUTBOX_SOURCE_DIR) + "/sql/04-outbox-emit.sql");
    pg().exec(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
              db.name);
    return db;
  }

  std::string config(const OutboxDb& db, const std::string& slot, const std::string& outbox,
                     const std::string& kafka_keys = "",
                     const std::string& publication = "outbox_pub") {
    std::string body = basic_config(db, slot, "outbox:\n" + outbox);
    body.replace(body.find("  drain_timeout: 10s\n"), 20, "  drain_timeout: 10s\n" + kafka_keys);
    body.replace(body.find("publication: outbox_pub"), 23, "publication: " + publication);
    return write_config(body);
  }

  static std::vector<std::string> values(const std::vector<harness::ConsumedRecord>& records) {
    std::vector<std::string> v;
    for (const auto& r : records) v.push_back(r.value);
    return v;
  }

  static std::string text(const harness::ConsumedRecord& r, const std::string& key) {
    return header(r, key).value_or(std::nullopt).value_or("<absent>");
  }

  // Loads `count` messages with ids m-<first>.. in transactions of `per_txn`
  // while the relay (run with `kafka_keys`) is killed with SIGKILL at random
  // points and restarted `kills` times; then reads the topic with
  // `isolation`. Returns copies read per id.
  std::map<std::string, int> kill_during_load(const std::string& kafka_keys, const char* isolation,
                                              int count, int kills);
};

TEST_F(MessagesTest, RowsAndMessagesOfOneTransactionArriveInTheOrderTheyWereWritten) {
  auto db = messages_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  auto relay = start_relay(config(db, slot, "  source: both\n"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec("CREATE TABLE emitted (name text, lsn pg_lsn)", db.name);
  const std::string t = "'" + topic + "'";
  auto row = [&](const std::string& v) {
    return "INSERT INTO outbox (topic, key, payload) VALUES (" + t + ", 'k', '" + v + "'); ";
  };
  auto emit = [&](const std::string& v, const std::string& id) {
    return "INSERT INTO emitted SELECT '" + v + "', outbox.emit(" + t + ", 'k', '" + v +
           "', '{\"kind\": \"message\"}', NULL, " + id + "); ";
  };
  pg().exec("BEGIN; " + row("r1") + emit("m2", "'id-m2'") +
                "SELECT pg_logical_emit_message(true, 'someone-else', 'not ours'); " +
                emit("m3", "NULL") + row("r4") + emit("m5", "'id-m5'") + "COMMIT;",
            db.name);
  pg().exec("BEGIN; " + emit("m6", "'id-m6'") + row("r7") + "COMMIT;", db.name);

  auto records = kafka().consume(read_committed(), topic, 7, 60s);
  ASSERT_EQ(values(records), (std::vector<std::string>{"r1", "m2", "m3", "r4", "m5", "m6", "r7"}));
  // One transaction, one commit LSN and xid, for its rows and its messages.
  for (int i = 1; i < 5; ++i) {
    EXPECT_EQ(text(records[i], "outbox-lsn"), text(records[0], "outbox-lsn")) << i;
    EXPECT_EQ(text(records[i], "outbox-xid"), text(records[0], "outbox-xid")) << i;
  }
  EXPECT_NE(text(records[5], "outbox-lsn"), text(records[0], "outbox-lsn"));
  EXPECT_EQ(text(records[1], "outbox-id"), "id-m2");
  EXPECT_EQ(text(records[1], "kind"), "message");
  // Without an id, the message's LSN, as emit() returned it.
  EXPECT_EQ(text(records[2], "outbox-id"),
            *pg().query_scalar("SELECT lsn::text FROM emitted WHERE name = 'm3'", db.name));
  EXPECT_EQ(records[2].key, std::optional<std::string>("k"));
  expect_clean_stop(*relay);
}

TEST_F(MessagesTest, RolledBackTransactionsAndSavepointsDeliverNothing) {
  auto db = messages_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  auto relay = start_relay(config(db, slot, "  source: messages\n"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  auto emit = [&](const std::string& v) {
    return "SELECT outbox.emit('" + topic + "', 'k', '" + v + "'); ";
  };
  pg().exec("BEGIN; " + emit("rolled-back") + "ROLLBACK;", db.name);
  pg().exec("BEGIN; " + emit("before") + "SAVEPOINT s; " + emit("in-savepoint") +
                "ROLLBACK TO SAVEPOINT s; " + emit("after") + "COMMIT;",
            db.name);
  pg().exec("BEGIN; SAVEPOINT a; " + emit("in-released-savepoint") + "RELEASE SAVEPOINT a; " +
                emit("rolled-back-later") + "SAVEPOINT b; " + emit("in-savepoint-b") + "ROLLBACK;",
            db.name);
  pg().exec("BEGIN; SAVEPOINT a; " + emit("released") + "RELEASE SAVEPOINT a; COMMIT;", db.name);
  pg().exec(emit("last"), db.name);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 60s));
  EXPECT_EQ(values(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 30s)),
            (std::vector<std::string>{"before", "after", "released", "last"}));
  expect_clean_stop(*relay);
}

// Every way a message of the relay's prefix can be bad, and one that is not
// the relay's at all, between two good ones. The publication does not exist
// yet: with source: messages the relay creates it, empty.
TEST_F(MessagesTest, BadMessagesAreDeadLetteredWithTheirReasonAndTheRestGoOn) {
  auto db = messages_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  const std::string dlq = unique("dlq");
  kafka().create_topic(topic, 1);
  kafka().create_topic(dlq, 1);
  auto relay = start_relay(config(
      db, slot, "  source: messages\n  dead_letter_topic: " + dlq + "\n", "", "messages_pub"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(pg().query_scalar(
                "SELECT count(*)::text FROM pg_publication_tables WHERE pubname = 'messages_pub'",
                db.name),
            std::optional<std::string>("0"));

  const std::string t = "'" + topic + "'";
  pg().exec("SELECT outbox.emit(" + t + ", 'k', 'good-1', NULL, NULL, 'g1')", db.name);
  pg().exec("SELECT pg_logical_emit_message(true, 'outbox', 'garbage'::bytea)", db.name);
  pg().exec("BEGIN; SELECT pg_logical_emit_message(false, 'outbox', outbox.envelope(" + t +
                ", 'k', 'non-transactional'::bytea, NULL, NULL, 'nt')); ROLLBACK;",
            db.name);
  pg().exec("SELECT outbox.emit('not a topic', 'k', 'bad-topic', NULL, NULL, 'bt')", db.name);
  pg().exec("SELECT outbox.emit(" + t + ", 'k', 'bad-headers', '[1]', NULL, 'bh')", db.name);
  pg().exec("SELECT pg_logical_emit_message(true, 'another-tool', 'whatever')", db.name);
  pg().exec("SELECT outbox.emit(" + t + ", 'k', 'good-2', NULL, NULL, 'g2')", db.name);

  EXPECT_EQ(values(kafka().consume(read_committed(), topic, 2, 60s)),
            (std::vector<std::string>{"good-1", "good-2"}));
  auto dead = kafka().consume(read_committed(), dlq, 4, 60s);
  ASSERT_EQ(dead.size(), 4u);
  // The garbage carries its whole content and is keyed by its LSN.
  EXPECT_EQ(dead[0].value, "garbage");
  EXPECT_NE(text(dead[0], "outbox-error").find("message envelope: version 'g'"), std::string::npos);
  EXPECT_EQ(dead[0].key, std::optional<std::string>(text(dead[0], "outbox-id")));
  EXPECT_EQ(text(dead[0], "outbox-message-prefix"), "outbox");
  EXPECT_EQ(text(dead[0], "outbox-source-table"), "<absent>");
  // Written although its transaction rolled back: never published as an event.
  EXPECT_EQ(dead[1].value, "non-transactional");
  EXPECT_EQ(text(dead[1], "outbox-id"), "nt");
  EXPECT_NE(text(dead[1], "outbox-error").find("non-transactional message"), std::string::npos);
  EXPECT_EQ(text(dead[1], "outbox-original-topic"), topic);
  EXPECT_EQ(text(dead[1], "outbox-xid"), "0");
  EXPECT_EQ(dead[2].value, "bad-topic");
  EXPECT_NE(text(dead[2], "outbox-error").find("is not a valid Kafka topic name"),
            std::string::npos);
  EXPECT_EQ(text(dead[2], "outbox-original-topic"), "not a topic");
  EXPECT_EQ(dead[3].value, "bad-headers");
  EXPECT_NE(text(dead[3], "outbox-error").find("headers is not a JSON object"), std::string::npos);
  expect_clean_stop(*relay);
}

TEST_F(MessagesTest, AMessageOfSeveralMegabytesIsDeliveredWhole) {
  auto db = messages_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  harness::create_topic(kafka().bootstrap(), topic, 1, 30s, {{"max.message.bytes", "16777216"}});
  auto relay = start_relay(config(db, slot, "  source: messages\n",
                                  "  properties: {message.max.bytes: \"16000000\"}\n"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  // 6.4 MB of SHA-256 digests: incompressible, and every byte checkable.
  pg().exec(
      "CREATE TABLE big AS SELECT string_agg(sha256(int8send(g)), ''::bytea ORDER BY g) "
      "AS payload FROM generate_series(1, 200000) g",
      db.name);
  pg().exec("SELECT outbox.emit('" + topic + "', 'big', (SELECT payload FROM big))", db.name);
  auto records = kafka().consume(read_committed(), topic, 1, 60s);
  ASSERT_EQ(records.size(), 1u) << relay->log_contents();
  ASSERT_EQ(records[0].value.size(), 6400000u);
  const std::string hex = *pg().query_scalar("SELECT encode(payload, 'hex') FROM big", db.name);
  std::string expected;
  expected.reserve(hex.size() / 2);
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    expected.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  EXPECT_TRUE(records[0].value == expected) << "payload differs";
  expect_clean_stop(*relay);
}

std::map<std::string, int> MessagesTest::kill_during_load(const std::string& kafka_keys,
                                                          const char* isolation, int count,
                                                          int kills) {
  std::map<std::string, int> copies;
  auto db = messages_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 3);
  const std::string path = config(db, slot, "  source: messages\n", kafka_keys);
  {
    auto relay = start_relay(path);
    EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    expect_clean_stop(*relay);
    if (::testing::Test::HasFailure()) return copies;
  }
  constexpr int kPerTxn = 500;
  std::atomic<bool> loaded{false};
  std::thread loader([&] {
    for (int first = 0; first < count; first += kPerTxn) {
      pg().exec("SELECT outbox.emit('" + topic +
                    "', 'k' || (g % 17), repeat('p', 64), NULL, "
                    "NULL, 'm-' || g) FROM generate_series(" +
                    std::to_string(first) + ", " + std::to_string(first + kPerTxn - 1) + ") g",
                db.name);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
    loaded = true;
  });
  int kills_during_load = 0;
  std::mt19937 rng(11);
  for (int k = 0; k < kills; ++k) {
    auto relay = start_relay(path);
    if (!wait_streaming(*relay)) {
      loader.join();
      ADD_FAILURE() << relay->log_contents();
      return copies;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 1500));
    if (!loaded.load()) ++kills_during_load;
    relay->signal(SIGKILL);
    relay->wait_exit(10s);
    if (!harness::wait_until(
            [&] { return slot_active(db, slot) == std::optional<std::string>("false"); }, 30s)) {
      loader.join();
      ADD_FAILURE() << "slot still active 30 s after kill -9";
      return copies;
    }
  }
  loader.join();
  std::printf("%d of %d kills while the load ran\n", kills_during_load, kills);
  EXPECT_GT(kills_during_load, 0) << "the load ended before the first kill";
  const std::string end = current_wal_lsn(db);
  auto relay = start_relay(path);
  EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 120s))
      << confirmed_flush(db, slot).value_or("?");
  const harness::ClientSettings reader{kafka().bootstrap(), {{"isolation.level", isolation}}};
  for (const auto& r : kafka().consume_all_until_quiet(reader, topic, 3s, 120s)) {
    ++copies[text(r, "outbox-id")];
  }
  expect_clean_stop(*relay);
  return copies;
}

TEST_F(MessagesTest, KillNineDuringAMessageLoadLosesNoneAndDuplicatesNoneExactlyOnce) {
  constexpr int kCount = 30000;
  const auto copies = kill_during_load("", "read_committed", kCount, 3);
  ASSERT_FALSE(HasFailure());
  int lost = 0, duplicates = 0;
  for (int i = 0; i < kCount; ++i) {
    auto it = copies.find("m-" + std::to_string(i));
    if (it == copies.end()) {
      ++lost;
    } else {
      duplicates += it->second - 1;
    }
  }
  std::printf("messages, exactly_once: kill -9 x3 over %d messages: %d lost, %d duplicates\n",
              kCount, lost, duplicates);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(copies.size(), static_cast<size_t>(kCount));
}

TEST_F(MessagesTest, KillNineDuringAMessageLoadLosesNoneAtLeastOnce) {
  constexpr int kCount = 20000;
  const auto copies =
      kill_during_load("  delivery: at_least_once\n", "read_uncommitted", kCount, 2);
  ASSERT_FALSE(HasFailure());
  int lost = 0;
  size_t delivered = 0;
  for (int i = 0; i < kCount; ++i) {
    auto it = copies.find("m-" + std::to_string(i));
    if (it == copies.end()) {
      ++lost;
    } else {
      delivered += it->second;
    }
  }
  std::printf("messages, at_least_once: kill -9 x2 over %d messages: %zu delivered, %d lost\n",
              kCount, delivered, lost);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(copies.size(), static_cast<size_t>(kCount));
}

}  // namespace
}  // namespace itest
