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

// The checkpoint in Kafka is the relay's memory of the slot, in both
// deliveries (exactly once commits it in its Kafka transactions, at least
// once writes it after confirming): a slot dropped by an admin while the
// relay is stopped is a lost slot, never a first start. The relay refuses,
// names the checkpointed position, and does not create the slot;
// on_slot_lost: recreate starts again from now, loudly.
std::string with_delivery(std::string body, const std::string& delivery) {
  body.replace(body.find("  drain_timeout: 10s\n"), 20,
               "  drain_timeout: 10s\n  delivery: " + delivery + "\n");
  return body;
}

class SlotMemoryTest : public SlotLostTest, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string config(const OutboxDb& db, const std::string& slot) {
    return with_delivery(basic_config(db, slot), GetParam());
  }
  // What the relay said it read back from Kafka at start ("none yet" or
  // the checkpointed LSN).
  static std::optional<std::string> checkpoint_read(const std::string& log) {
    const std::string taken = "; checkpoint lsn=";
    const size_t at = log.find(taken);
    if (at == std::string::npos) return std::nullopt;
    const size_t from = at + taken.size();
    return log.substr(from, log.find_first_of(" \n", from) - from);
  }
};

TEST_P(SlotMemoryTest, SlotDroppedWhileStoppedIsRefusedByItsCheckpoint) {
  auto [db, slot, topic] = new_scene(1);
  {
    auto relay = start_relay(write_config(config(db, slot)));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    EXPECT_NE(relay->log_contents().find("checkpoint none yet (first start)"), std::string::npos)
        << relay->log_contents();
    pg().exec(insert_rows_sql(topic, 0, 5), db.name);
    const std::string end = current_wal_lsn(db);
    ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s));
    expect_clean_stop(*relay);
  }
  // The checkpoint is the position the slot was left at.
  const std::optional<std::string> left_at = confirmed_flush(db, slot);
  ASSERT_TRUE(left_at);
  pg().exec("SELECT pg_drop_replication_slot('" + slot + "')", db.name);
  pg().exec(insert_rows_sql(topic, 5, 5), db.name);

  auto failing = start_relay(write_config(config(db, slot)));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  EXPECT_EQ(checkpoint_read(refusal), left_at) << refusal;
  EXPECT_NE(refusal.find("does not exist, but Kafka holds its checkpoint at lsn=" + *left_at),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("the gap runs from lsn=" + *left_at), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(slot_active(db, slot), std::nullopt) << "the lost slot was created again";

  std::string body = config(db, slot);
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
// relay knows it existed.
TEST_P(SlotMemoryTest, SlotDroppedWhileRunningStopsTheRelay) {
  auto [db, slot, topic] = new_scene(1);
  std::string body = config(db, slot);
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
  EXPECT_NE(relay->log_contents().find("does not exist, but "), std::string::npos)
      << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("the gap runs from lsn="), std::string::npos)
      << relay->log_contents();
  EXPECT_EQ(slot_active(db, slot), std::nullopt);
}

// The checkpoint names the system its positions are in. A relay pointed at
// another cluster (a fresh initdb here) that has a slot of the same name, or
// lets one be created, is on a lost slot: refused by default, naming both
// system identifiers and the checkpointed position, with nothing created
// there; on_slot_lost: recreate streams the new system from its own slot,
// and from then on the checkpoint is the new system's.
TEST_P(SlotMemoryTest, CheckpointOfAnotherSystemIsRefusedNamingBothSystemIdentifiers) {
  auto [db, slot, topic] = new_scene(1);
  {
    auto relay = start_relay(write_config(config(db, slot)));
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

  auto failing = start_relay(write_config(config(other_db, slot)));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  // What the relay read back from Kafka before it connected.
  const std::optional<std::string> checkpoint = checkpoint_read(refusal);
  ASSERT_TRUE(checkpoint) << refusal;
  EXPECT_NE(refusal.find("the server is PostgreSQL system identifier " + *new_system +
                         ", but Kafka holds the slot's checkpoint at lsn=" + *checkpoint),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("from system identifier " + *old_system), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(slots_there(), std::optional<std::string>("0")) << "a slot was created";

  std::string body = config(other_db, slot);
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
  auto relay = start_relay(write_config(config(other_db, slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(relay->log_contents().find("system identifier"), std::string::npos)
      << relay->log_contents();
  expect_clean_stop(*relay);
}

INSTANTIATE_TEST_SUITE_P(Delivery, SlotMemoryTest,
                         ::testing::Values("exactly_once", "at_least_once"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace itest
