// The catalog checks behind every connect and the periodic publication
// check, against scripted catalog answers: what is asked, and the verdict and
// SQL to fix for each way a publication can fail the outbox.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg/replication_catalog.h"
#include "pg/replication_stream.h"

namespace pg {
namespace {

OutboxRelation outbox(char relkind = OutboxRelation::kTable) {
  OutboxRelation r;
  r.oid = 16384;
  r.nspname = "public";
  r.relname = "outbox";
  r.relkind = relkind;
  return r;
}

PublicationState good() {
  return PublicationState{true, true, true, true};
}

std::string verdict(const PublicationState& state, const OutboxRelation& rel,
                    int server_version = 170000) {
  auto r = check_publication(state, "outbox_pub", "orders_slot", rel, server_version);
  return r.ok() ? "ok" : r.error().describe();
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "message: " << text << "\nexpected: " << part;
}

TEST(PublicationCheck, PublicationThatDeliversTheOutboxPasses) {
  EXPECT_EQ(verdict(good(), outbox()), "ok");
  PublicationState no_root = good();
  no_root.via_partition_root = false;
  EXPECT_EQ(verdict(no_root, outbox()), "ok");  // only partitioned tables need it
  EXPECT_EQ(verdict(good(), outbox(OutboxRelation::kPartitioned)), "ok");
}

TEST(PublicationCheck, MissingPublicationExplainsWhyTheSlotMustBeRecreated) {
  auto r = check_publication(PublicationState{}, "outbox_pub", "orders_slot", outbox(), 170000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, replication_errc::publication_missing);
  const std::string msg = r.error().describe();
  expect_contains(msg, "slot=orders_slot publication \"outbox_pub\" does not exist");
  expect_contains(msg,
                  "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\" WITH "
                  "(publish = 'insert')");
  expect_contains(msg, "SELECT pg_drop_replication_slot('orders_slot')");
}

TEST(PublicationCheck, PublicationWithoutInsertsGivesTheAlter) {
  PublicationState s = good();
  s.publishes_insert = false;
  auto r = check_publication(s, "outbox_pub", "orders_slot", outbox(), 170000);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, replication_errc::publication_invalid);
  expect_contains(r.error().describe(), "does not publish inserts");
  expect_contains(r.error().describe(),
                  "ALTER PUBLICATION \"outbox_pub\" SET (publish = 'insert')");
}

TEST(PublicationCheck, PublicationWithoutTheOutboxGivesTheAlter) {
  PublicationState s = good();
  s.includes_outbox = false;
  const std::string msg = verdict(s, outbox());
  expect_contains(msg, "does not include the outbox table public.outbox (oid 16384)");
  expect_contains(msg, "ALTER PUBLICATION \"outbox_pub\" ADD TABLE \"public\".\"outbox\"");
}

TEST(PublicationCheck, PartitionedOutboxWithoutPartitionRootNamesTheOptionAndTheFix) {
  PublicationState s = good();
  s.via_partition_root = false;
  const std::string msg = verdict(s, outbox(OutboxRelation::kPartitioned));
  expect_contains(msg, "slot=orders_slot");
  expect_contains(msg, "without publish_via_partition_root");
  expect_contains(msg, "ALTER PUBLICATION \"outbox_pub\" SET (publish_via_partition_root = true)");
  EXPECT_EQ(msg.find("does not include"), std::string::npos);
}

TEST(PublicationCheck, PartitionedOutboxBeforePostgres13CannotBePublishedThroughItsRoot) {
  PublicationState s = good();
  s.via_partition_root = false;
  expect_contains(verdict(s, outbox(OutboxRelation::kPartitioned), 120000),
                  "publish_via_partition_root needs PostgreSQL 13 or later");
}

TEST(PublicationCheck, CreatedPublicationPublishesInsertsAndPartitionsThroughTheRoot) {
  EXPECT_EQ(create_publication_sql("outbox_pub", outbox()),
            "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\" WITH (publish = "
            "'insert')");
  EXPECT_EQ(create_publication_sql("outbox_pub", outbox(OutboxRelation::kPartitioned)),
            "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\" WITH (publish = "
            "'insert', publish_via_partition_root = true)");
}

// Answers the catalog queries read_outbox_relation makes, in order, and
// keeps what was asked.
struct ScriptedCatalog {
  std::vector<CatalogRows> answers;
  std::vector<std::string> asked;

  CatalogQuery query() {
    return [this](const std::string& sql) -> common::Result<CatalogRows> {
      asked.push_back(sql);
      if (answers.empty()) return CatalogRows{};
      CatalogRows next = std::move(answers.front());
      answers.erase(answers.begin());
      return next;
    };
  }
};

TEST(OutboxRelationRead, UnqualifiedTableIsResolvedInSchemaPublicByTheServersRules) {
  ScriptedCatalog c;
  c.answers = {{{"16384", "public", "outbox", "r"}},
               {{"id", "2950", "-1"}, {"payload", "17", "-1"}}};
  auto rel = read_outbox_relation(c.query(), "outbox", 150000);
  ASSERT_TRUE(rel.ok()) << rel.error().describe();
  expect_contains(c.asked[0], "to_regclass('public.outbox')");
  EXPECT_EQ(rel->oid, 16384u);
  EXPECT_EQ(rel->qualified_name(), "public.outbox");
  ASSERT_EQ(rel->columns.size(), 2u);
  EXPECT_EQ(rel->columns[1].name, "payload");
  EXPECT_EQ(rel->columns[1].type_oid, 17u);
  // pgoutput sends neither dropped nor generated columns.
  expect_contains(c.asked[1], "NOT attisdropped AND attgenerated = ''");
  EXPECT_TRUE(rel->partitions.empty());
}

TEST(OutboxRelationRead, QuotedNamesReachTheServerAsWritten) {
  ScriptedCatalog c;
  c.answers = {{{"16390", "Sales", "Out.box", "r"}}, {}};
  auto rel = read_outbox_relation(c.query(), "\"Sales\".\"Out.box\"", 150000);
  ASSERT_TRUE(rel.ok()) << rel.error().describe();
  expect_contains(c.asked[0], "to_regclass('\"Sales\".\"Out.box\"')");
  c.answers = {{{"16391", "public", "Out.box", "r"}}, {}};
  ASSERT_TRUE(read_outbox_relation(c.query(), "\"Out.box\"", 150000).ok());
  expect_contains(c.asked[2], "to_regclass('public.\"Out.box\"')");
}

TEST(OutboxRelationRead, PartitionedOutboxListsItsPartitions) {
  ScriptedCatalog c;
  c.answers = {{{"16384", "public", "outbox", "p"}}, {}, {{"16400"}, {"16410"}}};
  auto rel = read_outbox_relation(c.query(), "public.outbox", 170000);
  ASSERT_TRUE(rel.ok()) << rel.error().describe();
  EXPECT_EQ(rel->relkind, OutboxRelation::kPartitioned);
  EXPECT_EQ(rel->partitions, (std::vector<RelId>{16400, 16410}));
  expect_contains(c.asked[2], "pg_partition_tree(16384");
}

TEST(OutboxRelationRead, MissingTableIsOutboxMissingNamingTheSetting) {
  ScriptedCatalog c;
  c.answers = {{}};
  auto rel = read_outbox_relation(c.query(), "public.outbx", 150000);
  ASSERT_FALSE(rel.ok());
  EXPECT_EQ(rel.error().code, replication_errc::outbox_missing);
  expect_contains(rel.error().describe(),
                  "outbox table public.outbx (outbox.table) does not exist");
}

TEST(OutboxRelationRead, ViewIsNotAnOutbox) {
  ScriptedCatalog c;
  c.answers = {{{"16384", "public", "outbox", "v"}}};
  auto rel = read_outbox_relation(c.query(), "public.outbox", 150000);
  ASSERT_FALSE(rel.ok());
  expect_contains(rel.error().describe(), "is not a table (relkind 'v')");
}

TEST(OutboxRelationRead, UnexpectedOidTextIsAnErrorNamingIt) {
  ScriptedCatalog c;
  c.answers = {{{"16x84", "public", "outbox", "r"}}};
  auto rel = read_outbox_relation(c.query(), "public.outbox", 150000);
  ASSERT_FALSE(rel.ok());
  expect_contains(rel.error().describe(), "'16x84'");
}

TEST(PublicationRead, ScopeBeyondListedTablesIsRead) {
  ScriptedCatalog c;
  c.answers = {{{"t", "t", "t", "t", "f"}}};
  auto state = read_publication(c.query(), "dbz_publication", outbox(), 150000);
  ASSERT_TRUE(state.ok()) << state.error().describe();
  EXPECT_TRUE(state->scope.all_tables);
  EXPECT_FALSE(state->scope.schemas);
  EXPECT_FALSE(state->scope.lists_tables_only());
  expect_contains(c.asked[0], "p.puballtables, EXISTS (SELECT 1 FROM "
                              "pg_catalog.pg_publication_namespace s WHERE s.pnpubid = p.oid)");
  // FOR TABLES IN SCHEMA arrived with 15.
  c.answers = {{{"t", "f", "t", "f", "f"}}};
  ASSERT_TRUE(read_publication(c.query(), "outbox_pub", outbox(), 140000).ok());
  expect_contains(c.asked[1], "p.puballtables, false FROM");
}

TEST(PublicationRead, PublishedTablesAreReadWithTheirOids) {
  ScriptedCatalog c;
  c.answers = {{{"16384", "public", "outbox"}, {"16500", "public", "orders"}}};
  auto tables = read_published_tables(c.query(), "dbz_publication");
  ASSERT_TRUE(tables.ok()) << tables.error().describe();
  EXPECT_EQ(*tables, (std::vector<wal::PublishedTable>{{16384, "public", "outbox"},
                                                        {16500, "public", "orders"}}));
  expect_contains(c.asked[0], "pg_publication_tables t");
  expect_contains(c.asked[0], "WHERE t.pubname = 'dbz_publication'");
}

// sql/01-outbox-table.sql may have made outbox_pub beside Debezium's
// publication: CREATE PUBLICATION of a name taken fails.
TEST(PublicationAdvice, SuggestedPublicationNameIsOneNoPublicationHas) {
  ScriptedCatalog c;
  c.answers = {{}};
  EXPECT_EQ(free_publication_name(c.query(), "dbz_publication").value(), "outbox_pub");
  c.answers = {{}};
  EXPECT_EQ(free_publication_name(c.query(), "outbox_pub").value(), "outbox_relay_pub");
  c.answers = {{{"outbox_pub"}, {"outbox_relay_pub"}, {"outbox_relay_pub_2"}}};
  EXPECT_EQ(free_publication_name(c.query(), "dbz_publication").value(), "outbox_relay_pub_3");
  expect_contains(c.asked[0], "FROM pg_catalog.pg_publication WHERE pubname LIKE 'outbox%pub%'");
  EXPECT_EQ(create_empty_publication_sql("outbox_pub"), "CREATE PUBLICATION \"outbox_pub\"");
}

TEST(SlotRead, EachColumnIsReadByItsName) {
  ScriptedCatalog c;
  c.answers = {{{"pgoutput", "logical", "t", "4242", "0/3000000", "0/2000000", "lost", "t"}}};
  auto row = read_slot(c.query(), "orders_slot", 170000);
  ASSERT_TRUE(row.ok()) << row.error().describe();
  ASSERT_TRUE(row->has_value());
  const ReplicationSlotRow& s = **row;
  EXPECT_EQ(s.plugin, "pgoutput");
  EXPECT_EQ(s.slot_type, "logical");
  EXPECT_TRUE(s.in_this_database);
  EXPECT_EQ(s.active_pid, std::optional<std::string>("4242"));
  EXPECT_EQ(s.confirmed_flush, std::optional<Lsn>(Lsn(0x3000000)));
  EXPECT_EQ(s.restart_lsn, std::optional<Lsn>(Lsn(0x2000000)));
  EXPECT_TRUE(s.lost());
  EXPECT_TRUE(s.failover);
  expect_contains(c.asked[0],
                  "SELECT plugin, slot_type, database = pg_catalog.current_database(), "
                  "active_pid, confirmed_flush_lsn, restart_lsn, wal_status, failover FROM "
                  "pg_catalog.pg_replication_slots WHERE slot_name = 'orders_slot'");
}

TEST(SlotRead, ColumnsAServerLacksAreAskedAsConstants) {
  ScriptedCatalog c;
  c.answers = {{{"pgoutput", "logical", "f", std::nullopt, std::nullopt, std::nullopt,
                 std::nullopt, "f"}}};
  auto row = read_slot(c.query(), "orders_slot", 120000);
  ASSERT_TRUE(row.ok()) << row.error().describe();
  expect_contains(c.asked[0], "restart_lsn, NULL, false FROM");
  EXPECT_FALSE((*row)->in_this_database);
  EXPECT_FALSE((*row)->lost());
  EXPECT_EQ((*row)->confirmed_flush, std::nullopt);
  EXPECT_EQ((*row)->active_pid, std::nullopt);
}

TEST(SlotRead, MissingSlotIsNoRowAndABadLsnIsAnErrorNamingIt) {
  ScriptedCatalog c;
  c.answers = {{}};
  auto none = read_slot(c.query(), "orders_slot", 170000);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  c.answers = {{{"pgoutput", "logical", "t", std::nullopt, "zz", std::nullopt, "reserved", "f"}}};
  auto bad = read_slot(c.query(), "orders_slot", 170000);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, replication_errc::lsn_invalid);
  expect_contains(bad.error().describe(), "confirmed_flush_lsn of slot orders_slot 'zz'");
  c.answers = {{{"pgoutput", "logical"}}};
  auto short_row = read_slot(c.query(), "orders_slot", 170000);
  ASSERT_FALSE(short_row.ok());
  EXPECT_EQ(short_row.error().code, replication_errc::query_failed);
}

TEST(ServerLsn, TextThatIsNotAnLsnIsAnErrorNamingIt) {
  auto lsn = parse_server_lsn("16/B374D848", "confirmed_flush_lsn of slot s");
  ASSERT_TRUE(lsn.ok());
  EXPECT_EQ(lsn->value(), 0x16B374D848u);
  auto bad = parse_server_lsn("16-B374D848", "confirmed_flush_lsn of slot s");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, replication_errc::lsn_invalid);
  expect_contains(bad.error().describe(), "confirmed_flush_lsn of slot s '16-B374D848'");
}

}  // namespace
}  // namespace pg
