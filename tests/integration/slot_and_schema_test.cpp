// Slot contention and schema changes mid-stream.
#include <unistd.h>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class SlotAndSchemaTest : public RelayTest {};

TEST_F(SlotAndSchemaTest, SlotHeldByAnotherConsumerIsWaitedForThenStreamed) {
  auto [db, slot, topic] = new_scene(1);
  pg().exec("SELECT pg_create_logical_replication_slot('" + slot + "', 'pgoutput')", db.name);

  harness::TempDir dir;
  // The npm build of PostgreSQL 17 ships the server only; Debian's client
  // speaks the same replication protocol.
  std::string recvlogical = pg().bin_dir() + "/pg_recvlogical";
  if (::access(recvlogical.c_str(), X_OK) != 0) {
    recvlogical = "/usr/lib/postgresql/15/bin/pg_recvlogical";
  }
  harness::Process holder({recvlogical, "-d", db.dsn, "-S", slot,
                           "--start", "-f", "/dev/null", "-o", "proto_version=1", "-o",
                           "publication_names=outbox_pub"},
                          {}, dir.path() + "/recvlogical.log");
  ASSERT_TRUE(harness::wait_until(
      [&] { return slot_active(db, slot) == std::optional<std::string>("true"); },
      20s));

  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(harness::wait_until(
      [&] { return relay->log_contents().find("waiting for the slot") != std::string::npos; },
      20s))
      << relay->log_contents();
  ASSERT_TRUE(relay->running());

  holder.signal(SIGTERM);
  holder.wait_exit(10s);
  pg().exec(insert_rows_sql(topic, 0, 10), db.name);
  ASSERT_TRUE(wait_streaming(*relay, 30s)) << relay->log_contents();
  EXPECT_EQ(kafka().consume(read_committed(), topic, 10, 30s).size(), 10u);
  expect_clean_stop(*relay);
}

TEST_F(SlotAndSchemaTest, AddColumnMidStreamLosesNothing) {
  auto [db, slot, topic] = new_scene(1);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec(insert_rows_sql(topic, 0, 100), db.name);
  pg().exec("BEGIN; " + insert_rows_sql(topic, 100, 100) +
                " ALTER TABLE outbox ADD COLUMN tenant text DEFAULT 'acme'; " +
                insert_rows_sql(topic, 200, 100) + " COMMIT;",
            db.name);
  pg().exec(insert_rows_sql(topic, 300, 100), db.name);
  auto got = kafka().consume(read_committed(), topic, 400, 60s);
  ASSERT_EQ(got.size(), 400u);
  for (int i = 0; i < 400; ++i) {
    EXPECT_EQ(*header(got[static_cast<size_t>(i)], "outbox-id").value_or(std::nullopt), row_id(i));
  }
  expect_clean_stop(*relay);
}

TEST_F(SlotAndSchemaTest, DroppingAMappedColumnStopsWithAnErrorNamingIt) {
  auto [db, slot, topic] = new_scene(1);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  pg().exec(insert_rows_sql(topic, 0, 5), db.name);
  ASSERT_EQ(kafka().consume(read_committed(), topic, 5, 30s).size(), 5u);
  pg().exec("ALTER TABLE outbox DROP COLUMN key", db.name);
  pg().exec("INSERT INTO outbox (id, topic, payload) VALUES ('" + row_id(5) + "', '" + topic +
                "', 'x')",
            db.name);
  ASSERT_EQ(relay->wait_exit(30s), std::optional<int>(1)) << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("'key'"), std::string::npos) << relay->log_contents();
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), topic, 2s, 10s).size(), 5u);
}

}  // namespace
}  // namespace itest
