// `outbox-relay status` against real servers in each state a slot can be in:
// healthy (a relay streaming), lagging (no relay, rows waiting), lost
// (invalidated by max_slot_wal_keep_size), missing while Kafka holds its
// checkpoint, held by another instance of a group, and PostgreSQL
// unreachable. Each is told by its exit code (0, 1, 2, 3) and its report.

#include "group_fixture.h"

namespace itest {
namespace {

constexpr const char* kSecret = "status-secret-pw";

struct StatusRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The raw JSON value after `"key":` in `json`, from position `from`: a
// string's contents, or a number, true, false or null as written.
std::string json_value(const std::string& json, const std::string& key, size_t from = 0) {
  const std::string k = "\"" + key + "\":";
  const size_t at = json.find(k, from);
  if (at == std::string::npos) return "(absent)";
  size_t v = at + k.size();
  if (json[v] == '"') {
    size_t end = v + 1;
    while (end < json.size() && json[end] != '"') end += json[end] == '\\' ? 2 : 1;
    return json.substr(v + 1, end - v - 1);
  }
  return json.substr(v, json.find_first_of(",}]", v) - v);
}

class StatusTest : public GroupTest {
 protected:
  void TearDown() override {
    if (lost_slot_made_) {
      pg().exec("ALTER SYSTEM RESET max_slot_wal_keep_size");
      pg().exec("SELECT pg_reload_conf()");
    }
  }

  StatusRun status(const std::string& config, std::vector<std::string> flags = {}) {
    std::vector<std::string> argv = {relay_binary(), "status", "--config", config, "--timeout",
                                     "5s"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    auto r = harness::run_command(argv);
    return {r.exit_code, r.out, r.err};
  }

  // A single-slot configuration whose DSN carries a password the output
  // must never show, with the endpoints on `http_port` (0: none).
  std::string config(const OutboxDb& db, const std::string& slot, int http_port,
                     const std::string& delivery = "exactly_once") {
    std::string body = basic_config(db, slot);
    body.replace(body.find(db.dsn), db.dsn.size(), db.dsn + " password=" + kSecret);
    body.replace(body.find("  drain_timeout: 10s\n"), 20,
                 "  drain_timeout: 10s\n  delivery: " + delivery + "\n");
    body.replace(body.find("listen: \"\""), 10,
                 http_port ? "listen: \"127.0.0.1:" + std::to_string(http_port) + "\""
                           : std::string("listen: \"\""));
    return write_config(body);
  }

  static void expect_no_secret(const StatusRun& r) {
    EXPECT_EQ(r.out.find(kSecret), std::string::npos) << r.out;
    EXPECT_EQ(r.err.find(kSecret), std::string::npos) << r.err;
  }

  // Streams `rows` rows through a relay and waits until they are confirmed.
  void stream_rows(const OutboxDb& db, const std::string& slot, const std::string& topic,
                   int rows) {
    pg().exec(insert_rows_sql(topic, 0, rows), db.name);
    const std::string end = current_wal_lsn(db);
    ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s))
        << confirmed_flush(db, slot).value_or("?");
  }

  // A relay streams three rows, then stops cleanly.
  void run_then_stop(const std::string& cfg, const OutboxDb& db, const std::string& slot,
                     const std::string& topic) {
    auto relay = start_relay(cfg);
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    stream_rows(db, slot, topic, 3);
    expect_clean_stop(*relay);
  }

  bool lost_slot_made_ = false;
};

TEST_F(StatusTest, HealthyStreamingRelayExitsZeroWithItsPositionCheckpointAndNoSecret) {
  auto [db, slot, topic] = new_scene(1);
  const int http = harness::free_port();
  const std::string cfg = config(db, slot, http);
  auto relay = start_relay(cfg);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  stream_rows(db, slot, topic, 5);

  // The relay confirms keepalive positions as the server's WAL moves on.
  const std::string confirmed_before = confirmed_flush(db, slot).value_or("0/0");
  StatusRun r = status(cfg, {"--json"});
  const std::string confirmed_after = confirmed_flush(db, slot).value_or("0/0");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "format"), "1") << r.out;
  EXPECT_EQ(json_value(r.out, "slot"), slot) << r.out;
  EXPECT_EQ(json_value(r.out, "status"), "healthy") << r.out;
  EXPECT_EQ(json_value(r.out, "exists"), "true") << r.out;
  EXPECT_EQ(json_value(r.out, "active_pid"), active_pid(db, slot).value_or("?")) << r.out;
  EXPECT_GE(lsn_position(json_value(r.out, "confirmed_lsn")), lsn_position(confirmed_before))
      << r.out;
  EXPECT_LE(lsn_position(json_value(r.out, "confirmed_lsn")), lsn_position(confirmed_after))
      << r.out;
  EXPECT_EQ(json_value(r.out, "lag_seconds"), "0.000") << r.out;
  EXPECT_EQ(json_value(r.out, "wal_status"), "reserved") << r.out;
  EXPECT_EQ(json_value(r.out, "safe_wal_bytes"), "null") << r.out;
  EXPECT_NE(json_value(r.out, "retained_wal_bytes"), "null") << r.out;
  // The rows went out in Kafka transactions, each with its checkpoint.
  const std::string checkpoint = json_value(r.out, "lsn", r.out.find("\"checkpoint\":"));
  ASSERT_NE(checkpoint, "(absent)") << r.out;
  EXPECT_GT(lsn_position(checkpoint), 0u) << r.out;
  EXPECT_EQ(json_value(r.out, "state", r.out.find("\"instance\":{")), "streaming") << r.out;
  EXPECT_NE(json_value(r.out, "database").find("password=****"), std::string::npos) << r.out;
  expect_no_secret(r);

  StatusRun table = status(cfg);
  EXPECT_EQ(table.exit_code, 0) << table.out << table.err;
  EXPECT_NE(table.out.find("SLOT"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(slot + "  healthy"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(slot + ": last error: none (instance state streaming)"),
            std::string::npos)
      << table.out;
  expect_no_secret(table);
  expect_clean_stop(*relay);
}

// No relay, rows waiting: the lag in seconds is the age of the oldest
// transaction with outbox rows the slot has not confirmed, as its commit
// record says, and the thresholds decide.
TEST_F(StatusTest, StoppedRelayWithRowsWaitingIsLaggingOnceOverTheThresholds) {
  auto [db, slot, topic] = new_scene(1);
  const std::string cfg = config(db, slot, 0, "at_least_once");
  run_then_stop(cfg, db, slot, topic);
  if (HasFatalFailure()) return;
  const std::string before = current_wal_lsn(db);
  pg().exec(insert_rows_sql(topic, 3, 20), db.name);
  std::this_thread::sleep_for(1500ms);

  StatusRun r = status(cfg, {"--json", "--max-lag-seconds", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "status"), "lagging") << r.out;
  EXPECT_EQ(json_value(r.out, "active_pid"), "null") << r.out;
  EXPECT_GT(std::stoll(json_value(r.out, "lag_bytes")), 0) << r.out;
  const double lag = std::stod(json_value(r.out, "lag_seconds"));
  EXPECT_GE(lag, 1.5) << r.out;
  EXPECT_LT(lag, 60) << r.out;
  const std::string pending = json_value(r.out, "oldest_pending_commit_lsn");
  ASSERT_NE(pending, "null") << r.out;
  EXPECT_GT(lsn_position(pending), lsn_position(before)) << r.out;
  EXPECT_NE(r.out.find("no walsender holds the slot"), std::string::npos) << r.out;
  EXPECT_NE(json_value(r.out, "instance_error").find("http.listen is empty"), std::string::npos)
      << r.out;
  // Nothing was moved: the relay streams those rows when it comes back.
  EXPECT_EQ(confirmed_flush(db, slot), std::optional<std::string>(json_value(r.out, "confirmed_lsn")));
  EXPECT_EQ(pg().query_scalar("SELECT count(*)::text FROM pg_replication_slots"),
            pg().query_scalar("SELECT count(*)::text FROM pg_replication_slots WHERE slot_name "
                              "NOT LIKE 'outbox_relay_status_%'"));

  // Within the default bounds (60 s, 64 MiB) the same slot is healthy.
  EXPECT_EQ(status(cfg).exit_code, 0);
  StatusRun bytes = status(cfg, {"--max-lag-bytes", "1"});
  EXPECT_EQ(bytes.exit_code, 1) << bytes.out;
  EXPECT_NE(bytes.out.find("(--max-lag-bytes)"), std::string::npos) << bytes.out;
  expect_no_secret(bytes);
}

TEST_F(StatusTest, SlotInvalidatedByMaxSlotWalKeepSizeIsLost) {
  auto [db, slot, topic] = new_scene(1);
  const std::string cfg = config(db, slot, 0, "at_least_once");
  run_then_stop(cfg, db, slot, topic);
  if (HasFatalFailure()) return;
  pg().exec(insert_rows_sql(topic, 3, 5), db.name);
  lost_slot_made_ = true;
  pg().exec("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'");
  pg().exec("SELECT pg_reload_conf()");
  pg().exec("CREATE TABLE filler (v text)", db.name);
  const auto wal_status = [&] {
    return pg().query_scalar(
        "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'", db.name);
  };
  ASSERT_TRUE(harness::wait_until(
      [&] {
        pg().exec("INSERT INTO filler SELECT repeat('w', 1000) FROM generate_series(1, 20000); "
                  "SELECT pg_switch_wal(); CHECKPOINT;",
                  db.name);
        return wal_status() == std::optional<std::string>("lost");
      },
      120s, 10ms))
      << wal_status().value_or("(no slot)");

  StatusRun r = status(cfg, {"--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "status"), "lost") << r.out;
  EXPECT_EQ(json_value(r.out, "wal_status"), "lost") << r.out;
  EXPECT_NE(r.out.find("postgres.on_slot_lost: recreate"), std::string::npos) << r.out;
  StatusRun table = status(cfg);
  EXPECT_EQ(table.exit_code, 2) << table.out;
  EXPECT_NE(table.out.find(slot + "  lost"), std::string::npos) << table.out;
}

// Exactly once, the checkpoint in Kafka remembers the slot: a slot dropped
// while the relay is stopped is lost, not "not created yet".
TEST_F(StatusTest, MissingSlotWhoseCheckpointKafkaHoldsIsLost) {
  auto [db, slot, topic] = new_scene(1);
  const std::string cfg = config(db, slot, 0);
  run_then_stop(cfg, db, slot, topic);
  if (HasFatalFailure()) return;
  const std::string confirmed = confirmed_flush(db, slot).value_or("?");
  pg().exec("SELECT pg_drop_replication_slot('" + slot + "')", db.name);

  StatusRun r = status(cfg, {"--json"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "status"), "lost") << r.out;
  EXPECT_EQ(json_value(r.out, "exists"), "false") << r.out;
  const std::string checkpoint = json_value(r.out, "lsn", r.out.find("\"checkpoint\":"));
  ASSERT_NE(checkpoint, "(absent)") << r.out;
  EXPECT_GT(lsn_position(checkpoint), 0u) << r.out;
  EXPECT_LE(lsn_position(checkpoint), lsn_position(confirmed)) << r.out;
  EXPECT_NE(r.out.find("Kafka holds its checkpoint at lsn=" + checkpoint), std::string::npos)
      << r.out;

  // Without a checkpoint (a slot never created), missing is as serious.
  auto fresh = new_scene(1);
  StatusRun never = status(config(fresh.db, fresh.slot, 0), {"--json"});
  EXPECT_EQ(never.exit_code, 2) << never.out;
  EXPECT_EQ(json_value(never.out, "status"), "missing") << never.out;
  EXPECT_EQ(json_value(never.out, "checkpoint"), "null") << never.out;
}

// Group mode: the owner is the instance named in the group's commits for the
// slot's partition, while a member has it assigned; its walsender carries
// the same id.
TEST_F(StatusTest, SlotHeldByAnotherInstanceOfTheGroupNamesTheOwner) {
  auto scene = new_group_scene(1);
  Instance a = start_instance(scene.group, scene.slots);
  ASSERT_TRUE(wait_held_by(scene.slots[0], *a.process, 60s)) << a.process->log_contents();
  Instance b = start_instance(scene.group, scene.slots);
  ASSERT_TRUE(harness::wait_until([&] { return readyz(b) == "standby\n"; }, 60s))
      << readyz(b) << b.process->log_contents();
  EXPECT_EQ(http_get(b.http_port, "/healthz"), std::optional<std::string>("ok\n"));
  const std::string id = application_name(*a.process).substr(std::string("outbox-relay/").size());

  // Asked with b's configuration: the slot is a's.
  StatusRun r;
  ASSERT_TRUE(harness::wait_until(
      [&] {
        r = status(b.config_path, {"--json"});
        return json_value(r.out, "assigned") == "true" &&
               json_value(r.out, "instance", r.out.find("\"owner\":")).find(id) !=
                   std::string::npos;
      },
      30s))
      << r.out << r.err;
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "mode"), "group") << r.out;
  const std::string owner = json_value(r.out, "instance", r.out.find("\"owner\":"));
  EXPECT_NE(owner.find("/" + std::to_string(a.process->pid()) + "/" + id), std::string::npos)
      << r.out;
  EXPECT_EQ(json_value(r.out, "walsender_application_name"), "outbox-relay/" + id) << r.out;
  // b, the instance its http.listen names, does not stream it.
  EXPECT_EQ(json_value(r.out, "state", r.out.find("\"instance\":{")), "not_assigned") << r.out;

  StatusRun table = status(b.config_path);
  EXPECT_NE(table.out.find("OWNER"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(owner), std::string::npos) << table.out;
  expect_clean_stop(*b.process);
  expect_clean_stop(*a.process);
}

TEST_F(StatusTest, UnreachablePostgresOrABadConfigurationCannotTell) {
  OutboxDb nowhere{"app", "host=127.0.0.1 port=" + std::to_string(harness::free_port()) +
                              " dbname=app user=outbox_relay connect_timeout=2"};
  const std::string cfg = config(nowhere, unique("slot"), 0, "at_least_once");
  StatusRun r = status(cfg, {"--json"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_EQ(json_value(r.out, "status"), "unknown") << r.out;
  EXPECT_NE(json_value(r.out, "postgres_error"), "null") << r.out;
  expect_no_secret(r);
  StatusRun table = status(cfg);
  EXPECT_EQ(table.exit_code, 3) << table.out;
  EXPECT_NE(table.out.find("cannot read the slot from PostgreSQL"), std::string::npos)
      << table.out;
  expect_no_secret(table);

  EXPECT_EQ(status(write_config("postgres: {dsn: 1, nonsense: 2}\n")).exit_code, 3);
  EXPECT_EQ(status(cfg, {"--max-lag-bytes", "lots"}).exit_code, 3);
  EXPECT_EQ(status(cfg, {"--no-such-flag"}).exit_code, 3);
}

}  // namespace
}  // namespace itest
