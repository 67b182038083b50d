// Scenarios of the core data path against a real PostgreSQL and Kafka:
// exact delivery, per-key order, partitioning, header bytes, and the slot's
// confirmed position.
#include <cstdio>
#include <random>
#include <sstream>

#include "harness/murmur2.h"
#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

struct ExpectedRow {
  std::string id;
  std::string topic;
  std::optional<std::string> key;
  int partition = -1;
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  std::string payload;
  int commit_seq = 0;
};

class DeliveryTest : public RelayTest {};

TEST_F(DeliveryTest, TenThousandRowsArriveExactlyOnceInCommitOrderPerKey) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  std::vector<std::string> topics;
  for (int t = 0; t < 3; ++t) {
    topics.push_back(unique("orders"));
    kafka().create_topic(topics.back(), 6);
  }
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  std::mt19937 rng(42);
  std::map<std::string, ExpectedRow> expected;
  int n = 0;
  for (int txn = 0; txn < 1000; ++txn) {
    int rows = 1 + static_cast<int>(rng() % 19);
    if (txn == 999) rows = 10000 - n;
    if (n + rows > 10000) rows = std::max(0, 10000 - n - (999 - txn));
    std::string sql = "BEGIN;";
    for (int r = 0; r < rows; ++r, ++n) {
      ExpectedRow e;
      e.id = row_id(n);
      e.topic = topics[rng() % 3];
      e.commit_seq = txn;
      int kind = static_cast<int>(rng() % 10);
      std::string key_sql = "NULL", part_sql = "NULL", headers_sql = "NULL";
      if (kind < 7) {
        e.key = "customer-" + std::to_string(rng() % 50);
        e.partition = harness::murmur2_partition(*e.key, 6);
        key_sql = "'" + *e.key + "'";
      } else if (kind < 9) {
        int p = static_cast<int>(rng() % 6);
        e.key = "pinned-" + std::to_string(p);
        e.partition = p;
        key_sql = "'" + *e.key + "'";
        part_sql = std::to_string(p);
      }
      if (rng() % 2) {
        // A jsonb object does not keep the order it was written in: jsonb
        // stores keys ordered by length, then bytes, and keeps the last of
        // a repeated key. The headers come in the stored order.
        headers_sql = "'{\"cc\": \"x y\", \"b\": null, \"a\": \"0\", \"a\": \"1\"}'";
        e.headers = {{"a", "1"}, {"b", std::nullopt}, {"cc", "x y"}};
      } else {
        // An array keeps its order and its repeated keys.
        headers_sql =
            "'[{\"key\": \"z\", \"value\": \"2\"}, {\"key\": \"z\", \"value\": \"3\"}, "
            "{\"key\": \"a\", \"value\": \"4\"}]'";
        e.headers = {{"z", "2"}, {"z", "3"}, {"a", "4"}};
      }
      std::string payload(16 + rng() % 240, '\0');
      for (auto& c : payload) c = static_cast<char>(rng() % 256);
      e.payload = payload;
      sql += "INSERT INTO outbox (id, topic, key, partition, headers, payload) VALUES ('" + e.id +
             "', '" + e.topic + "', " + key_sql + ", " + part_sql + ", " + headers_sql +
             ", decode('" + hex(payload) + "', 'hex'));";
      expected[e.id] = e;
    }
    sql += "COMMIT;";
    pg().exec(sql, db.name);
  }
  ASSERT_EQ(n, 10000);
  const std::string end_lsn = current_wal_lsn(db);

  std::vector<harness::ConsumedRecord> got;
  for (const auto& t : topics) {
    auto part = kafka().consume_all_until_quiet(read_committed(), t, 3s, 120s);
    got.insert(got.end(), part.begin(), part.end());
  }

  std::map<std::string, int> seen;
  std::map<std::string, std::vector<std::pair<int, int64_t>>> per_key;  // key → (seq, offset)
  for (const auto& r : got) {
    auto id = header(r, "outbox-id");
    ASSERT_TRUE(id.has_value());
    ASSERT_TRUE(*id && expected.count(**id)) << "unexpected record";
    const ExpectedRow& e = expected[**id];
    ++seen[e.id];
    EXPECT_EQ(r.topic, e.topic);
    EXPECT_EQ(r.value, e.payload) << e.id;
    EXPECT_EQ(r.key, e.key);
    if (e.partition >= 0) {
      EXPECT_EQ(r.partition, e.partition) << e.id;
    }
    ASSERT_EQ(r.headers.size(), e.headers.size() + 3) << e.id;
    for (size_t i = 0; i < e.headers.size(); ++i) {
      EXPECT_EQ(r.headers[i].first, e.headers[i].first);
      EXPECT_EQ(r.headers[i].second, e.headers[i].second);
    }
    EXPECT_EQ(r.headers[e.headers.size()].first, "outbox-id");
    EXPECT_EQ(r.headers[e.headers.size() + 1].first, "outbox-lsn");
    EXPECT_EQ(r.headers[e.headers.size() + 2].first, "outbox-xid");
    if (e.key) {
      int n_id = std::stoi(e.id.substr(24));
      per_key[r.topic + "/" + *e.key].push_back({n_id, r.offset});
    }
  }
  EXPECT_EQ(seen.size(), expected.size());
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id << " delivered " << count << "x";

  // Rows were committed in id order, so within a key the offsets must rise
  // with the id.
  for (auto& [key, v] : per_key) {
    std::sort(v.begin(), v.end());
    for (size_t i = 1; i < v.size(); ++i) {
      ASSERT_LT(v[i - 1].second, v[i].second) << "order broken for key " << key;
    }
  }

  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end_lsn); }, 30s))
      << "confirmed_flush_lsn=" << confirmed_flush(db, slot).value_or("?")
      << " end=" << end_lsn;
  expect_clean_stop(*relay);
}

// The consumer example of the documentation, run as documented against what
// the relay published: with read_committed, every row once, in order per key.
TEST_F(DeliveryTest, TheConsumerExampleReadsEachRowOnceInOrderPerKey) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot"), topic = unique("orders");
  kafka().create_topic(topic, 3);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  for (int t = 0; t < 10; ++t) pg().exec(insert_rows_sql(topic, t * 50, 50), db.name);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 60s));
  expect_clean_stop(*relay);

  const auto run = harness::run_command({OUTBOX_CONSUMER_EXAMPLE_BIN, "--brokers",
                                         kafka().bootstrap(), "--topic", topic, "--group",
                                         unique("readers"), "--idle-ms", "3000"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, int> count;
  std::map<std::string, int> last_of_key;
  int out_of_order = 0;
  std::istringstream lines(run.out);
  std::string t, key, id, lsn;
  int partition = 0;
  long long offset = 0;
  while (lines >> t >> partition >> offset >> key >> id >> lsn) {
    EXPECT_EQ(t, topic);
    ++count[id];
    const int n = row_number(id);
    auto [it, fresh] = last_of_key.emplace(key, n);
    if (!fresh) {
      if (n <= it->second) ++out_of_order;
      it->second = n;
    }
  }
  EXPECT_EQ(count.size(), 500u) << run.out;
  for (int i = 0; i < 500; ++i) EXPECT_EQ(count[row_id(i)], 1) << row_id(i);
  EXPECT_EQ(out_of_order, 0);
}

// Exactly once, transaction_interval bounds how long a Kafka transaction
// stays open; it is not a cadence. A row read with nothing behind it commits
// at once, so a read_committed reader sees each of these rows long before
// the minute the interval allows.
TEST_F(DeliveryTest, ExactlyOnceARowCommitsOnceTheStreamIsCaughtUpNotAtTheInterval) {
  auto [db, slot, topic] = new_scene(1);
  std::string body = basic_config(db, slot);
  body.replace(body.find("  drain_timeout"), 0, "  transaction_interval: 60s\n");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  for (int n = 1; n <= 3; ++n) {
    pg().exec("INSERT INTO outbox (id, topic, key, payload) VALUES ('" + row_id(n) + "', '" +
                  topic + "', 'k', 'row-" + std::to_string(n) + "')",
              db.name);
    auto got = kafka().consume(read_committed(), topic, static_cast<size_t>(n), 15s);
    ASSERT_EQ(got.size(), static_cast<size_t>(n)) << relay->log_contents();
    EXPECT_EQ(got.back().value, "row-" + std::to_string(n));
  }
  expect_clean_stop(*relay);
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 20s).size(), 3u);
}

TEST_F(DeliveryTest, RowInsertedAndDeletedInSameTransactionIsDelivered) {
  auto [db, slot, topic] = new_scene(1);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec("BEGIN; INSERT INTO outbox (id, topic, payload) VALUES ('" + row_id(1) + "', '" +
                topic + "', 'hello'); DELETE FROM outbox; COMMIT;",
            db.name);
  auto got = kafka().consume(read_committed(), topic, 1, 30s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "hello");
  EXPECT_EQ(header(got[0], "outbox-id"), std::optional<std::optional<std::string>>(row_id(1)));
  EXPECT_EQ(*pg().query_scalar("SELECT count(*) FROM outbox", db.name), "0");
  expect_clean_stop(*relay);
}

TEST_F(DeliveryTest, IdleOutboxInBusyDatabaseLetsSlotFollowWal) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec("CREATE TABLE other (id bigserial primary key, filler text)", db.name);
  const std::string start_lsn = current_wal_lsn(db);
  for (int i = 0; i < 50; ++i) {
    pg().exec("INSERT INTO other (filler) SELECT repeat('x', 1000) FROM generate_series(1, 1000)",
              db.name);
  }
  const std::string end_lsn = current_wal_lsn(db);
  auto written = pg().query_scalar("SELECT '" + end_lsn + "'::pg_lsn - '" + start_lsn + "'::pg_lsn",
                                   db.name);
  ASSERT_GE(std::stoll(*written), 50ll * 1000 * 1000);

  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end_lsn); }, 20s))
      << "confirmed_flush_lsn=" << confirmed_flush(db, slot).value_or("?") << " end=" << end_lsn;
  auto retained = pg().query_scalar(
      "SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE "
      "slot_name = '" + slot + "'",
      db.name);
  EXPECT_LT(std::stoll(*retained), 16ll * 1024 * 1024);
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
