#include "relay/relation_guard.h"

#include <fmt/format.h>

#include <algorithm>

#include "relay/errc.h"
#include "relay/sql_identifier.h"

namespace relay {

namespace {

std::string qualified(const QualifiedName& n) {
  return n.nspname + "." + n.relname;
}

// As outbox.ignore_relations reads it back.
std::string ignore_entry(const QualifiedName& n) {
  return spell_identifier(n.nspname) + "." + spell_identifier(n.relname);
}

// At most this many tables are named in a refusal, then a count.
constexpr size_t kTablesNamed = 5;

}  // namespace

RelationDesc relation_desc_of(const wal::OutboxRelation& outbox) {
  RelationDesc d;
  d.relid = outbox.oid;
  d.nspname = outbox.nspname;
  d.relname = outbox.relname;
  d.columns.reserve(outbox.columns.size());
  for (const auto& c : outbox.columns) {
    d.columns.push_back(ColumnDesc{c.name, c.type_oid, c.type_modifier});
  }
  return d;
}

common::Result<RelationGuard> RelationGuard::create(const config::OutboxConfig& cfg,
                                                    const wal::OutboxRelation& outbox,
                                                    GuardContext context) {
  RelationGuard g;
  g.outbox_ = outbox;
  g.outbox_name_ = QualifiedName{outbox.nspname, outbox.relname};
  g.context_ = std::move(context);
  if (auto r = g.read_ignored(cfg); !r) return r.error();
  if (auto r = g.check_scope(); !r) return r.error();
  // A router of its own: bind() remembers the optional columns it has seen,
  // which is the stream's business, not the catalog's.
  auto router = Router::create(cfg);
  if (!router) return router.error();
  if (auto bound = router->bind(relation_desc_of(outbox)); !bound) {
    return make_error(errc::invalid_mapping,
                      fmt::format("slot={} outbox table {} (oid {}) does not fit the configured "
                                  "mapping (outbox.columns, topic_template, header_columns): {}",
                                  g.context_.slot, outbox.qualified_name(), outbox.oid,
                                  bound.error().describe()));
  }
  return g;
}

common::Result<RelationGuard> RelationGuard::without_table(const config::OutboxConfig& cfg,
                                                           GuardContext context) {
  RelationGuard g;
  g.has_table_ = false;
  g.context_ = std::move(context);
  if (auto r = g.read_ignored(cfg); !r) return r.error();
  if (auto r = g.check_scope(); !r) return r.error();
  return g;
}

common::Result<void> RelationGuard::read_ignored(const config::OutboxConfig& cfg) {
  for (const auto& text : cfg.ignore_relations) {
    auto name = resolve_table_name(text, "outbox.ignore_relations entry");
    if (!name) return name.error();
    ignored_.push_back(std::move(*name));
  }
  return {};
}

// Refused at connect, before the slot is created: nothing is streamed, so
// nothing is confirmed.
common::Result<void> RelationGuard::check_scope() const {
  if (context_.scope.lists_tables_only()) return {};
  std::vector<std::string> others;
  for (const wal::PublishedTable& t : context_.scope.tables) {
    if (has_table_ && (t.oid == outbox_.oid || is_partition(t.oid))) continue;
    if (is_ignored(QualifiedName{t.nspname, t.relname})) continue;
    others.push_back(ignore_entry(QualifiedName{t.nspname, t.relname}));
  }
  if (others.empty()) return {};
  std::string named;
  for (size_t i = 0; i < others.size() && i < kTablesNamed; ++i) {
    named += (i ? ", " : "") + others[i];
  }
  if (others.size() > kTablesNamed) {
    named += fmt::format(", and {} more", others.size() - kTablesNamed);
  }
  const std::string besides =
      has_table_ ? fmt::format("beside the outbox table {} that {} not listed in "
                               "outbox.ignore_relations",
                               qualified(outbox_name_), others.size() == 1 ? "is" : "are")
                 : std::string("not listed in outbox.ignore_relations, while outbox.source is "
                               "messages (no table's rows are events)");
  return make_error(
      errc::unmapped_relation,
      fmt::format("slot={} publication \"{}\" is {} and publishes {} table{} {} ({}): the first "
                  "row of any of them would stop the relay, and ALTER PUBLICATION cannot take "
                  "one table out of a {} publication. To stream {} alone, {}. Or list them in "
                  "outbox.ignore_relations to skip their changes",
                  context_.slot, context_.publication, scope_name(), others.size(),
                  others.size() == 1 ? "" : "s", besides, named, scope_name(),
                  has_table_ ? "the outbox" : "the messages",
                  own_publication_fix(context_.slot_exists)));
}

const char* RelationGuard::scope_name() const {
  return context_.scope.all_tables ? "FOR ALL TABLES" : "FOR TABLES IN SCHEMA";
}

std::string RelationGuard::own_publication_fix(bool slot_exists) const {
  const OwnPublication& own = context_.own_publication;
  std::string fix = fmt::format("give the relay a publication of its own: {}; then set "
                                "postgres.publication: {}",
                                own.create_sql, spell_identifier(own.name));
  if (slot_exists) {
    fix += fmt::format(
        ", and postgres.slot to a new name: slot \"{}\" exists already, and decoding reads the "
        "catalog as of each change, so a publication created now is \"not found\" for the "
        "changes that slot has yet to send. The relay creates the new slot after the "
        "publication, and streams nothing committed before it "
        "(docs/migrate-from-debezium.md, \"Or start from a fresh slot\", overlaps the two); "
        "drop slot \"{}\" once nothing reads it",
        context_.slot, context_.slot);
  }
  return fix;
}

// Decoding reads the publication as of each change: ALTER PUBLICATION ...
// DROP TABLE stops the rows written after it, not those already in the slot,
// and the relay would stop at the same row again. Listing the table skips
// them all.
std::string RelationGuard::unlisted_remedy(const QualifiedName& name) const {
  std::string remedy = fmt::format(
      "List it in outbox.ignore_relations ({}) to skip its changes, then restart", ignore_entry(name));
  if (context_.scope.lists_tables_only()) {
    remedy += fmt::format(
        "; to have the server stop sending them, also remove it from the publication (ALTER "
        "PUBLICATION {} DROP TABLE {}.{}), which alone does not help: the rows already written "
        "are decoded under the publication as it was when they were written",
        quote_identifier(context_.publication), quote_identifier(name.nspname),
        quote_identifier(name.relname));
  } else {
    remedy += fmt::format(
        ". Publication \"{}\" is {}, so ALTER PUBLICATION cannot take the table out; to stream "
        "{} alone, {}",
        context_.publication, scope_name(), has_table_ ? "the outbox" : "the messages",
        own_publication_fix(true));
  }
  return remedy + ".";
}

bool RelationGuard::is_partition(wal::RelId relid) const {
  return std::find(outbox_.partitions.begin(), outbox_.partitions.end(), relid) !=
         outbox_.partitions.end();
}

bool RelationGuard::is_ignored(const QualifiedName& name) const {
  return std::find(ignored_.begin(), ignored_.end(), name) != ignored_.end();
}

RelationGuard::Announced RelationGuard::judge(const RelationDesc& relation) const {
  const QualifiedName name{relation.nspname, relation.relname};
  Announced a{relation.relid, Kind::kUnmapped, "", ""};
  if (!has_table_) {
    if (is_ignored(name)) {
      a.kind = Kind::kIgnored;
      return a;
    }
    a.problem = fmt::format(
        "relation {} (oid {}) is in publication \"{}\", but outbox.source is messages: no "
        "table's rows are events",
        qualified(name), relation.relid, context_.publication);
    a.remedy = unlisted_remedy(name) + " If it is the outbox table, set outbox.source: both.";
    return a;
  }
  if (relation.relid == outbox_.oid) {
    if (name == outbox_name_) {
      a.kind = Kind::kOutbox;
      return a;
    }
    a.problem = fmt::format("outbox table renamed from {} to {} (oid {})", qualified(outbox_name_),
                            qualified(name), relation.relid);
    a.remedy = fmt::format(
        "If the rename is meant, set outbox.table: {} and restart. If the application now writes "
        "to a new table named {}, its rows are not in the stream unless that table is in "
        "publication \"{}\"",
        qualified(name), qualified(outbox_name_), context_.publication);
    return a;
  }
  if (is_partition(relation.relid)) {
    a.kind = Kind::kOutbox;
    return a;
  }
  if (name == outbox_name_) {
    a.problem = fmt::format(
        "relation {} is oid {}, not the outbox's oid {}: the outbox table was swapped (renamed, "
        "and a new table created under its name)",
        qualified(name), relation.relid, outbox_.oid);
    a.remedy = fmt::format(
        "Find where oid {} went (SELECT {}::regclass) and whether rows were written to it; "
        "restart the relay to stream the table now named {}",
        outbox_.oid, outbox_.oid, qualified(name));
    return a;
  }
  if (is_ignored(name)) {
    a.kind = Kind::kIgnored;
    return a;
  }
  a.problem = fmt::format(
      "relation {} (oid {}) is in publication \"{}\" but is not the outbox table {} (oid {})",
      qualified(name), relation.relid, context_.publication, qualified(outbox_name_), outbox_.oid);
  a.remedy = unlisted_remedy(name);
  if (outbox_.relkind == wal::OutboxRelation::kPartitioned) {
    a.remedy += fmt::format(
        " If it is a partition of the outbox, publication \"{}\" must have "
        "publish_via_partition_root = true.",
        context_.publication);
  }
  return a;
}

std::optional<RelationDesc> RelationGuard::on_relation(RelationDesc relation) {
  Announced verdict = judge(relation);
  const Kind kind = verdict.kind;
  auto it = std::find_if(announced_.begin(), announced_.end(),
                         [&](const Announced& a) { return a.relid == relation.relid; });
  if (it == announced_.end()) {
    announced_.push_back(std::move(verdict));
  } else {
    *it = std::move(verdict);
  }
  if (kind != Kind::kOutbox) return std::nullopt;
  relation.nspname = outbox_name_.nspname;
  relation.relname = outbox_name_.relname;
  return relation;
}

common::Result<bool> RelationGuard::on_row(wal::RelId relid, wal::Lsn lsn) const {
  for (const Announced& a : announced_) {
    if (a.relid != relid) continue;
    if (a.kind != Kind::kUnmapped) return a.kind == Kind::kOutbox;
    return make_error(errc::unmapped_relation,
                      fmt::format("slot={} {}; its first row is at lsn={}, and nothing at or "
                                  "after it is confirmed. {}",
                                  context_.slot, a.problem, lsn.to_string(), a.remedy));
  }
  return make_error(errc::unknown_relation,
                    fmt::format("slot={} row change for relation oid {} at lsn={}, which no "
                                "Relation message announced; the stream is not what the relay "
                                "can read, and nothing at or after it is confirmed",
                                context_.slot, relid, lsn.to_string()));
}

}  // namespace relay
