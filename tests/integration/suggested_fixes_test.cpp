// Every catalog error that tells the operator what to run is followed here
// as written: the scenario makes the relay stop, the test takes the
// statement the relay printed, runs it on the server, and the relay then
// streams. A suggested fix that PostgreSQL refuses, or that leaves the relay
// stopping at the same row, fails its scenario.
#include <algorithm>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class SuggestedFixesTest : public RelayTest {
 protected:
  // The statement the log suggests: from `first_words` through the first
  // `ends_with` after them. Empty when the log has none.
  static std::string statement(const std::string& log, const std::string& first_words,
                               const std::string& ends_with) {
    const size_t from = log.find(first_words);
    if (from == std::string::npos) return "";
    const size_t end = log.find(ends_with, from + first_words.size());
    if (end == std::string::npos) return "";
    return log.substr(from, end + ends_with.size() - from);
  }

  // The value the log gives after `setting` ("set postgres.publication: "),
  // up to the first of `ends`.
  static std::string value_after(const std::string& log, const std::string& setting,
                                 const char* ends = " ,;)\n") {
    const size_t at = log.find(setting);
    if (at == std::string::npos) return "";
    const size_t from = at + setting.size();
    return log.substr(from, log.find_first_of(ends, from) - from);
  }
  static std::string publication_in(const std::string& log) {
    return value_after(log, "set postgres.publication: ", " ,;.)\n");
  }

  struct Names {
    std::string slot;
    std::string publication = "outbox_pub";
  };

  std::string config(const Scene& s, const Names& names, const std::string& postgres_extra = "",
                     const std::string& outbox_section = "") {
    std::string body = basic_config(s.db, names.slot);
    body.replace(body.find("  publication: outbox_pub\n"), 26,
                 "  publication: " + names.publication + "\n");
    body.replace(body.find("  status_interval"), 0, postgres_extra);
    return write_config(body + outbox_section);
  }

  // Refused before streaming: exit 1, nothing streamed. Returns the log.
  std::string refused(harness::Process& relay) {
    EXPECT_EQ(relay.wait_exit(60s), std::optional<int>(1)) << relay.log_contents();
    const std::string log = relay.log_contents();
    EXPECT_EQ(log.find("streaming from"), std::string::npos) << log;
    return log;
  }

  // Runs what the relay suggested; an empty statement fails the test.
  void run(const Scene& s, const std::string& sql) {
    ASSERT_FALSE(sql.empty()) << "the relay suggested no statement";
    pg().exec(sql, s.db.name);
  }

  // The relay streams rows [first, first + 3) committed from now on and keeps
  // running, rows of `other_table` beside them included.
  void expect_streams(const Scene& s, harness::Process& relay, int first,
                      const std::string& other_table = "") {
    ASSERT_TRUE(wait_streaming(relay)) << relay.log_contents();
    const std::string beside =
        other_table.empty() ? "" : "INSERT INTO " + other_table + " VALUES (" +
                                       std::to_string(first) + ", 1); ";
    pg().exec("BEGIN; " + beside + insert_rows_sql(s.topic, first, 3) + " COMMIT;", s.db.name);
    std::vector<std::string> ids;
    for (const auto& r : kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 60s)) {
      ids.push_back(*header(r, "outbox-id").value_or(std::nullopt));
    }
    for (int i = first; i < first + 3; ++i) {
      EXPECT_NE(std::find(ids.begin(), ids.end(), row_id(i)), ids.end()) << "row " << i;
    }
    EXPECT_TRUE(relay.running()) << relay.log_contents();
    expect_clean_stop(relay);
  }
};

// Debezium's default: dbz_publication FOR ALL TABLES, with `orders` beside
// the outbox. ALTER PUBLICATION ... DROP TABLE is refused for such a
// publication, so the relay must say so at connect, before the first orders
// row, and suggest a publication of its own.
TEST_F(SuggestedFixesTest, AllTablesPublicationIsRefusedAtConnectAndItsSuggestedPublicationStreams) {
  Scene s = new_scene(1);
  pg().exec("CREATE TABLE orders (id int PRIMARY KEY, total numeric); "
            "CREATE PUBLICATION dbz_publication FOR ALL TABLES",
            s.db.name);
  const Names names{unique("slot"), "dbz_publication"};
  auto relay = start_relay(config(s, names, "  create_publication: false\n"));
  const std::string log = refused(*relay);
  EXPECT_NE(log.find("publication \"dbz_publication\" is FOR ALL TABLES and publishes 1 table "
                     "beside the outbox table public.outbox that is not listed in "
                     "outbox.ignore_relations (public.orders)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("DROP TABLE"), std::string::npos) << log;
  EXPECT_EQ(slot_active(s.db, names.slot), std::nullopt) << "refused after creating the slot";

  // sql/01-outbox-table.sql made outbox_pub already: the suggestion takes a
  // name no publication has.
  run(s, statement(log, "CREATE PUBLICATION", ")"));
  const std::string publication = publication_in(log);
  ASSERT_EQ(publication, "outbox_relay_pub");
  auto fixed = start_relay(config(s, {names.slot, publication}, "  create_publication: false\n"));
  expect_streams(s, *fixed, 0, "orders");
}

// Taking over a slot that already exists: a publication created now is "not
// found" for the slot's pending changes, so the fix names a new slot too.
TEST_F(SuggestedFixesTest, SchemaPublicationWithAnExistingSlotIsFixedWithANewPublicationAndSlot) {
  if (pg().major_version() < 15) {
    GTEST_SKIP() << "FOR TABLES IN SCHEMA arrived with PostgreSQL 15; this server is "
                 << pg().major_version();
  }
  Scene s = new_scene(1);
  pg().exec("CREATE TABLE orders (id int PRIMARY KEY, total numeric); "
            "CREATE PUBLICATION dbz_publication FOR TABLES IN SCHEMA public",
            s.db.name);
  const Names names{unique("slot"), "dbz_publication"};
  pg().exec("SELECT pg_create_logical_replication_slot('" + names.slot + "', 'pgoutput')",
            s.db.name);
  auto relay = start_relay(config(s, names, "  create_publication: false\n"));
  const std::string log = refused(*relay);
  EXPECT_NE(log.find("is FOR TABLES IN SCHEMA and publishes 1 table"), std::string::npos) << log;
  EXPECT_NE(log.find("and postgres.slot to a new name: slot \"" + names.slot + "\" exists"),
            std::string::npos)
      << log;

  run(s, statement(log, "CREATE PUBLICATION", ")"));
  const Names fixed_names{unique("slot"), publication_in(log)};
  auto fixed = start_relay(config(s, fixed_names, "  create_publication: false\n"));
  expect_streams(s, *fixed, 0, "orders");
}

// A table listed in a FOR TABLE publication beside the outbox stops the
// relay at its first row. Dropping it from the publication does not reach
// that row, already in the slot: the relay stops there again, as its message
// says; listing the table in outbox.ignore_relations, as it also says, lets
// it stream on.
TEST_F(SuggestedFixesTest, ExtraTableInTheOutboxPublicationIsSkippedOnceListedAsSuggested) {
  Scene s = new_scene(1);
  pg().exec("CREATE TABLE audit_log (id int, n int); ALTER PUBLICATION outbox_pub ADD TABLE audit_log",
            s.db.name);
  const Names names{unique("slot")};
  auto relay = start_relay(config(s, names));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec("BEGIN; INSERT INTO audit_log VALUES (1, 1); " + insert_rows_sql(s.topic, 0, 2) +
                " COMMIT;",
            s.db.name);
  ASSERT_EQ(relay->wait_exit(60s), std::optional<int>(1)) << relay->log_contents();
  const std::string log = relay->log_contents();

  run(s, statement(log, "ALTER PUBLICATION \"outbox_pub\" DROP TABLE", "\"audit_log\""));
  auto again = start_relay(config(s, names));
  ASSERT_EQ(again->wait_exit(60s), std::optional<int>(1))
      << "the row written before the DROP TABLE was skipped:\n"
      << again->log_contents();
  EXPECT_NE(again->log_contents().find("relation public.audit_log (oid"), std::string::npos);

  const std::string entry = value_after(log, "List it in outbox.ignore_relations (");
  ASSERT_EQ(entry, "public.audit_log");
  auto fixed = start_relay(config(s, names, "", "outbox:\n  ignore_relations: [" + entry + "]\n"));
  expect_streams(s, *fixed, 2, "audit_log");
  EXPECT_EQ(kafka().consume_all_until_quiet(read_committed(), s.topic, 2s, 30s).size(), 5u)
      << "rows 0 and 1, beside the audit row, were not delivered";
}

TEST_F(SuggestedFixesTest, MissingPublicationBesideAnExistingSlotIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  pg().exec("DROP PUBLICATION outbox_pub", s.db.name);
  pg().exec("SELECT pg_create_logical_replication_slot('" + names.slot + "', 'pgoutput')",
            s.db.name);
  auto relay = start_relay(config(s, names));
  const std::string log = refused(*relay);
  run(s, statement(log, "CREATE PUBLICATION", ")"));
  run(s, statement(log, "SELECT pg_drop_replication_slot(", ")"));
  expect_streams(s, *start_relay(config(s, names)), 0);
}

TEST_F(SuggestedFixesTest, MissingPublicationWithCreatePublicationOffIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  pg().exec("DROP PUBLICATION outbox_pub", s.db.name);
  const std::string off = "  create_publication: false\n";
  auto relay = start_relay(config(s, names, off));
  const std::string log = refused(*relay);
  EXPECT_EQ(slot_active(s.db, names.slot), std::nullopt);
  run(s, statement(log, "CREATE PUBLICATION", ")"));
  expect_streams(s, *start_relay(config(s, names, off)), 0);
}

TEST_F(SuggestedFixesTest, PublicationWithoutInsertsIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  pg().exec("ALTER PUBLICATION outbox_pub SET (publish = 'delete')", s.db.name);
  auto relay = start_relay(config(s, names));
  const std::string log = refused(*relay);
  run(s, statement(log, "ALTER PUBLICATION \"outbox_pub\" SET (publish", ")"));
  expect_streams(s, *start_relay(config(s, names)), 0);
}

TEST_F(SuggestedFixesTest, PublicationWithoutTheOutboxIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  pg().exec("ALTER PUBLICATION outbox_pub DROP TABLE outbox", s.db.name);
  auto relay = start_relay(config(s, names));
  const std::string log = refused(*relay);
  run(s, statement(log, "ALTER PUBLICATION \"outbox_pub\" ADD TABLE", "\"outbox\""));
  expect_streams(s, *start_relay(config(s, names)), 0);
}

TEST_F(SuggestedFixesTest, PartitionedOutboxWithoutPartitionRootIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  pg().exec(
      "DROP PUBLICATION outbox_pub; DROP TABLE outbox; "
      "CREATE TABLE outbox (id uuid NOT NULL DEFAULT gen_random_uuid(), topic text NOT NULL, "
      "key text, partition int, headers jsonb, payload bytea NOT NULL, "
      "created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, created_at)) "
      "PARTITION BY RANGE (created_at); "
      "CREATE TABLE outbox_2020s PARTITION OF outbox "
      "FOR VALUES FROM ('2020-01-01') TO ('2030-01-01'); "
      "CREATE PUBLICATION outbox_pub FOR TABLE outbox WITH (publish = 'insert')",
      s.db.name);
  auto relay = start_relay(config(s, names));
  const std::string log = refused(*relay);
  run(s, statement(log, "ALTER PUBLICATION \"outbox_pub\" SET (publish_via", ")"));
  expect_streams(s, *start_relay(config(s, names)), 0);
}

// The periodic check finds the outbox swapped for a table outside the
// publication, and suggests adding it.
TEST_F(SuggestedFixesTest, SwappedOutboxIsFixedAsSuggested) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  const std::string fast_check = "  publication_check_interval: 500ms\n";
  auto relay = start_relay(config(s, names, fast_check));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec("BEGIN; ALTER TABLE outbox RENAME TO outbox_old; "
            "CREATE TABLE outbox (LIKE outbox_old INCLUDING ALL); COMMIT;",
            s.db.name);
  ASSERT_EQ(relay->wait_exit(60s), std::optional<int>(1)) << relay->log_contents();
  const std::string log = relay->log_contents();
  run(s, statement(log, "ALTER PUBLICATION \"outbox_pub\" ADD TABLE", "\"outbox\""));
  expect_streams(s, *start_relay(config(s, names, fast_check)), 0);
}

// Not SQL, but advice all the same: the renamed outbox's rows stream once
// outbox.table names it, as the message says.
TEST_F(SuggestedFixesTest, RenamedOutboxStreamsUnderTheTableNameTheMessageGives) {
  Scene s = new_scene(1);
  const Names names{unique("slot")};
  auto relay = start_relay(config(s, names));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec("ALTER TABLE outbox RENAME TO outbox_old", s.db.name);
  pg().exec("INSERT INTO outbox_old (id, topic, payload) VALUES ('" + row_id(100) + "', '" +
                s.topic + "', 'x')",
            s.db.name);
  ASSERT_EQ(relay->wait_exit(60s), std::optional<int>(1)) << relay->log_contents();
  const std::string table = value_after(relay->log_contents(), "set outbox.table: ");
  ASSERT_EQ(table, "public.outbox_old");
  auto fixed = start_relay(config(s, names, "", "outbox:\n  table: " + table + "\n"));
  ASSERT_TRUE(wait_streaming(*fixed)) << fixed->log_contents();
  auto got = kafka().consume(read_committed(), s.topic, 1, 60s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(header(got[0], "outbox-id"), std::optional<std::optional<std::string>>(row_id(100)));
  EXPECT_TRUE(fixed->running()) << fixed->log_contents();
  expect_clean_stop(*fixed);
}

}  // namespace
}  // namespace itest
