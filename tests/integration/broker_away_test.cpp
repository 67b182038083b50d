// Kafka goes away under load: the slot must not be confirmed past the first
// unacknowledged commit, and everything arrives once the broker is back.
#include <set>
#include <vector>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class BrokerAwayTest : public RelayTest {
 protected:
  // `before` transactions of 100 rows delivered and confirmed, then Kafka
  // stopped and `during` more written. Returns the WAL position after them.
  std::string deliver_then_stop_broker(const OutboxDb& db, const std::string& slot,
                                       const std::string& topic, int before, int during) {
    for (int t = 0; t < before; ++t) pg().exec(insert_rows_sql(topic, t * 100, 100), db.name);
    EXPECT_EQ(kafka().consume(read_committed(), topic, before * 100, 60s).size(), static_cast<size_t>(before * 100));
    const std::string before_outage = current_wal_lsn(db);
    EXPECT_TRUE(harness::wait_until(
        [&] { return slot_confirmed_at_least(db, slot, before_outage); }, 20s));
    if (HasFailure()) return "";  // the broker stays up for the other tests
    kafka().stop();
    for (int t = before; t < before + during; ++t) {
      pg().exec(insert_rows_sql(topic, t * 100, 100), db.name);
    }
    return current_wal_lsn(db);
  }

  // The ids read back, and the commit LSN of row `first_outage_row` (the
  // first row written while Kafka was down); "" if it did not arrive.
  struct ReadBack {
    std::set<std::string> ids;
    std::string first_outage_commit;
  };
  static ReadBack read_back(const std::vector<harness::ConsumedRecord>& got,
                            int first_outage_row) {
    ReadBack out;
    for (const auto& r : got) {
      const std::string id = *header(r, "outbox-id").value_or(std::nullopt);
      out.ids.insert(id);
      if (id == row_id(first_outage_row)) {
        out.first_outage_commit = *header(r, "outbox-lsn").value_or(std::nullopt);
      }
    }
    return out;
  }
};

TEST_F(BrokerAwayTest, ConfirmedLsnHoldsWhileBrokerIsDownAndCatchesUpAfter) {
  auto [db, slot, topic] = new_scene(3);
  auto relay = start_relay(write_config(basic_config(db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string after_load = deliver_then_stop_broker(db, slot, topic, 10, 20);
  if (HasFailure()) return;

  // Sample the slot through the outage. The bound is the commit LSN of the
  // first transaction written while Kafka was down, read back from its
  // records once they arrive: the slot may pass WAL that holds no outbox
  // row, never that commit.
  std::vector<std::string> samples;
  auto outage_end = std::chrono::steady_clock::now() + 8s;
  while (std::chrono::steady_clock::now() < outage_end) {
    samples.push_back(confirmed_flush(db, slot).value_or("0/0"));
    ASSERT_TRUE(relay->running()) << relay->log_contents();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GT(samples.size(), 40u);

  kafka().start_again();
  auto [ids, first_outage_commit] = read_back(kafka().consume(read_committed(), topic, 3000, 120s), 1000);
  EXPECT_EQ(ids.size(), 3000u);
  for (int i = 0; i < 3000; ++i) ASSERT_TRUE(ids.count(row_id(i))) << row_id(i) << " lost";
  ASSERT_FALSE(first_outage_commit.empty());
  for (const auto& lsn : samples) {
    EXPECT_LT(lsn_position(lsn), lsn_position(first_outage_commit))
        << "slot confirmed " << lsn << ", past the unacknowledged commit at "
        << first_outage_commit;
  }
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, after_load); },
                                  60s))
      << confirmed_flush(db, slot).value_or("?");
  expect_clean_stop(*relay);
}

// SIGTERM while Kafka is down: the relay waits drain_timeout for the broker,
// says how many records it leaves unacknowledged, exits 1 (not a clean
// drain) without confirming them, and a restart delivers them.
TEST_F(BrokerAwayTest, SigtermWhileBrokerIsDownLeavesUnacknowledgedRowsForTheNextStart) {
  auto [db, slot, topic] = new_scene(3);
  std::string body = basic_config(db, slot);
  body.replace(body.find("drain_timeout: 10s"), 18, "drain_timeout: 2s");
  const std::string config = write_config(body);
  auto relay = start_relay(config);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const std::string after_load = deliver_then_stop_broker(db, slot, topic, 5, 5);
  if (HasFailure()) return;
  // The walsender has sent the rows: they are in the relay, unacknowledged.
  ASSERT_TRUE(harness::wait_until(
      [&] {
        return pg().query_scalar("SELECT bool_or(sent_lsn >= '" + after_load +
                                     "'::pg_lsn) FROM pg_stat_replication",
                                 db.name) == std::optional<std::string>("t");
      },
      20s));
  relay->signal(SIGTERM);
  EXPECT_EQ(relay->wait_exit(20s), std::optional<int>(1)) << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("Kafka did not acknowledge"), std::string::npos)
      << relay->log_contents();
  const std::string confirmed_at_stop = confirmed_flush(db, slot).value_or("0/0");

  kafka().start_again();
  relay = start_relay(config);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  auto [ids, first_outage_commit] =
      read_back(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 120s), 500);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(ids.count(row_id(i))) << row_id(i) << " lost";
  ASSERT_FALSE(first_outage_commit.empty());
  EXPECT_LT(lsn_position(confirmed_at_stop), lsn_position(first_outage_commit))
      << "confirmed " << confirmed_at_stop << " at the stop, past the unacknowledged commit at "
      << first_outage_commit;
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, after_load); },
                                  60s))
      << confirmed_flush(db, slot).value_or("?");
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
