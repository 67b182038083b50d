// A slot invalidated by max_slot_wal_keep_size while the relay was down:
// by default the relay refuses to stream and says why; on_slot_lost:
// recreate drops and recreates the slot, loudly, and streams from now.
#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class SlotLostTest : public RelayTest {
 protected:
  void TearDown() override {
    pg().exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
    pg().exec("SELECT pg_reload_conf()");
  }

  std::optional<std::string> wal_status(const OutboxDb& db, const std::string& slot) {
    return pg().query_scalar(
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'", db.name);
  }
};

TEST_F(SlotLostTest, LostSlotFailsClearlyByDefaultAndIsRecreatedOnlyWhenConfigured) {
  auto [db, slot, topic] = new_scene(1);
  {
    auto relay = start_relay(write_config(basic_config(db, slot)));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec(insert_rows_sql(topic, 0, 5), db.name);
    ASSERT_EQ(kafka().consume(topic, 5, 30s).size(), 5u);
    expect_clean_stop(*relay);
  }

  // Rows committed while the relay is down, then more WAL than the slot may
  // keep: the checkpoint invalidates the slot and removes what it needed.
  pg().exec(insert_rows_sql(topic, 5, 5), db.name);
  pg().exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  pg().exec("SELECT pg_reload_conf()");
  pg().exec("CREATE TABLE filler (v text)", db.name);
  ASSERT_TRUE(harness::wait_until(
      [&] {
        pg().exec("INSERT INTO filler SELECT repeat('w', 1000) FROM generate_series(1, 20000); "
                  "SELECT pg_switch_wal(); CHECKPOINT;",
                  db.name);
        return wal_status(db, slot) == std::optional<std::string>("lost");
      },
      120s, 10ms))
      << "wal_status=" << wal_status(db, slot).value_or("(no slot)");

  auto failing = start_relay(write_config(basic_config(db, slot)));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  EXPECT_NE(refusal.find("invalidated"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(wal_status(db, slot), std::optional<std::string>("lost"));

  std::string body = basic_config(db, slot);
  body.replace(body.find("  status_interval"), 0, "  on_slot_lost: recreate\n");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const std::string log = relay->log_contents();
  EXPECT_NE(log.find("NOT published"), std::string::npos) << log;
  EXPECT_NE(log.find("lost_confirmed_lsn="), std::string::npos) << log;
  EXPECT_NE(wal_status(db, slot), std::optional<std::string>("lost"));

  pg().exec(insert_rows_sql(topic, 10, 5), db.name);
  auto got = kafka().consume(topic, 10, 30s);
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(header(got[5 + i], "outbox-id"),
              std::optional<std::optional<std::string>>(row_id(10 + i)));
  }
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
