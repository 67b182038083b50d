#pragma once

// What the catalog says about the outbox table when the relay connects: read
// by the replication connection before START_REPLICATION, and again by the
// monitor while streaming. Plain data, so that the pure relay core can judge
// the stream against it without knowing libpq.

#include <cstdint>
#include <string>
#include <vector>

#include "wal/lsn.h"

namespace wal {

struct CatalogColumn {
  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;
};

struct OutboxRelation {
  static constexpr char kTable = 'r';
  static constexpr char kPartitioned = 'p';

  RelId oid = 0;
  std::string nspname;
  std::string relname;
  char relkind = kTable;
  // As pgoutput sends them in a Relation message: in attnum order, without
  // dropped or generated columns.
  std::vector<CatalogColumn> columns;
  // Every partition below a partitioned outbox, at any depth.
  std::vector<RelId> partitions;

  // "schema.table" as the catalog spells it, for messages.
  std::string qualified_name() const { return nspname + "." + relname; }
};

// A table a publication publishes (pg_publication_tables).
struct PublishedTable {
  RelId oid = 0;
  std::string nspname;
  std::string relname;

  bool operator==(const PublishedTable&) const = default;
};

// What a publication covers beyond the tables it lists.
struct PublicationScope {
  bool all_tables = false;  // FOR ALL TABLES
  bool schemas = false;     // FOR TABLES IN SCHEMA (PostgreSQL 15+), one schema or more
  // For such a publication, every table it publishes at connect; empty
  // otherwise.
  std::vector<PublishedTable> tables;

  // ALTER PUBLICATION ... DROP TABLE can take any one of its tables out;
  // it cannot for a table covered by FOR ALL TABLES or by its schema.
  bool lists_tables_only() const { return !all_tables && !schemas; }
};

}  // namespace wal
