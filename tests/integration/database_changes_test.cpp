// What happens in the database while the relay runs, or before it starts:
// partitioned outboxes, renames and swaps, publication changes, a mapping
// that does not fit, failover slots. One scenario per edge case. The rule
// under test: whatever the relay cannot map to the configured outbox stops
// it with an error naming it, and nothing at or after it is confirmed.
#include <algorithm>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

// A RANGE-partitioned outbox with the columns of sql/01-outbox-table.sql, one
// partition holding now() and the years around it.
constexpr const char* kPartitionedOutbox =
    "DROP PUBLICATION IF EXISTS outbox_pub; DROP TABLE outbox; "
    "CREATE TABLE outbox (id uuid NOT NULL DEFAULT gen_random_uuid(), topic text NOT NULL, "
    "key text, partition int, headers jsonb, payload bytea NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, created_at)) "
    "PARTITION BY RANGE (created_at); "
    "CREATE TABLE outbox_2020s PARTITION OF outbox "
    "FOR VALUES FROM ('2020-01-01') TO ('2030-01-01');";

class DatabaseChangesTest : public RelayTest {
 protected:
  static std::vector<std::string> ids_of(const std::vector<harness::ConsumedRecord>& records) {
    std::vector<std::string> ids;
    for (const auto& r : records) ids.push_back(*header(r, "outbox-id").value_or(std::nullopt));
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  static std::vector<std::string> ids(int first, int count) {
    std::vector<std::string> out;
    for (int i = first; i < first + count; ++i) out.push_back(row_id(i));
    return out;
  }

  // Rows [first, first + count) into `table`, dated `created_at` (SQL).
  static std::string insert_into(const std::string& table, const std::string& topic, int first,
                                 int count, const std::string& created_at = "now()") {
    std::string sql = insert_rows_sql(topic, first, count);
    sql.replace(sql.find("INSERT INTO outbox (id, topic, key, payload)"),
                std::string("INSERT INTO outbox (id, topic, key, payload)").size(),
                "INSERT INTO " + table + " (id, topic, key, payload, created_at)");
    sql.replace(sql.find(" FROM generate_series"), 0, ", " + created_at);
    return sql;
  }

  // Inserts still in the slot, decoded as pgoutput would send them now: rows
  // the relay has not confirmed past. Only while no walsender holds the slot.
  int pending_inserts(const OutboxDb& db, const std::string& slot) {
    return std::stoi(*pg().query_scalar(
        "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('" + slot +
            "', NULL, NULL, 'proto_version', '1', 'publication_names', 'outbox_pub') "
            "WHERE get_byte(data, 0) = ascii('I')",
        db.name));
  }

  // The last `rows` inserts, written after the change that stopped the
  // relay, are still in the slot, and nothing before them: it confirmed up to
  // them and not past them.
  void expect_still_in_slot(const Scene& s, int rows, harness::Process& relay) {
    EXPECT_EQ(pending_inserts(s.db, s.slot), rows) << relay.log_contents();
  }

  std::string config(const Scene& s, const std::string& postgres_extra = "",
                     const std::string& outbox_extra = "") {
    std::string body = basic_config(s.db, s.slot);
    body.replace(body.find("  status_interval"), 0, postgres_extra);
    if (!outbox_extra.empty()) body += "outbox:\n" + outbox_extra;
    return write_config(body);
  }

  // Starts the relay, streams rows [0, 3) and checks they arrived.
  std::unique_ptr<harness::Process> streaming_with_three_rows(const Scene& s,
                                                              const std::string& path) {
    auto relay = start_relay(path);
    EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec(insert_rows_sql(s.topic, 0, 3), s.db.name);
    EXPECT_EQ(ids_of(kafka().consume(read_committed(), s.topic, 3, 60s)), ids(0, 3));
    return relay;
  }

  void expect_halt_naming(harness::Process& relay, const std::vector<std::string>& parts) {
    ASSERT_EQ(relay.wait_exit(60s), std::optional<int>(1)) << relay.log_contents();
    const std::string log = relay.log_contents();
    for (const auto& part : parts) {
      EXPECT_NE(log.find(part), std::string::npos) << "expected '" << part << "' in\n" << log;
    }
  }
};

TEST_F(DatabaseChangesTest, PartitionedOutboxWithTheRelaysPublicationDeliversEveryRow) {
  Scene s = new_scene(1);
  pg().exec(kPartitionedOutbox, s.db.name);
  auto relay = start_relay(config(s));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(pg().query_scalar("SELECT pubviaroot::text || pubinsert::text || pubdelete::text "
                              "FROM pg_publication WHERE pubname = 'outbox_pub'",
                              s.db.name),
            std::optional<std::string>("truetruefalse"));

  pg().exec(insert_rows_sql(s.topic, 0, 10), s.db.name);
  const std::string end = current_wal_lsn(s.db);
  EXPECT_EQ(ids_of(kafka().consume(read_committed(), s.topic, 10, 60s)), ids(0, 10));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end); }, 30s));
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, PartitionsCreatedAttachedAndDetachedWhileRunningKeepWorking) {
  Scene s = new_scene(1);
  pg().exec(kPartitionedOutbox, s.db.name);
  auto relay = start_relay(config(s));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(insert_rows_sql(s.topic, 0, 3), s.db.name);

  // Created as a partition, and attached after being filled elsewhere.
  pg().exec(
      "CREATE TABLE outbox_2030s PARTITION OF outbox "
      "FOR VALUES FROM ('2030-01-01') TO ('2040-01-01')",
      s.db.name);
  pg().exec(insert_into("outbox", s.topic, 3, 3, "'2035-06-01'"), s.db.name);
  pg().exec(
      "CREATE TABLE outbox_2040s (LIKE outbox INCLUDING DEFAULTS); "
      "ALTER TABLE outbox ATTACH PARTITION outbox_2040s "
      "FOR VALUES FROM ('2040-01-01') TO ('2050-01-01')",
      s.db.name);
  pg().exec(insert_into("outbox_2040s", s.topic, 6, 3, "'2045-06-01'"), s.db.name);
  // A detached partition is an ordinary table outside the publication.
  pg().exec("ALTER TABLE outbox DETACH PARTITION outbox_2030s", s.db.name);
  pg().exec(insert_into("outbox_2030s", s.topic, 100, 2, "'2036-01-01'"), s.db.name);
  pg().exec(insert_rows_sql(s.topic, 9, 3), s.db.name);
  const std::string end = current_wal_lsn(s.db);

  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 60s)), ids(0, 12));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end); }, 30s));
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, UserPublicationWithoutPartitionRootFailsNamingTheOptionAndTheFix) {
  Scene s = new_scene(1);
  pg().exec(kPartitionedOutbox, s.db.name);
  pg().exec("CREATE PUBLICATION outbox_pub FOR TABLE outbox WITH (publish = 'insert')", s.db.name);
  auto relay = start_relay(config(s, "  create_publication: false\n"));
  expect_halt_naming(*relay, {"slot=" + s.slot, "publish_via_partition_root",
                              "ALTER PUBLICATION \"outbox_pub\" SET "
                              "(publish_via_partition_root = true)"});
  EXPECT_EQ(relay->log_contents().find("does not include"), std::string::npos);
  // Refused before the slot: nothing was created to hold WAL.
  EXPECT_EQ(slot_active(s.db, s.slot), std::nullopt);
}

// Rows written while the publication lacked the option are decoded as
// before it: under the partition's own name and OID. Once the publication is
// fixed, the relay maps them to the outbox by that OID rather than stop.
TEST_F(DatabaseChangesTest, PartitionRowsWrittenBeforeThePublicationWasFixedAreDelivered) {
  Scene s = new_scene(1);
  pg().exec(kPartitionedOutbox, s.db.name);
  pg().exec("CREATE PUBLICATION outbox_pub FOR TABLE outbox WITH (publish = 'insert')", s.db.name);
  pg().exec("SELECT pg_create_logical_replication_slot('" + s.slot + "', 'pgoutput')", s.db.name);
  pg().exec(insert_rows_sql(s.topic, 0, 3), s.db.name);
  auto refused = start_relay(config(s));
  expect_halt_naming(*refused, {"publish_via_partition_root"});

  pg().exec("ALTER PUBLICATION outbox_pub SET (publish_via_partition_root = true)", s.db.name);
  pg().exec(insert_rows_sql(s.topic, 3, 3), s.db.name);
  const std::string end = current_wal_lsn(s.db);
  auto relay = start_relay(config(s));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 60s)), ids(0, 6));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end); }, 30s));
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, OutboxRenamedWhileRunningHaltsBeforeConfirmingItsRows) {
  Scene s = new_scene(1);
  auto relay = streaming_with_three_rows(s, config(s));
  pg().exec("ALTER TABLE outbox RENAME TO outbox_old", s.db.name);
  pg().exec(insert_into("outbox_old", s.topic, 3, 2), s.db.name);
  expect_halt_naming(*relay,
                     {"slot=" + s.slot,
                      "outbox table renamed from public.outbox to public.outbox_old (oid", "lsn="});
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 10s)), ids(0, 3));
  expect_still_in_slot(s, 2, *relay);
}

TEST_F(DatabaseChangesTest, OutboxSwappedAndTheNewTablePublishedHaltsNamingBothOids) {
  Scene s = new_scene(1);
  auto relay = streaming_with_three_rows(s, config(s));
  const std::string old_oid = *pg().query_scalar("SELECT 'outbox'::regclass::oid::text", s.db.name);
  pg().exec(
      "BEGIN; ALTER TABLE outbox RENAME TO outbox_old; "
      "CREATE TABLE outbox (LIKE outbox_old INCLUDING ALL); "
      "ALTER PUBLICATION outbox_pub ADD TABLE outbox; COMMIT;",
      s.db.name);
  pg().exec(insert_rows_sql(s.topic, 3, 2), s.db.name);
  expect_halt_naming(*relay, {"slot=" + s.slot, "relation public.outbox is oid",
                              "not the outbox's oid " + old_oid, "swapped", "lsn="});
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 10s)), ids(0, 3));
  expect_still_in_slot(s, 2, *relay);
}

TEST_F(DatabaseChangesTest, OutboxSwappedOutsideThePublicationIsFoundByThePeriodicCheck) {
  Scene s = new_scene(1);
  auto relay = streaming_with_three_rows(s, config(s, "  publication_check_interval: 500ms\n"));
  const std::string old_oid = *pg().query_scalar("SELECT 'outbox'::regclass::oid::text", s.db.name);
  // The new table is not in the publication: its rows never reach the
  // stream, so only the catalog can tell.
  pg().exec(
      "BEGIN; ALTER TABLE outbox RENAME TO outbox_old; "
      "CREATE TABLE outbox (LIKE outbox_old INCLUDING ALL); COMMIT;",
      s.db.name);
  pg().exec(insert_rows_sql(s.topic, 3, 2), s.db.name);
  expect_halt_naming(
      *relay, {"slot=" + s.slot, "outbox table public.outbox is now oid", "not the oid " + old_oid,
               "now named public.outbox_old", "ALTER PUBLICATION \"outbox_pub\" ADD TABLE"});
}

TEST_F(DatabaseChangesTest, UnknownRelationInThePublicationHaltsNamingItAndItsLsn) {
  Scene s = new_scene(1);
  pg().exec("CREATE TABLE audit_log (n int); ALTER PUBLICATION outbox_pub ADD TABLE audit_log",
            s.db.name);
  auto relay = streaming_with_three_rows(s, config(s));
  pg().exec(
      "BEGIN; INSERT INTO audit_log VALUES (1); " + insert_rows_sql(s.topic, 3, 2) + " COMMIT;",
      s.db.name);
  expect_halt_naming(*relay,
                     {"slot=" + s.slot, "relation public.audit_log (oid",
                      "is in publication \"outbox_pub\"", "lsn=", "outbox.ignore_relations"});
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 10s)), ids(0, 3));
  expect_still_in_slot(s, 3, *relay);  // the audit row and both outbox rows
}

TEST_F(DatabaseChangesTest, RelationListedInIgnoreRelationsIsSkippedAndTheOutboxStreams) {
  Scene s = new_scene(1);
  pg().exec("CREATE TABLE audit_log (n int); ALTER PUBLICATION outbox_pub ADD TABLE audit_log",
            s.db.name);
  auto relay =
      streaming_with_three_rows(s, config(s, "", "  ignore_relations: [public.audit_log]\n"));
  pg().exec("BEGIN; INSERT INTO audit_log VALUES (1); " + insert_rows_sql(s.topic, 3, 2) +
                " INSERT INTO audit_log VALUES (2); COMMIT;",
            s.db.name);
  pg().exec(insert_rows_sql(s.topic, 5, 1), s.db.name);
  const std::string end = current_wal_lsn(s.db);
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 60s)), ids(0, 6));
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end); }, 30s));
  EXPECT_TRUE(relay->running()) << relay->log_contents();
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, TableDroppedFromThePublicationWhileRunningHaltsWithTheFix) {
  Scene s = new_scene(1);
  auto relay = streaming_with_three_rows(s, config(s, "  publication_check_interval: 500ms\n"));
  pg().exec("ALTER PUBLICATION outbox_pub DROP TABLE outbox", s.db.name);
  expect_halt_naming(*relay, {"slot=" + s.slot,
                              "publication \"outbox_pub\" does not include "
                              "the outbox table public.outbox (oid",
                              "ALTER PUBLICATION \"outbox_pub\" ADD TABLE \"public\".\"outbox\""});
}

TEST_F(DatabaseChangesTest, PublicationThatStopsPublishingInsertsHaltsWithTheFix) {
  Scene s = new_scene(1);
  auto relay = streaming_with_three_rows(s, config(s, "  publication_check_interval: 500ms\n"));
  pg().exec("ALTER PUBLICATION outbox_pub SET (publish = 'delete')", s.db.name);
  expect_halt_naming(*relay, {"slot=" + s.slot, "does not publish inserts",
                              "ALTER PUBLICATION \"outbox_pub\" SET (publish = 'insert')"});
}

TEST_F(DatabaseChangesTest, PublicationDroppedWhileRunningIsFatalAtTheNextRow) {
  Scene s = new_scene(1);
  // The periodic check is not due: the server's decoding error stops it.
  auto relay = streaming_with_three_rows(s, config(s, "  publication_check_interval: 1h\n"));
  pg().exec("DROP PUBLICATION outbox_pub", s.db.name);
  pg().exec(insert_rows_sql(s.topic, 3, 2), s.db.name);
  expect_halt_naming(
      *relay, {"slot=" + s.slot, "SQLSTATE 42704", "publication \"outbox_pub\" did not exist"});
  EXPECT_EQ(ids_of(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 10s)), ids(0, 3));
  EXPECT_EQ(relay->log_contents().find("reconnecting"), std::string::npos) << relay->log_contents();
  // The rows after the drop are not confirmed past: the slot's position is
  // still before them (its changes cannot be peeked without the publication).
  EXPECT_FALSE(slot_confirmed_at_least(s.db, s.slot, current_wal_lsn(s.db)));
}

TEST_F(DatabaseChangesTest, PublicationCreatedAfterTheSlotIsFatalAndConfirmsNothing) {
  Scene s = new_scene(1);
  pg().exec("DROP PUBLICATION outbox_pub", s.db.name);
  pg().exec("SELECT pg_create_logical_replication_slot('" + s.slot + "', 'pgoutput')", s.db.name);
  const std::string created_at = *confirmed_flush(s.db, s.slot);
  pg().exec(insert_rows_sql(s.topic, 0, 3), s.db.name);
  pg().exec("CREATE PUBLICATION outbox_pub FOR TABLE outbox WITH (publish = 'insert')", s.db.name);
  pg().exec(insert_rows_sql(s.topic, 3, 3), s.db.name);

  auto relay = start_relay(config(s));
  expect_halt_naming(
      *relay, {"slot=" + s.slot, "SQLSTATE 42704", "publication \"outbox_pub\" did not exist",
               "create the publication before the slot"});
  // Fatal at the first row: nothing skipped, nothing confirmed.
  EXPECT_EQ(confirmed_flush(s.db, s.slot), std::optional<std::string>(created_at));
  EXPECT_TRUE(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 10s).empty());
  EXPECT_EQ(relay->log_contents().find("reconnecting"), std::string::npos) << relay->log_contents();
}

TEST_F(DatabaseChangesTest, ExistingSlotWithoutPublicationIsRefusedAndNoneIsCreated) {
  Scene s = new_scene(1);
  pg().exec("DROP PUBLICATION outbox_pub", s.db.name);
  pg().exec("SELECT pg_create_logical_replication_slot('" + s.slot + "', 'pgoutput')", s.db.name);
  auto relay = start_relay(config(s));
  expect_halt_naming(*relay, {"slot=" + s.slot, "publication \"outbox_pub\" does not exist",
                              "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\"",
                              "pg_drop_replication_slot('" + s.slot + "')"});
  EXPECT_EQ(pg().query_scalar("SELECT count(*) FROM pg_publication", s.db.name),
            std::optional<std::string>("0"));
}

TEST_F(DatabaseChangesTest, MappedColumnsMissingAreAllReportedAtStartup) {
  Scene s = new_scene(1);
  auto relay =
      start_relay(config(s, "", "  columns: {payload: body}\n  header_columns: [tenant]\n"));
  // No row was written: the catalog alone shows the mapping does not fit.
  expect_halt_naming(*relay, {"slot=" + s.slot, "outbox table public.outbox (oid",
                              "does not fit the configured mapping", "'body'", "'tenant'"});
  EXPECT_EQ(relay->log_contents().find("streaming from"), std::string::npos);
}

// The kernel's keepalive timer on the relay's end of its replication
// connection, as ss prints it ("29sec", "14min"); empty when none.
std::string keepalive_timer_now(harness::PostgresServer& server, const OutboxDb& db,
                                const std::string& slot) {
  auto port = server.query_scalar(
      "SELECT r.client_port::text FROM pg_stat_replication r JOIN pg_replication_slots s ON "
      "s.active_pid = r.pid WHERE s.slot_name = '" +
          slot + "'",
      db.name);
  if (!port) return "";
  auto ss =
      harness::run_command({"ss", "-tnoH", "state", "established", "( sport = :" + *port + " )"});
  const std::string key = "timer:(keepalive,";
  const size_t at = ss.out.find(key);
  if (at == std::string::npos) return "";
  const size_t start = at + key.size();
  return ss.out.substr(start, ss.out.find(',', start) - start);
}

// While a status update is unacknowledged ss shows the retransmission timer
// instead: ask until the keepalive timer shows, within a deadline.
std::string keepalive_timer(harness::PostgresServer& server, const OutboxDb& db,
                            const std::string& slot) {
  std::string timer;
  harness::wait_until(
      [&] {
        timer = keepalive_timer_now(server, db, slot);
        return !timer.empty();
      },
      10s, 20ms);
  return timer;
}

TEST_F(DatabaseChangesTest, ReplicationConnectionProbesADeadPathWithinAMinute) {
  Scene s = new_scene(1);
  auto relay = start_relay(config(s));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  // keepalives_idle=30: the first probe is due within 30 s of silence, not
  // after the kernel's two hours.
  const std::string timer = keepalive_timer(pg(), s.db, s.slot);
  ASSERT_NE(timer.find("sec"), std::string::npos) << "timer: '" << timer << "'";
  EXPECT_LE(std::stoi(timer), 30) << timer;
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, KeepaliveSettingsInTheDsnWin) {
  Scene s = new_scene(1);
  OutboxDb db = s.db;
  db.dsn += " keepalives_idle=900";
  auto relay = start_relay(write_config(basic_config(db, s.slot)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const std::string timer = keepalive_timer(pg(), s.db, s.slot);
  EXPECT_NE(timer.find("min"), std::string::npos) << "timer: '" << timer << "'";
  expect_clean_stop(*relay);
}

TEST_F(DatabaseChangesTest, SlotIsAFailoverSlotOnPostgres17) {
  if (pg().major_version() < 17) {
    GTEST_SKIP() << "failover slots arrived with PostgreSQL 17; this server is "
                 << pg().major_version();
  }
  Scene s = new_scene(1);
  auto relay = start_relay(config(s));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(
      pg().query_scalar(
          "SELECT failover::text FROM pg_replication_slots WHERE slot_name = '" + s.slot + "'",
          s.db.name),
      std::optional<std::string>("true"));
  expect_clean_stop(*relay);

  // A slot made without it (by hand, or before the setting) becomes one.
  Scene t = new_scene(1);
  pg().exec("SELECT pg_create_logical_replication_slot('" + t.slot + "', 'pgoutput')", t.db.name);
  auto second = start_relay(config(t));
  ASSERT_TRUE(wait_streaming(*second)) << second->log_contents();
  EXPECT_EQ(
      pg().query_scalar(
          "SELECT failover::text FROM pg_replication_slots WHERE slot_name = '" + t.slot + "'",
          t.db.name),
      std::optional<std::string>("true"));
  expect_clean_stop(*second);
}

TEST_F(DatabaseChangesTest, FailoverSlotOffCreatesAnOrdinarySlot) {
  if (pg().major_version() < 17) {
    GTEST_SKIP() << "pg_replication_slots.failover arrived with PostgreSQL 17; this server is "
                 << pg().major_version();
  }
  Scene s = new_scene(1);
  auto relay = start_relay(config(s, "  failover_slot: false\n"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_EQ(
      pg().query_scalar(
          "SELECT failover::text FROM pg_replication_slots WHERE slot_name = '" + s.slot + "'",
          s.db.name),
      std::optional<std::string>("false"));
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
