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

}  // namespace wal
