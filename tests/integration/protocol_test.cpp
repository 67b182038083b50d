// The replication protocol's traps, against a real walsender: keepalives and
// status updates under backpressure, logical decoding messages between rows,
// the publication created before the slot, and the least-privilege role.
#include <set>
#include <vector>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class ProtocolTest : public RelayTest {
 protected:
  static std::vector<std::string> ids_of(const std::vector<harness::ConsumedRecord>& records) {
    std::vector<std::string> ids;
    for (const auto& r : records) ids.push_back(*header(r, "outbox-id").value_or(std::nullopt));
    return ids;
  }
};

TEST_F(ProtocolTest, StatusUpdatesKeepTheWalsenderAliveWhileBackpressureStopsReading) {
  auto db = make_outbox_db();
  // The walsender drops a client it has not heard from for this long.
  pg().exec("ALTER DATABASE " + harness::quote_ident(db.name) + " SET wal_sender_timeout = '3s'");
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  std::string body = basic_config(db, slot, "limits:\n  max_inflight_messages: 50\n");
  body.replace(body.find("status_interval: 200ms"), 22, "status_interval: 1s");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const auto pid = active_pid(db, slot);
  ASSERT_TRUE(pid.has_value());

  kafka().stop();
  for (int t = 0; t < 20; ++t) pg().exec(insert_rows_sql(topic, t * 100, 100), db.name);
  const std::string end = current_wal_lsn(db);

  // Four times the timeout with the relay stalled on Kafka: still the same
  // walsender, never a replication timeout.
  auto until = std::chrono::steady_clock::now() + 12s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(active_pid(db, slot), pid) << relay->log_contents();
    std::this_thread::sleep_for(200ms);
  }
  EXPECT_EQ(pg().server_log().find("replication timeout"), std::string::npos);

  kafka().start_again();
  auto got = kafka().consume(read_committed(), topic, 2000, 120s);
  const auto ids = ids_of(got);
  ASSERT_EQ(ids.size(), 2000u);
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(ids[i], row_id(i));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
  EXPECT_EQ(active_pid(db, slot), pid) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(ProtocolTest, LogicalDecodingMessagesBetweenRowsAreSkipped) {
  auto [db, slot, topic] = new_scene(1);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec(insert_rows_sql(topic, 0, 1), db.name);
  pg().exec("BEGIN; " + insert_rows_sql(topic, 1, 1) +
                " SELECT pg_logical_emit_message(true, 'app', 'transactional');" +
                insert_rows_sql(topic, 2, 1) + " COMMIT;",
            db.name);
  pg().exec("SELECT pg_logical_emit_message(false, 'app', 'not transactional')", db.name);
  pg().exec(insert_rows_sql(topic, 3, 1), db.name);
  const std::string end = current_wal_lsn(db);

  auto got = kafka().consume(read_committed(), topic, 4, 60s);
  EXPECT_EQ(ids_of(got), (std::vector<std::string>{row_id(0), row_id(1), row_id(2), row_id(3)}));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(ProtocolTest, MissingPublicationIsCreatedForInsertsOnly) {
  auto db = make_outbox_db();
  pg().exec("DROP PUBLICATION outbox_pub", db.name);
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  EXPECT_EQ(pg().query_scalar("SELECT pubinsert::text || pubupdate::text || pubdelete::text || "
                              "pubtruncate::text FROM pg_publication WHERE pubname = 'outbox_pub'",
                              db.name),
            std::optional<std::string>("truefalsefalsefalse"));
  // The publication predates the slot, so the very first row is decoded.
  EXPECT_EQ(pg().query_scalar(
                "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'outbox_pub' AND "
                "schemaname = 'public' AND tablename = 'outbox'",
                db.name),
            std::optional<std::string>("1"));
  pg().exec(insert_rows_sql(topic, 0, 3), db.name);
  EXPECT_EQ(ids_of(kafka().consume(read_committed(), topic, 3, 60s)),
            (std::vector<std::string>{row_id(0), row_id(1), row_id(2)}));
  // A DELETE on a table without replica identity fails when the
  // publication publishes deletes; inserts-only keeps the cleanup working.
  pg().exec("DELETE FROM outbox", db.name);
  expect_clean_stop(*relay);
}

TEST_F(ProtocolTest, LeastPrivilegeRoleFromSqlStreams) {
  auto [db, slot, topic] = new_scene(1);
  OutboxDb as_relay = db;
  as_relay.dsn = pg().dsn(db.name, "outbox_relay");
  std::string body = basic_config(as_relay, slot);
  body.replace(body.find("  status_interval"), 0, "  create_publication: false\n");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(pg().query_scalar("SELECT rolsuper::text FROM pg_roles WHERE rolname = 'outbox_relay'"),
            std::optional<std::string>("false"));
  EXPECT_EQ(pg().query_scalar("SELECT usename FROM pg_stat_replication sr JOIN "
                              "pg_replication_slots s ON s.active_pid = sr.pid WHERE "
                              "s.slot_name = '" + slot + "'",
                              db.name),
            std::optional<std::string>("outbox_relay"));
  pg().exec(insert_rows_sql(topic, 0, 3), db.name);
  EXPECT_EQ(ids_of(kafka().consume(read_committed(), topic, 3, 60s)),
            (std::vector<std::string>{row_id(0), row_id(1), row_id(2)}));
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
