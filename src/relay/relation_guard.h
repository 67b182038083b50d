#pragma once

// Which relations of the stream are the outbox (ARCHITECTURE.md, "Never skip
// and confirm").
//
// The outbox is known by the OID the catalog gave its configured name when the
// relay connected, not by the name in Relation messages: a rename keeps the
// OID, and the next Relation message carries the new name; a swap (a rename,
// then a new table under the old name) brings another OID under the outbox's
// name. Either means rows no longer go where the configuration says. So does
// a relation that is neither the outbox nor listed in
// outbox.ignore_relations. The guard stops the slot at the first row of such
// a relation, naming both names, the OID and the row's LSN, before anything
// at that position is confirmed.
//
// The verdict waits for a row because a Relation message alone carries none:
// with publish_via_partition_root, pgoutput announces the leaf partition a
// row was written to as well as the root it is published as, and a partition
// attached while the relay runs is announced under its own name and OID.
// Relation messages also carry no LSN of their own (the walsender sends 0/0
// for every message but the last of a change).
//
// Pure: plain data in, verdicts out. One guard per replication session, as
// the server announces every relation again after a reconnect.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "relay/router.h"
#include "wal/catalog.h"
#include "wal/lsn.h"

namespace relay {

// A publication of the relay's own, suggested in place of one that covers
// more than the outbox.
struct OwnPublication {
  std::string name;
  std::string create_sql;  // CREATE PUBLICATION for the outbox alone
};

struct GuardContext {
  std::string slot;         // for messages
  std::string publication;  // for messages and the SQL they suggest
  // What the publication covers beyond the tables it lists, as read at
  // connect.
  wal::PublicationScope scope;
  OwnPublication own_publication;
  // The slot existed at connect: a publication created now would be "not
  // found" for the changes it has yet to send.
  bool slot_exists = false;
};

class RelationGuard {
 public:
  // Resolves outbox.ignore_relations and checks the column mapping against
  // the catalog's columns, reporting every problem at once, so that a
  // missing or mistyped column stops the relay at start-up, not at the
  // first row. Also errc::unmapped_relation when a FOR ALL TABLES or FOR
  // TABLES IN SCHEMA publication covers a table that is neither the outbox
  // nor ignored: its first row would stop the relay, and no ALTER
  // PUBLICATION can take it out.
  static common::Result<RelationGuard> create(const config::OutboxConfig& cfg,
                                              const wal::OutboxRelation& outbox,
                                              GuardContext context);

  // outbox.source: messages. No relation is the outbox: the rows of any
  // relation not listed in outbox.ignore_relations stop the slot.
  static common::Result<RelationGuard> without_table(const config::OutboxConfig& cfg,
                                                     GuardContext context);

  // A Relation message. The relation to bind for routing, or nullopt for
  // any other: its rows are skipped when it is listed in
  // outbox.ignore_relations, and stop the slot otherwise. A partition of the
  // outbox sent under its own name (rows written while the publication
  // lacked publish_via_partition_root) is bound under the outbox's name: its
  // OID proves where it belongs.
  std::optional<RelationDesc> on_relation(RelationDesc relation);

  // A row change at `lsn`: true for the outbox, false for an ignored
  // relation. errc::unmapped_relation for a renamed or swapped outbox or an
  // unlisted relation; errc::unknown_relation for a relation no Relation
  // message announced (pgoutput announces each before its first change in a
  // session).
  common::Result<bool> on_row(wal::RelId relid, wal::Lsn lsn) const;

  wal::RelId outbox_oid() const { return outbox_.oid; }

 private:
  RelationGuard() = default;
  enum class Kind { kOutbox, kIgnored, kUnmapped };
  struct Announced {
    wal::RelId relid = 0;
    Kind kind = Kind::kUnmapped;
    std::string problem;  // kUnmapped: what is wrong, and what to do
    std::string remedy;
  };

  Announced judge(const RelationDesc& relation) const;
  bool is_partition(wal::RelId relid) const;
  bool is_ignored(const QualifiedName& name) const;
  common::Result<void> read_ignored(const config::OutboxConfig& cfg);
  common::Result<void> check_scope() const;
  // What to do about a relation that is neither the outbox nor ignored.
  std::string unlisted_remedy(const QualifiedName& name) const;
  // Replacing a publication that covers more than the outbox.
  std::string own_publication_fix(bool slot_exists) const;
  const char* scope_name() const;

  bool has_table_ = true;
  wal::OutboxRelation outbox_;
  QualifiedName outbox_name_;
  std::vector<QualifiedName> ignored_;
  GuardContext context_;
  // Usually a handful of relations: a vector beats a map.
  std::vector<Announced> announced_;
};

// The outbox as a Relation message would describe it, from the catalog.
RelationDesc relation_desc_of(const wal::OutboxRelation& outbox);

}  // namespace relay
