#include "relay/relation_guard.h"

#include <fmt/format.h>

#include <algorithm>

#include "relay/errc.h"

namespace relay {

namespace {

std::string qualified(const QualifiedName& n) {
  return n.nspname + "." + n.relname;
}

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
    a.remedy = fmt::format(
        "Remove it from the publication (ALTER PUBLICATION \"{}\" DROP TABLE {}), list it in "
        "outbox.ignore_relations to skip its changes, or set outbox.source: both if it is the "
        "outbox table.",
        context_.publication, qualified(name));
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
  a.remedy = fmt::format(
      "Remove it from the publication (ALTER PUBLICATION \"{}\" DROP TABLE {}), or list it in "
      "outbox.ignore_relations to skip its changes.",
      context_.publication, qualified(name));
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
