// Kafka goes away under load: the slot must not be confirmed past the first
// unacknowledged commit, and everything arrives once the broker is back.
#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class BrokerAwayTest : public RelayTest {};

TEST_F(BrokerAwayTest, ConfirmedLsnHoldsWhileBrokerIsDownAndCatchesUpAfter) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 3);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  for (int t = 0; t < 10; ++t) pg().exec(insert_rows_sql(topic, t * 100, 100), db.name);
  ASSERT_EQ(kafka().consume(topic, 1000, 60s).size(), 1000u);
  const std::string before_outage = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, before_outage); },
                                  20s));

  kafka().stop();
  for (int t = 10; t < 30; ++t) pg().exec(insert_rows_sql(topic, t * 100, 100), db.name);
  const std::string after_load = current_wal_lsn(db);

  // Sample the slot through the outage: never past the last acknowledged
  // commit, which precedes the first transaction written while Kafka was down.
  auto outage_end = std::chrono::steady_clock::now() + 8s;
  int samples = 0;
  while (std::chrono::steady_clock::now() < outage_end) {
    auto beyond = pg().query_scalar("SELECT confirmed_flush_lsn > '" + before_outage +
                                        "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" +
                                        slot + "'",
                                    db.name);
    ASSERT_EQ(beyond, std::optional<std::string>("f"))
        << "slot confirmed past unacknowledged rows: " << confirmed_flush(db, slot).value_or("?");
    ASSERT_TRUE(relay->running()) << relay->log_contents();
    ++samples;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(samples, 40);

  kafka().start_again();
  auto got = kafka().consume(topic, 3000, 120s);
  std::set<std::string> ids;
  for (const auto& r : got) ids.insert(*header(r, "outbox-id").value_or(std::nullopt));
  EXPECT_EQ(ids.size(), 3000u);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(ids.count(row_id(i))) << row_id(i) << " lost";
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, after_load); },
                                  60s))
      << confirmed_flush(db, slot).value_or("?");
  relay->signal(SIGTERM);
  EXPECT_EQ(relay->wait_exit(30s), std::optional<int>(0)) << relay->log_contents();
}

}  // namespace
}  // namespace itest
