// RelationGuard: which relations of the stream are the outbox, by OID, and
// every way a relation can fail to map to it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "relay/errc.h"
#include "relay/relation_guard.h"

namespace relay {
namespace {

constexpr wal::RelId kOutboxOid = 16384;
constexpr wal::RelId kOtherOid = 16500;
constexpr wal::RelId kPartitionOid = 16400;
const wal::Lsn kLsn(0x16B374D848);  // 16/B374D848

// The table of sql/01-outbox-table.sql, as the catalog describes it.
wal::OutboxRelation outbox_in_catalog(char relkind = wal::OutboxRelation::kTable) {
  wal::OutboxRelation r;
  r.oid = kOutboxOid;
  r.nspname = "public";
  r.relname = "outbox";
  r.relkind = relkind;
  r.columns = {{"id", pg_type::kUuid, -1},       {"topic", pg_type::kText, -1},
               {"key", pg_type::kText, -1},      {"partition", pg_type::kInt4, -1},
               {"headers", pg_type::kJsonb, -1}, {"payload", pg_type::kBytea, -1},
               {"created_at", 1184, -1}};
  if (relkind == wal::OutboxRelation::kPartitioned) r.partitions = {kPartitionOid};
  return r;
}

RelationDesc relation(wal::RelId relid, std::string nspname, std::string relname) {
  RelationDesc d = relation_desc_of(outbox_in_catalog());
  d.relid = relid;
  d.nspname = std::move(nspname);
  d.relname = std::move(relname);
  return d;
}

RelationGuard make_guard(const config::OutboxConfig& cfg = {},
                         const wal::OutboxRelation& outbox = outbox_in_catalog()) {
  auto g = RelationGuard::create(cfg, outbox, GuardContext{"orders_slot", "outbox_pub"});
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.error().describe());
  return std::move(g).value();
}

std::string error_of(const common::Result<bool>& r) {
  return r.ok() ? std::string("(no error)") : r.error().describe();
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "message: " << text << "\nexpected: " << part;
}

TEST(RelationGuard, OutboxOidUnderItsNameIsBoundAndItsRowsPass) {
  RelationGuard g = make_guard();
  auto bound = g.on_relation(relation(kOutboxOid, "public", "outbox"));
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->relid, kOutboxOid);
  EXPECT_EQ(bound->relname, "outbox");
  EXPECT_EQ(bound->columns.size(), 7u);
  auto row = g.on_row(kOutboxOid, kLsn);
  ASSERT_TRUE(row.ok()) << error_of(row);
  EXPECT_TRUE(*row);
}

TEST(RelationGuard, RenamedOutboxIsNotBoundAndItsFirstRowHalts) {
  RelationGuard g = make_guard();
  EXPECT_FALSE(g.on_relation(relation(kOutboxOid, "public", "outbox_old")).has_value());
  auto row = g.on_row(kOutboxOid, kLsn);
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.error().code, errc::unmapped_relation);
  const std::string msg = row.error().describe();
  expect_contains(msg, "slot=orders_slot");
  expect_contains(msg, "outbox table renamed from public.outbox to public.outbox_old (oid 16384)");
  expect_contains(msg, "lsn=16/B374D848");
  expect_contains(msg, "nothing at or after it is confirmed");
  expect_contains(msg, "set outbox.table: public.outbox_old");
}

TEST(RelationGuard, RenameAfterTheOutboxWasBoundStopsItsRows) {
  RelationGuard g = make_guard();
  ASSERT_TRUE(g.on_relation(relation(kOutboxOid, "public", "outbox")).has_value());
  ASSERT_TRUE(g.on_row(kOutboxOid, kLsn).ok());
  EXPECT_FALSE(g.on_relation(relation(kOutboxOid, "archive", "outbox")).has_value());
  auto row = g.on_row(kOutboxOid, kLsn);
  ASSERT_FALSE(row.ok());
  expect_contains(row.error().describe(), "renamed from public.outbox to archive.outbox");
}

TEST(RelationGuard, RenamedBackTheOutboxStreamsAgain) {
  RelationGuard g = make_guard();
  EXPECT_FALSE(g.on_relation(relation(kOutboxOid, "public", "outbox_old")).has_value());
  ASSERT_TRUE(g.on_relation(relation(kOutboxOid, "public", "outbox")).has_value());
  EXPECT_TRUE(g.on_row(kOutboxOid, kLsn).value());
}

TEST(RelationGuard, AnotherOidUnderTheOutboxNameIsASwapThatHaltsAtItsFirstRow) {
  RelationGuard g = make_guard();
  EXPECT_FALSE(g.on_relation(relation(kOtherOid, "public", "outbox")).has_value());
  auto row = g.on_row(kOtherOid, kLsn);
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.error().code, errc::unmapped_relation);
  const std::string msg = row.error().describe();
  expect_contains(msg, "relation public.outbox is oid 16500, not the outbox's oid 16384");
  expect_contains(msg, "swapped");
  expect_contains(msg, "lsn=16/B374D848");
}

TEST(RelationGuard, UnlistedRelationHaltsAtItsFirstRowNamingItAndTheFix) {
  RelationGuard g = make_guard();
  EXPECT_FALSE(g.on_relation(relation(kOtherOid, "public", "audit_log")).has_value());
  auto row = g.on_row(kOtherOid, kLsn);
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.error().code, errc::unmapped_relation);
  const std::string msg = row.error().describe();
  expect_contains(msg, "relation public.audit_log (oid 16500) is in publication \"outbox_pub\"");
  expect_contains(msg, "lsn=16/B374D848");
  // Dropping the table from the publication alone does not help: the rows
  // already in the slot are decoded under the publication as it was.
  expect_contains(msg, "List it in outbox.ignore_relations (public.audit_log)");
  expect_contains(msg, "ALTER PUBLICATION \"outbox_pub\" DROP TABLE \"public\".\"audit_log\"");
  expect_contains(msg, "which alone does not help");
  // The outbox's own rows are not affected by the announcement alone.
  ASSERT_TRUE(g.on_relation(relation(kOutboxOid, "public", "outbox")).has_value());
  EXPECT_TRUE(g.on_row(kOutboxOid, kLsn).value());
}

TEST(RelationGuard, ListedRelationIsSkippedExplicitly) {
  config::OutboxConfig cfg;
  cfg.ignore_relations = {"public.audit_log", "\"Billing\".\"Invoices\""};
  RelationGuard g = make_guard(cfg);
  EXPECT_FALSE(g.on_relation(relation(kOtherOid, "public", "audit_log")).has_value());
  auto audit = g.on_row(kOtherOid, kLsn);
  ASSERT_TRUE(audit.ok()) << error_of(audit);
  EXPECT_FALSE(*audit);
  EXPECT_FALSE(g.on_relation(relation(kOtherOid + 1, "Billing", "Invoices")).has_value());
  EXPECT_EQ(g.on_row(kOtherOid + 1, kLsn).value(), false);
  // Quoted names are taken as written: billing.invoices is another table.
  EXPECT_FALSE(g.on_relation(relation(kOtherOid + 2, "billing", "invoices")).has_value());
  EXPECT_FALSE(g.on_row(kOtherOid + 2, kLsn).ok());
}

TEST(RelationGuard, IgnoringTheOutboxNameDoesNotHideASwap) {
  config::OutboxConfig cfg;
  cfg.ignore_relations = {"public.outbox"};
  RelationGuard g = make_guard(cfg);
  EXPECT_FALSE(g.on_relation(relation(kOtherOid, "public", "outbox")).has_value());
  EXPECT_FALSE(g.on_row(kOtherOid, kLsn).ok());
}

TEST(RelationGuard, RowOfARelationNeverAnnouncedIsAnError) {
  RelationGuard g = make_guard();
  auto row = g.on_row(kOutboxOid, kLsn);
  ASSERT_FALSE(row.ok());
  EXPECT_EQ(row.error().code, errc::unknown_relation);
  expect_contains(row.error().describe(), "relation oid 16384 at lsn=16/B374D848");
}

TEST(RelationGuard, PartitionOfTheOutboxUnderItsOwnNameIsBoundAsTheOutbox) {
  RelationGuard g = make_guard({}, outbox_in_catalog(wal::OutboxRelation::kPartitioned));
  auto bound = g.on_relation(relation(kPartitionOid, "public", "outbox_2024"));
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->relid, kPartitionOid);
  EXPECT_EQ(bound->nspname, "public");
  EXPECT_EQ(bound->relname, "outbox");
  EXPECT_TRUE(g.on_row(kPartitionOid, kLsn).value());
}

// With publish_via_partition_root, pgoutput announces the leaf a row went to
// beside the root whose OID the row carries: a partition attached after the
// relay connected is announced, and must not stop it.
TEST(RelationGuard, UnknownPartitionAnnouncedBesideTheRootDoesNotStopTheOutboxRows) {
  RelationGuard g = make_guard({}, outbox_in_catalog(wal::OutboxRelation::kPartitioned));
  ASSERT_TRUE(g.on_relation(relation(kOutboxOid, "public", "outbox")).has_value());
  EXPECT_FALSE(g.on_relation(relation(kOtherOid, "public", "outbox_2030s")).has_value());
  EXPECT_TRUE(g.on_row(kOutboxOid, kLsn).value());
  // Its own rows, were the publication to send them under its name, stop.
  auto row = g.on_row(kOtherOid, kLsn);
  ASSERT_FALSE(row.ok());
  expect_contains(row.error().describe(), "publish_via_partition_root = true");
}

TEST(RelationGuard, MissingMappedColumnsAreAllReportedAtCreation) {
  wal::OutboxRelation outbox = outbox_in_catalog();
  std::erase_if(outbox.columns, [](const wal::CatalogColumn& c) {
    return c.name == "payload" || c.name == "topic";
  });
  config::OutboxConfig cfg;
  cfg.header_columns = {{"tenant"}};
  auto g = RelationGuard::create(cfg, outbox, GuardContext{"orders_slot", "outbox_pub"});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, errc::invalid_mapping);
  const std::string msg = g.error().describe();
  expect_contains(msg, "slot=orders_slot outbox table public.outbox (oid 16384)");
  expect_contains(msg, "'topic'");
  expect_contains(msg, "'payload'");
  expect_contains(msg, "'tenant'");
}

TEST(RelationGuard, MappedColumnOfAWrongTypeIsReportedAtCreation) {
  wal::OutboxRelation outbox = outbox_in_catalog();
  outbox.columns[3].type_oid = pg_type::kText;  // partition
  auto g = RelationGuard::create({}, outbox, GuardContext{"orders_slot", "outbox_pub"});
  ASSERT_FALSE(g.ok());
  expect_contains(g.error().describe(), "'partition'");
}

TEST(RelationGuard, UnparsableIgnoredNameIsAConfigError) {
  config::OutboxConfig cfg;
  cfg.ignore_relations = {"public.\"unterminated"};
  auto g = RelationGuard::create(cfg, outbox_in_catalog(), GuardContext{"s", "p"});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, errc::invalid_config);
}

// A publication FOR ALL TABLES, as Debezium's dbz_publication, beside the
// outbox table `orders`.
GuardContext wide_context(bool slot_exists = false) {
  GuardContext c{"orders_slot", "dbz_publication"};
  c.scope.all_tables = true;
  c.scope.tables = {{kOutboxOid, "public", "outbox"}, {kOtherOid, "public", "orders"}};
  c.own_publication = {"outbox_pub",
                       "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\" WITH "
                       "(publish = 'insert')"};
  c.slot_exists = slot_exists;
  return c;
}

TEST(RelationGuard, AllTablesPublicationWithAnotherTableIsRefusedAtCreationWithAFixThatWorks) {
  auto g = RelationGuard::create({}, outbox_in_catalog(), wide_context());
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().code, errc::unmapped_relation);
  const std::string msg = g.error().describe();
  expect_contains(msg,
                  "slot=orders_slot publication \"dbz_publication\" is FOR ALL TABLES and "
                  "publishes 1 table beside the outbox table public.outbox that is not listed in "
                  "outbox.ignore_relations (public.orders)");
  expect_contains(msg, "ALTER PUBLICATION cannot take one table out of a FOR ALL TABLES");
  expect_contains(msg,
                  "CREATE PUBLICATION \"outbox_pub\" FOR TABLE \"public\".\"outbox\" WITH "
                  "(publish = 'insert'); then set postgres.publication: outbox_pub");
  EXPECT_EQ(msg.find("DROP TABLE"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("postgres.slot"), std::string::npos) << "no slot yet: " << msg;
}

TEST(RelationGuard, WidePublicationWithAnExistingSlotAsksForANewSlotToo) {
  GuardContext c = wide_context(true);
  c.scope.all_tables = false;
  c.scope.schemas = true;
  auto g = RelationGuard::create({}, outbox_in_catalog(), c);
  ASSERT_FALSE(g.ok());
  const std::string msg = g.error().describe();
  expect_contains(msg, "is FOR TABLES IN SCHEMA and publishes 1 table");
  expect_contains(msg, "and postgres.slot to a new name: slot \"orders_slot\" exists already");
}

TEST(RelationGuard, WidePublicationOfTheOutboxAndIgnoredTablesOnlyIsAccepted) {
  config::OutboxConfig cfg;
  cfg.ignore_relations = {"public.orders"};
  GuardContext c = wide_context();
  c.scope.tables.push_back({kPartitionOid, "public", "outbox_2020s"});
  EXPECT_TRUE(RelationGuard::create(cfg, outbox_in_catalog(wal::OutboxRelation::kPartitioned), c).ok());
}

TEST(RelationGuard, WidePublicationNamesAFewTablesAndCountsTheRest) {
  GuardContext c = wide_context();
  for (int i = 0; i < 7; ++i) {
    c.scope.tables.push_back({static_cast<wal::RelId>(17000 + i), "sales", "t" + std::to_string(i)});
  }
  c.scope.tables.push_back({17100, "Sales", "Big Table"});
  auto g = RelationGuard::create({}, outbox_in_catalog(), c);
  ASSERT_FALSE(g.ok());
  const std::string msg = g.error().describe();
  expect_contains(msg, "publishes 9 tables beside the outbox table public.outbox that are not");
  expect_contains(msg, "(public.orders, sales.t0, sales.t1, sales.t2, sales.t3, and 4 more)");
}

TEST(RelationGuard, WidePublicationWithoutAnOutboxTableRefusesAnyUnlistedTable) {
  config::OutboxConfig cfg;
  cfg.source = config::OutboxSource::kMessages;
  GuardContext c = wide_context();
  c.own_publication = {"outbox_pub", "CREATE PUBLICATION \"outbox_pub\""};
  auto g = RelationGuard::without_table(cfg, c);
  ASSERT_FALSE(g.ok());
  const std::string msg = g.error().describe();
  expect_contains(msg, "publishes 2 tables not listed in outbox.ignore_relations");
  expect_contains(msg, "CREATE PUBLICATION \"outbox_pub\"; then set postgres.publication");
}

// A table created after the relay connected reaches the guard as a row.
TEST(RelationGuard, RowOfAWidePublicationsNewTableSuggestsNoDropTable) {
  GuardContext c = wide_context();
  c.scope.tables = {{kOutboxOid, "public", "outbox"}};
  auto made = RelationGuard::create({}, outbox_in_catalog(), c);
  ASSERT_TRUE(made.ok()) << made.error().describe();
  RelationGuard g = std::move(made).value();
  g.on_relation(relation(kOtherOid, "public", "Orders"));
  const std::string msg = error_of(g.on_row(kOtherOid, kLsn));
  expect_contains(msg, "List it in outbox.ignore_relations (public.\"Orders\")");
  expect_contains(msg, "is FOR ALL TABLES, so ALTER PUBLICATION cannot take the table out");
  expect_contains(msg, "and postgres.slot to a new name");
  EXPECT_EQ(msg.find("DROP TABLE"), std::string::npos) << msg;
}

}  // namespace
}  // namespace relay
