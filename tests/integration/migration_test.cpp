// The migration guides, step by step, against a real PostgreSQL and Kafka:
// docs/migrate-from-debezium.md (taking over Debezium's slot and
// publication, or starting from a fresh slot) and docs/migrate-from-polling.md
// (a poller replaced with no row lost, the overlap named by outbox-id, then
// insert-then-delete). Debezium and the poller are played with SQL: what
// they leave in the database is what the relay takes over.
#include <libpq-fe.h>

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

using Ids = std::set<std::string>;

// One row of Debezium's documented outbox table, as the relay should
// publish it.
struct DbzRow {
  std::string aggregatetype;
  std::string aggregateid;
  std::string type;
  std::optional<std::string> payload;  // PostgreSQL's text of the jsonb
};

Ids ids_between(int first, int last) {
  Ids ids;
  for (int n = first; n <= last; ++n) ids.insert(row_id(n));
  return ids;
}

Ids set_union(const Ids& a, const Ids& b) {
  Ids out = a;
  out.insert(b.begin(), b.end());
  return out;
}

Ids set_intersection(const Ids& a, const Ids& b) {
  Ids out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

// A libpq connection of its own, for what the harness's one connection per
// database cannot do: a transaction left open, a statement that waits.
class Connection {
 public:
  explicit Connection(const std::string& dsn) : conn_(PQconnectdb(dsn.c_str())) {
    if (PQstatus(conn_) != CONNECTION_OK) {
      throw std::runtime_error(std::string("connect: ") + PQerrorMessage(conn_));
    }
  }
  ~Connection() { PQfinish(conn_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void exec(const std::string& sql) {
    send(sql);
    finish_command();
  }
  // Sends `sql` without waiting for its result.
  void send(const std::string& sql) {
    if (PQsendQuery(conn_, sql.c_str()) != 1) {
      throw std::runtime_error(std::string("send: ") + PQerrorMessage(conn_));
    }
  }
  // Waits for what send() started; throws on an error.
  void finish_command() {
    std::string error;
    while (PGresult* r = PQgetResult(conn_)) {
      const ExecStatusType status = PQresultStatus(r);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && error.empty()) {
        error = PQresultErrorMessage(r);
      }
      PQclear(r);
    }
    if (!error.empty()) throw std::runtime_error(error);
  }
  int backend_pid() const { return PQbackendPID(conn_); }

 private:
  PGconn* conn_;
};

class MigrationTest : public RelayTest {
 protected:
  // A database without the schema of sql/: each guide starts from the
  // table the tool being replaced uses.
  OutboxDb bare_db() {
    OutboxDb db{unique("db"), ""};
    pg().create_database(db.name);
    db.dsn = pg().dsn(db.name);
    return db;
  }

  // Slots are per cluster and these tests name them as the guides do; a
  // failed test may leave one behind, held for a moment by its walsender.
  void drop_slot_if_exists(const std::string& slot) {
    const std::string exists =
        "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + slot + "'";
    if (pg().query_scalar(exists) == std::optional<std::string>("0")) return;
    harness::wait_until(
        [&] {
          return pg().query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" +
                                   slot + "' AND active") == std::optional<std::string>("0");
        },
        30s);
    pg().exec("SELECT pg_drop_replication_slot('" + slot + "')");
  }

  // The relay on an existing slot and publication, as the guides configure
  // it (create_slot and create_publication off, so that a typo cannot
  // create a slot that starts from now). Each test has its own
  // transactional_id_prefix: its checkpoint is the relay's memory of a slot
  // name, and these tests reuse slot names.
  std::string relay_config(const OutboxDb& db, const std::string& slot,
                           const std::string& publication, const std::string& outbox) {
    return "postgres:\n"
           "  dsn: \"" +
           db.dsn +
           "\"\n"
           "  slot: " +
           slot +
           "\n"
           "  publication: " +
           publication +
           "\n"
           "  create_slot: false\n"
           "  create_publication: false\n"
           "  status_interval: 200ms\n"
           "  reconnect_backoff: {min: 100ms, max: 1s}\n"
           "kafka:\n"
           "  brokers: \"" +
           kafka().bootstrap() +
           "\"\n"
           "  create_topics: true\n"
           "  drain_timeout: 10s\n"
           "  transactional_id_prefix: " +
           unique("migration") +
           "-\n"
           "http:\n"
           "  listen: \"\"\n" +
           outbox;
  }

  // Every record of `topics`, once the relay has stopped: nothing more can
  // arrive, so a duplicate would be among them.
  std::vector<harness::ConsumedRecord> read_all(const std::vector<std::string>& topics) {
    std::vector<harness::ConsumedRecord> got;
    for (const auto& t : topics) {
      auto part = kafka().consume_all_until_quiet(read_committed(), t, 1s, 30s);
      got.insert(got.end(), part.begin(), part.end());
    }
    return got;
  }

  static std::string value_of(const harness::ConsumedRecord& r, const std::string& key) {
    return header(r, key).value_or(std::nullopt).value_or("<absent or null>");
  }

  // ---- Debezium ------------------------------------------------------------

  // Debezium's documented outbox table, and the publication and slot its
  // PostgreSQL connector creates with its defaults (publication.name
  // dbz_publication, slot.name debezium, plugin.name pgoutput); with
  // publication.autocreate.mode=filtered and table.include.list=public.outbox
  // the publication has the outbox only.
  void debezium_state(const OutboxDb& db, const std::string& publication_target) {
    pg().exec(
        "CREATE TABLE public.outbox ("
        "  id uuid NOT NULL PRIMARY KEY,"
        "  aggregatetype varchar(255) NOT NULL,"
        "  aggregateid varchar(255) NOT NULL,"
        "  type varchar(255) NOT NULL,"
        "  payload jsonb);"
        "CREATE TABLE public.orders (id int PRIMARY KEY, total numeric);"
        "CREATE PUBLICATION dbz_publication FOR " +
            publication_target + ";",
        db.name);
    drop_slot_if_exists("debezium");
    pg().exec("SELECT pg_create_logical_replication_slot('debezium', 'pgoutput')", db.name);
  }

  // Rows [first, last] as the application writes them, `per_txn` to a
  // transaction, each with a business change beside it; their expected
  // records go into `expected`.
  void insert_dbz(const OutboxDb& db, const std::vector<std::string>& types, int first, int last,
                  std::map<std::string, DbzRow>& expected, int per_txn = 10) {
    std::string types_sql = "(ARRAY[";
    for (size_t i = 0; i < types.size(); ++i) types_sql += (i ? ", '" : "'") + types[i] + "'";
    types_sql += "])";
    for (int from = first; from <= last; from += per_txn) {
      const int to = std::min(last, from + per_txn - 1);
      const std::string range =
          "generate_series(" + std::to_string(from) + ", " + std::to_string(to) + ") g";
      pg().exec(
          "BEGIN;"
          "INSERT INTO orders SELECT g, g * 1.5 FROM " +
              range +
              ";"
              "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT "
              "('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, " +
              types_sql + "[1 + g % " + std::to_string(types.size()) +
              "], 'order-' || (g % 7), CASE WHEN g % 2 = 0 THEN 'OrderCreated' ELSE "
              "'OrderShipped' END, jsonb_build_object('orderId', g, 'total', g * 1.5) "
              "FROM " +
              range +
              ";"
              "COMMIT;",
          db.name);
    }
    remember_dbz(db, first, last, expected);
  }

  void remember_dbz(const OutboxDb& db, int first, int last,
                    std::map<std::string, DbzRow>& expected) {
    for (const auto& row : pg().query("SELECT id::text, aggregatetype, aggregateid, type, "
                                      "payload::text FROM outbox WHERE id BETWEEN '" +
                                          row_id(first) + "' AND '" + row_id(last) + "'",
                                      db.name)) {
      expected[*row[0]] = DbzRow{*row[1], *row[2], *row[3], row[4]};
    }
  }

  // The records of the relay checked one by one against the rows they come
  // from: topic outbox.event.<aggregatetype>, key aggregateid, the payload
  // as is (a tombstone for a NULL one), headers id and eventType (Debezium's
  // table.field.event.id and table.fields.additional.placement=type:header:
  // eventType) before the relay's own. Returns the ids delivered; a row
  // delivered twice fails.
  Ids check_dbz_records(const std::vector<harness::ConsumedRecord>& got,
                        const std::map<std::string, DbzRow>& expected) {
    Ids delivered;
    for (const auto& r : got) {
      const std::string id = value_of(r, "outbox-id");
      EXPECT_TRUE(delivered.insert(id).second) << id << " delivered twice";
      auto it = expected.find(id);
      if (it == expected.end()) {
        ADD_FAILURE() << "a record for a row never inserted: " << id;
        continue;
      }
      const DbzRow& e = it->second;
      EXPECT_EQ(r.topic, "outbox.event." + e.aggregatetype) << id;
      EXPECT_EQ(r.key, std::optional<std::string>(e.aggregateid)) << id;
      EXPECT_EQ(r.value_null, !e.payload.has_value()) << id;
      EXPECT_EQ(r.value, e.payload.value_or("")) << id;
      if (r.headers.size() != 5u) {
        ADD_FAILURE() << id << " has " << r.headers.size() << " headers, expected 5";
        continue;
      }
      EXPECT_EQ(r.headers[0], (std::pair<std::string, std::optional<std::string>>("id", id)));
      EXPECT_EQ(r.headers[1],
                (std::pair<std::string, std::optional<std::string>>("eventType", e.type)));
      EXPECT_EQ(r.headers[2].first, "outbox-id");
      EXPECT_EQ(r.headers[3].first, "outbox-lsn");
      EXPECT_EQ(r.headers[4].first, "outbox-xid");
    }
    return delivered;
  }

  // Debezium's settings from docs/migrate-from-debezium.md.
  static std::string dbz_outbox_section() {
    return "outbox:\n"
           "  table: public.outbox\n"
           "  columns: {id: id, key: aggregateid, payload: payload}\n"
           "  topic_template: \"outbox.event.${aggregatetype}\"\n"
           "  header_columns: {id: id, eventType: type}\n"
           "  null_payload: tombstone\n";
  }

  std::vector<std::string> dbz_topics(const std::vector<std::string>& types) {
    std::vector<std::string> topics;
    for (const auto& t : types) {
      topics.push_back("outbox.event." + t);
      kafka().create_topic(topics.back(), 3);
    }
    return topics;
  }

  // ---- a polling relay ------------------------------------------------------

  // One poll of a polling relay (gox's table and query shape, with FOR
  // UPDATE SKIP LOCKED as such loops take it): the oldest pending rows are
  // marked sent, which it does once Kafka has them. Returns their ids.
  Ids poll(const OutboxDb& db, int batch) {
    Ids ids;
    for (const auto& row :
         pg().query("UPDATE outbox SET status = 'SENT', updated_timestamp = now() "
                    "WHERE id IN (SELECT id FROM outbox WHERE status = 'PENDING' "
                    "ORDER BY created_timestamp, id LIMIT " +
                        std::to_string(batch) + " FOR UPDATE SKIP LOCKED) RETURNING id::text",
                    db.name)) {
      ids.insert(*row[0]);
    }
    return ids;
  }

  static std::string gox_insert(const std::string& topic, int first, int last) {
    return "INSERT INTO outbox (id, topic, partition, key, message) SELECT "
           "('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, '" +
           topic +
           "', g % 3, 'key-' || (g % 5), convert_to('event ' || g, 'UTF8') "
           "FROM generate_series(" +
           std::to_string(first) + ", " + std::to_string(last) + ") g;";
  }
};

// docs/migrate-from-debezium.md, "Take over Debezium's slot and
// publication": Debezium stopped with its slot confirmed short of what it
// had published (it confirms at its offset commits); the relay on that slot
// publishes every row after the slot's position exactly once, routed by
// aggregatetype, and the rows Debezium had published after that position
// are the overlap, named by the id header on both sides.
TEST_F(MigrationTest, DebeziumSlotAndPublicationAreTakenOverWithNoRowLost) {
  const OutboxDb db = bare_db();
  debezium_state(db, "TABLE public.outbox");
  const std::vector<std::string> types = {unique("Order"), unique("Customer"), unique("Shipment")};
  const std::vector<std::string> topics = dbz_topics(types);
  std::map<std::string, DbzRow> expected;

  // Debezium publishes rows 1-60 and confirms to the slot up to row 30 only,
  // then is stopped (its connector deleted).
  insert_dbz(db, types, 1, 30, expected);
  const std::string confirmed_by_debezium = current_wal_lsn(db);
  insert_dbz(db, types, 31, 60, expected);
  pg().exec("SELECT pg_replication_slot_advance('debezium', '" + confirmed_by_debezium + "')",
            db.name);
  const Ids published_by_debezium = ids_between(1, 60);

  // While nothing runs, the application goes on: an event with no payload
  // (Debezium's route.tombstone.on.empty.payload=true made it a tombstone),
  // and the deletes Debezium's users run (deletes are not events).
  insert_dbz(db, types, 61, 80, expected);
  pg().exec("INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ('" +
                row_id(81) + "', '" + types[0] +
                "', 'order-4', 'OrderDeleted', NULL);"
                "DELETE FROM outbox WHERE id <= '" +
                row_id(40) + "'",
            db.name);
  remember_dbz(db, 81, 81, expected);

  // Step 1: the slot is pgoutput's, the publication has the outbox and not
  // every table.
  EXPECT_EQ(pg().query("SELECT plugin, active::text FROM pg_replication_slots WHERE slot_name = "
                       "'debezium'",
                       db.name),
            (std::vector<harness::PostgresServer::Row>{{"pgoutput", "false"}}));
  EXPECT_EQ(pg().query("SELECT puballtables::text, pubinsert::text FROM pg_publication WHERE "
                       "pubname = 'dbz_publication'",
                       db.name),
            (std::vector<harness::PostgresServer::Row>{{"false", "true"}}));
  EXPECT_EQ(pg().query("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE "
                       "pubname = 'dbz_publication'",
                       db.name),
            (std::vector<harness::PostgresServer::Row>{{"public.outbox"}}));

  // Step 3, optional: publish inserts only from now on.
  pg().exec("ALTER PUBLICATION dbz_publication SET (publish = 'insert')", db.name);
  auto relay = start_relay(
      write_config(relay_config(db, "debezium", "dbz_publication", dbz_outbox_section())));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  insert_dbz(db, types, 82, 100, expected, 7);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(
      harness::wait_until([&] { return slot_confirmed_at_least(db, "debezium", end); }, 60s))
      << relay->log_contents();
  expect_clean_stop(*relay);

  const Ids delivered = check_dbz_records(read_all(topics), expected);
  // Exactly the rows after the slot's position: 31-100.
  EXPECT_EQ(delivered, ids_between(31, 100));
  EXPECT_EQ(set_union(published_by_debezium, delivered), ids_between(1, 100));
  EXPECT_EQ(set_intersection(published_by_debezium, delivered), ids_between(31, 60));
  drop_slot_if_exists("debezium");
}

// docs/migrate-from-debezium.md, "Or start from a fresh slot": for a slot
// that is not pgoutput's or a publication FOR ALL TABLES. The relay's
// publication and slot are created while Debezium runs; Debezium is stopped
// once its slot has confirmed past the new slot's position, and its slot
// and publication are dropped. The relay publishes every row committed
// after its slot was created, and nothing before.
TEST_F(MigrationTest, DebeziumReplacedFromAFreshSlotWithNoRowLost) {
  const OutboxDb db = bare_db();
  debezium_state(db, "ALL TABLES");  // publication.autocreate.mode=all_tables, the default
  const std::vector<std::string> types = {unique("Invoice"), unique("Payment")};
  const std::vector<std::string> topics = dbz_topics(types);
  std::map<std::string, DbzRow> expected;

  insert_dbz(db, types, 1, 25, expected);
  // Step 1: the relay's publication, then its slot, while Debezium runs.
  drop_slot_if_exists("outbox_relay");
  pg().exec("CREATE PUBLICATION outbox_pub FOR TABLE public.outbox WITH (publish = 'insert')",
            db.name);
  const std::string slot_lsn = *pg().query_scalar(
      "SELECT lsn::text FROM pg_create_logical_replication_slot('outbox_relay', 'pgoutput')",
      db.name);
  insert_dbz(db, types, 26, 50, expected);

  // Step 2: Debezium goes on and confirms everything so far; the guide's
  // check says when it has confirmed past the new slot's position.
  const std::string past_slot = "SELECT confirmed_flush_lsn >= '" + slot_lsn +
                                "'::pg_lsn FROM pg_replication_slots WHERE slot_name = 'debezium'";
  EXPECT_EQ(pg().query_scalar(past_slot, db.name), std::optional<std::string>("f"));
  pg().exec("SELECT pg_replication_slot_advance('debezium', pg_current_wal_lsn())", db.name);
  ASSERT_EQ(pg().query_scalar(past_slot, db.name), std::optional<std::string>("t"));
  const Ids published_by_debezium = ids_between(1, 50);

  // Step 3: Debezium stopped; its slot dropped, or it keeps WAL forever.
  pg().exec("SELECT pg_drop_replication_slot('debezium'); DROP PUBLICATION dbz_publication",
            db.name);
  insert_dbz(db, types, 51, 70, expected);

  // Step 4: the relay on its own slot.
  auto relay = start_relay(
      write_config(relay_config(db, "outbox_relay", "outbox_pub", dbz_outbox_section())));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  insert_dbz(db, types, 71, 90, expected);
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(
      harness::wait_until([&] { return slot_confirmed_at_least(db, "outbox_relay", end); }, 60s))
      << relay->log_contents();
  expect_clean_stop(*relay);

  const Ids delivered = check_dbz_records(read_all(topics), expected);
  EXPECT_EQ(delivered, ids_between(26, 90));
  EXPECT_EQ(set_union(published_by_debezium, delivered), ids_between(1, 90));
  EXPECT_EQ(set_intersection(published_by_debezium, delivered), ids_between(26, 50));
  EXPECT_EQ(pg().query_scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = "
                              "'debezium'"),
            std::optional<std::string>("0"));
  drop_slot_if_exists("outbox_relay");
}

// docs/migrate-from-polling.md: a polling relay replaced with no row lost.
// The slot is created while the poller runs (a transaction open across its
// creation included), the poller drains what was committed before the slot
// and is stopped, the relay starts on the slot. Poller and relay together
// publish every row; the rows both published are exactly those the guide's
// query names, and the relay's copies carry them as outbox-id. Then the
// application switches to insert-then-delete and the poller's columns go,
// with the relay streaming.
TEST_F(MigrationTest, PollingRelayReplacedWithNoRowLostThenInsertThenDelete) {
  const OutboxDb db = bare_db();
  const std::string topic = unique("client-events");
  kafka().create_topic(topic, 3);
  // gox's table.
  pg().exec(
      "CREATE TABLE outbox ("
      "  id uuid UNIQUE NOT NULL DEFAULT gen_random_uuid(),"
      "  created_timestamp timestamp WITHOUT TIME ZONE DEFAULT (now() at time zone 'utc'),"
      "  updated_timestamp timestamp,"
      "  status varchar(8) NOT NULL DEFAULT 'PENDING',"
      "  topic varchar(128) NOT NULL,"
      "  partition smallint NOT NULL,"
      "  key varchar(64) NOT NULL,"
      "  message bytea NOT NULL,"
      "  instance_id uuid)",
      db.name);

  Ids published_by_poller;
  const auto poll_into = [&](int batch) {
    const Ids ids = poll(db, batch);
    published_by_poller.insert(ids.begin(), ids.end());
    return ids.size();
  };
  pg().exec(gox_insert(topic, 1, 40), db.name);
  poll_into(25);

  // A transaction of the application open while the slot is created: the
  // slot waits for it, so it commits before the slot's position and is the
  // poller's to publish.
  Connection app(db.dsn);
  app.exec("BEGIN; " + gox_insert(topic, 41, 45));

  // Step 1: publication and slot while the poller runs, then the list of
  // the rows committed before the slot.
  drop_slot_if_exists("outbox_relay");
  pg().exec("CREATE PUBLICATION outbox_pub FOR TABLE outbox WITH (publish = 'insert')", db.name);
  Connection admin(db.dsn);
  admin.send("SELECT pg_create_logical_replication_slot('outbox_relay', 'pgoutput')");
  ASSERT_TRUE(harness::wait_until(
      [&] {
        return pg().query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                                 std::to_string(admin.backend_pid()) +
                                 " AND wait_event = 'transactionid'") ==
               std::optional<std::string>("1");
      },
      10s))
      << "the slot's creation does not wait for the open transaction";
  app.exec("COMMIT");
  admin.finish_command();
  pg().exec("CREATE TABLE outbox_cutover AS SELECT id FROM outbox", db.name);
  EXPECT_EQ(pg().query_scalar("SELECT count(*) FROM outbox_cutover", db.name),
            std::optional<std::string>("45"));

  // Step 2: the poller drains what came before the slot, while the
  // application writes on: some of the later rows go out through the
  // poller too.
  const std::string backlog =
      "SELECT count(*) FROM outbox JOIN outbox_cutover USING (id) WHERE status = 'PENDING'";
  int next = 46;
  while (pg().query_scalar(backlog, db.name) != std::optional<std::string>("0")) {
    pg().exec(gox_insert(topic, next, next + 4), db.name);
    next += 5;
    poll_into(7);
  }
  // Step 3: the poller stopped; the overlap is known from here on.
  const Ids overlap = [&] {
    Ids ids;
    for (const auto& row : pg().query("SELECT id::text FROM outbox WHERE status = 'SENT' AND id "
                                      "NOT IN (SELECT id FROM outbox_cutover)",
                                      db.name)) {
      ids.insert(*row[0]);
    }
    return ids;
  }();
  ASSERT_FALSE(overlap.empty()) << "the poller published no row after the slot";
  pg().exec(gox_insert(topic, next, next + 9), db.name);  // nobody runs
  next += 10;

  // Step 4: the relay on the slot.
  const std::string outbox =
      "outbox:\n"
      "  table: public.outbox\n"
      "  columns: {id: id, topic: topic, key: key, partition: partition, payload: message}\n";
  auto relay = start_relay(write_config(relay_config(db, "outbox_relay", "outbox_pub", outbox)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(gox_insert(topic, next, next + 9), db.name);
  next += 10;

  // Step 5: insert-then-delete. The application deletes its row in the
  // transaction that inserts it; once the slot has confirmed past the
  // switch, the rows left over are published and go, and so do the
  // poller's columns.
  for (int n = next; n < next + 10; ++n) {
    pg().exec("BEGIN; " + gox_insert(topic, n, n) + " DELETE FROM outbox WHERE id = '" + row_id(n) +
                  "'; COMMIT;",
              db.name);
  }
  next += 10;
  const std::string switched = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until(
      [&] { return slot_confirmed_at_least(db, "outbox_relay", switched); }, 60s))
      << relay->log_contents();
  pg().exec(
      "DELETE FROM outbox; DROP TABLE outbox_cutover; "
      "ALTER TABLE outbox DROP COLUMN status, DROP COLUMN updated_timestamp, "
      "DROP COLUMN instance_id",
      db.name);
  for (int n = next; n < next + 5; ++n) {
    pg().exec("BEGIN; " + gox_insert(topic, n, n) + " DELETE FROM outbox WHERE id = '" + row_id(n) +
                  "'; COMMIT;",
              db.name);
  }
  const int last = next + 4;
  const std::string end = current_wal_lsn(db);
  ASSERT_TRUE(
      harness::wait_until([&] { return slot_confirmed_at_least(db, "outbox_relay", end); }, 60s))
      << relay->log_contents();
  EXPECT_EQ(pg().query_scalar("SELECT count(*) FROM outbox", db.name),
            std::optional<std::string>("0"));
  expect_clean_stop(*relay);

  Ids delivered;
  for (const auto& r : read_all({topic})) {
    const std::string id = value_of(r, "outbox-id");
    EXPECT_TRUE(delivered.insert(id).second) << id << " delivered twice";
    const int n = row_number(id);
    EXPECT_EQ(r.value, "event " + std::to_string(n));
    EXPECT_EQ(r.key, std::optional<std::string>("key-" + std::to_string(n % 5)));
    EXPECT_EQ(r.partition, n % 3) << "the partition the poller would have used";
  }
  // The relay publishes exactly the rows committed after the slot.
  EXPECT_EQ(set_intersection(delivered, ids_between(1, 45)), Ids{});
  EXPECT_EQ(delivered, ids_between(46, last));
  // Together nothing is missing; the rows both published are exactly the
  // overlap the guide's query listed, found in the relay's outbox-id.
  EXPECT_EQ(set_union(published_by_poller, delivered), ids_between(1, last));
  EXPECT_EQ(set_intersection(published_by_poller, delivered), overlap);
  drop_slot_if_exists("outbox_relay");
}

}  // namespace
}  // namespace itest
