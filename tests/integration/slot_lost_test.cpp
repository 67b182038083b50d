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
    ASSERT_EQ(kafka().consume(read_committed(), topic, 5, 30s).size(), 5u);
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
  auto got = kafka().consume(read_committed(), topic, 10, 30s);
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(header(got[5 + i], "outbox-id"),
              std::optional<std::optional<std::string>>(row_id(10 + i)));
  }
  expect_clean_stop(*relay);
}

// Exactly once, the checkpoint in Kafka is the relay's memory of the slot: a
// slot dropped by an admin while the relay is stopped is a lost slot, never a
// first start. The relay refuses, names the checkpointed position, and does
// not create the slot; on_slot_lost: recreate starts again from now, loudly.
std::string exactly_once(std::string body) {
  body.replace(body.find("  drain_timeout: 10s\n"), 20, "  drain_timeout: 10s\n  delivery: exactly_once\n");
  return body;
}

TEST_F(SlotLostTest, SlotDroppedWhileStoppedIsRefusedByItsCheckpoint) {
  auto [db, slot, topic] = new_scene(1);
  {
    auto relay = start_relay(write_config(exactly_once(basic_config(db, slot))));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec(insert_rows_sql(topic, 0, 5), db.name);
    const std::string end = current_wal_lsn(db);
    ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
    expect_clean_stop(*relay);
  }
  pg().exec("SELECT pg_drop_replication_slot('" + slot + "')", db.name);
  pg().exec(insert_rows_sql(topic, 5, 5), db.name);

  auto failing = start_relay(write_config(exactly_once(basic_config(db, slot))));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  EXPECT_NE(refusal.find("does not exist, but Kafka holds its checkpoint at lsn="),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(slot_active(db, slot), std::nullopt) << "the lost slot was created again";

  std::string body = exactly_once(basic_config(db, slot));
  body.replace(body.find("  status_interval"), 0, "  on_slot_lost: recreate\n");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("rows committed between the two positions were NOT "
                                       "published"),
            std::string::npos)
      << relay->log_contents();
  expect_clean_stop(*relay);
}

// Dropped while the relay streams: the reconnect finds no slot, and the
// checkpoint says it existed.
TEST_F(SlotLostTest, SlotDroppedWhileRunningStopsTheRelay) {
  auto [db, slot, topic] = new_scene(1);
  std::string body = exactly_once(basic_config(db, slot));
  body.replace(body.find("{min: 100ms, max: 1s}"), 21, "{min: 2s, max: 4s}");
  auto relay = start_relay(write_config(body));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(insert_rows_sql(topic, 0, 5), db.name);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));

  pg().exec("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '" +
                slot + "'",
            db.name);
  ASSERT_TRUE(harness::wait_until(
      [&] { return slot_active(db, slot) == std::optional<std::string>("false"); }, 10s));
  pg().exec("SELECT pg_drop_replication_slot('" + slot + "')", db.name);
  pg().exec(insert_rows_sql(topic, 5, 5), db.name);

  ASSERT_EQ(relay->wait_exit(60s), std::optional<int>(1)) << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("does not exist, but Kafka holds its checkpoint"),
            std::string::npos)
      << relay->log_contents();
  EXPECT_EQ(slot_active(db, slot), std::nullopt);
}

// The checkpoint names the system its positions are in. A relay pointed at
// another cluster (a fresh initdb here) that has a slot of the same name, or
// lets one be created, is on a lost slot: refused by default, naming both
// system identifiers and the checkpointed position, with nothing created
// there; on_slot_lost: recreate streams the new system from its own slot,
// and from then on the checkpoint is the new system's.
TEST_F(SlotLostTest, CheckpointOfAnotherSystemIsRefusedNamingBothSystemIdentifiers) {
  auto [db, slot, topic] = new_scene(1);
  {
    auto relay = start_relay(write_config(exactly_once(basic_config(db, slot))));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec(insert_rows_sql(topic, 0, 5), db.name);
    const std::string end = current_wal_lsn(db);
    ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
    expect_clean_stop(*relay);
  }
  const auto old_system =
      pg().query_scalar("SELECT system_identifier::text FROM pg_control_system()");
  auto other = harness::PostgresServer::start();
  const auto new_system =
      other->query_scalar("SELECT system_identifier::text FROM pg_control_system()");
  ASSERT_TRUE(old_system && new_system);
  ASSERT_NE(*old_system, *new_system);
  const OutboxDb other_db = make_outbox_db(*other);
  const auto slots_there = [&] {
    return other->query_scalar("SELECT count(*)::text FROM pg_replication_slots");
  };

  auto failing = start_relay(write_config(exactly_once(basic_config(other_db, slot))));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  // What the relay read back from Kafka before it connected.
  const std::string taken = "(exactly once); checkpoint lsn=";
  const size_t at = refusal.find(taken);
  ASSERT_NE(at, std::string::npos) << refusal;
  const std::string checkpoint =
      refusal.substr(at + taken.size(), refusal.find_first_of(" \n", at + taken.size()) -
                                            (at + taken.size()));
  EXPECT_NE(refusal.find("the server is PostgreSQL system identifier " + *new_system +
                         ", but Kafka holds the slot's checkpoint at lsn=" + checkpoint),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("from system identifier " + *old_system), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(slots_there(), std::optional<std::string>("0")) << "a slot was created";

  std::string body = exactly_once(basic_config(other_db, slot));
  body.replace(body.find("  status_interval"), 0, "  on_slot_lost: recreate\n");
  {
    auto relay = start_relay(write_config(body));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    const std::string log = relay->log_contents();
    EXPECT_NE(log.find("streaming system identifier " + *new_system +
                       " from the slot's own position; the rows after the checkpoint were NOT "
                       "published"),
              std::string::npos)
        << log;
    other->exec(insert_rows_sql(topic, 5, 3), other_db.name);
    auto got = kafka().consume(read_committed(), topic, 8, 60s);
    ASSERT_EQ(got.size(), 8u);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(header(got[5 + i], "outbox-id"),
                std::optional<std::optional<std::string>>(row_id(5 + i)));
    }
    expect_clean_stop(*relay);
  }
  // The checkpoint is this system's now: the default policy streams.
  auto relay = start_relay(write_config(exactly_once(basic_config(other_db, slot))));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(relay->log_contents().find("system identifier"), std::string::npos)
      << relay->log_contents();
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
