#include "relay/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "config/names.h"
#include "config/topic_template.h"
#include "relay/column_role.h"
#include "relay/errc.h"
#include "relay/sql_identifier.h"

namespace relay {

namespace {

int find_column(const std::vector<ColumnDesc>& columns, std::string_view name) {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

// ---------------------------------------------------------------------------
// Router: configuration and binding
// ---------------------------------------------------------------------------

common::Result<Router> Router::create(const config::OutboxConfig& cfg) {
  Router r;
  auto table = resolve_table_name(cfg.table, "outbox.table");
  if (!table) return table.error();
  r.nspname_ = std::move(table->nspname);
  r.relname_ = std::move(table->relname);

  const config::OutboxColumns defaults;
  const config::OutboxColumns& c = cfg.columns;
  struct Entry {
    RoleSpec& spec;
    const std::string& configured;
    const char* key;
    bool optional;
  };
  // key, partition and headers are optional only under their default names:
  // a name someone wrote down is a column they expect to exist.
  const Entry entries[] = {
      {r.id_, c.id, "outbox.columns.id", false},
      {r.topic_, c.topic, "outbox.columns.topic", false},
      {r.key_, c.key, "outbox.columns.key", c.key == defaults.key},
      {r.partition_, c.partition, "outbox.columns.partition", c.partition == defaults.partition},
      {r.headers_, c.headers, "outbox.columns.headers", c.headers == defaults.headers},
      {r.payload_, c.payload, "outbox.columns.payload", false},
  };
  for (const Entry& e : entries) {
    auto name = resolve_identifier(e.configured, e.key);
    if (!name) return name.error();
    e.spec = RoleSpec{std::move(*name), e.optional};
  }

  if (cfg.topic_template) {
    auto parts = config::parse_topic_template(*cfg.topic_template);
    if (!parts) {
      return make_error(errc::invalid_config, "outbox.topic_template: " + parts.error().describe());
    }
    std::vector<TemplatePiece> pieces;
    for (const auto& part : *parts) {
      if (part.kind == config::TemplatePart::Kind::kLiteral) {
        pieces.push_back(TemplatePiece{part.text, "", kAbsent});
        continue;
      }
      auto name = resolve_identifier(part.text, "outbox.topic_template placeholder");
      if (!name) return name.error();
      pieces.push_back(TemplatePiece{"", std::move(*name), kAbsent});
    }
    r.topic_template_ = std::move(pieces);
  }

  for (const auto& configured : cfg.header_columns) {
    auto name = resolve_identifier(configured.column, "outbox.header_columns entry");
    if (!name) return name.error();
    std::string header = configured.header.value_or(*name);
    r.header_columns_.push_back(HeaderSpec{std::move(*name), std::move(header)});
  }
  r.null_payload_ = cfg.null_payload;
  return r;
}

void RelayHeaders::append(std::vector<Header>& headers, std::string id, const RowContext& ctx) {
  if (lsn_text_.empty() || commit_lsn_ != ctx.commit_lsn || xid_ != ctx.xid) {
    commit_lsn_ = ctx.commit_lsn;
    xid_ = ctx.xid;
    lsn_text_ = ctx.commit_lsn.to_string();
    xid_text_ = std::to_string(ctx.xid);
  }
  headers.push_back(Header{std::string(kHeaderId), std::move(id)});
  headers.push_back(Header{std::string(kHeaderLsn), lsn_text_});
  headers.push_back(Header{std::string(kHeaderXid), xid_text_});
}

common::Result<QualifiedName> resolve_table_name(std::string_view text, std::string_view what) {
  const size_t dot = find_qualifying_dot(text);
  auto schema = dot == std::string_view::npos
                    ? common::Result<std::string>(std::string(kDefaultSchema))
                    : resolve_identifier(text.substr(0, dot), fmt::format("{}'s schema", what));
  auto relname = resolve_identifier(dot == std::string_view::npos ? text : text.substr(dot + 1),
                                    fmt::format("{}'s name", what));
  if (!schema) return schema.error();
  if (!relname) return relname.error();
  return QualifiedName{std::move(*schema), std::move(*relname)};
}

bool Router::matches(const RelationDesc& relation) const {
  return relation.relname == relname_ && relation.nspname == nspname_;
}

const Router::Binding* Router::find_binding(wal::RelId relid) const {
  for (const auto& b : bindings_) {
    if (b.relid == relid) return &b;
  }
  return nullptr;
}

common::Result<void> Router::bind(const RelationDesc& relation) {
  // A changed relation invalidates the old mapping whether or not the new
  // one works: rows after this Relation message have the new layout.
  std::erase_if(bindings_, [&](const Binding& b) { return b.relid == relation.relid; });

  Binding b;
  b.relid = relation.relid;
  b.table = relation.nspname + "." + relation.relname;
  if (!matches(relation)) {
    return make_error(
        errc::invalid_mapping,
        fmt::format("relation {} is not the outbox table {}.{}", b.table, nspname_, relname_));
  }
  b.columns = relation.columns;

  std::vector<std::string> problems;
  auto type_problem = [&](std::string what, ColumnRole role, const ColumnDesc& col) {
    problems.push_back(fmt::format("{} in relation {} has type {}; a {} column must be {}", what,
                                   b.table, describe_type(col.type_oid), role_name(role),
                                   accepted_types(role)));
  };
  auto seen = std::find_if(seen_optional_.begin(), seen_optional_.end(),
                           [&](const auto& entry) { return entry.first == relation.relid; });
  if (seen == seen_optional_.end()) {
    seen_optional_.emplace_back(relation.relid, std::vector<std::string>{});
    seen = std::prev(seen_optional_.end());
  }
  auto map_role = [&](const RoleSpec& spec, ColumnRole role, int& index) {
    index = find_column(b.columns, spec.column);
    const std::string what =
        fmt::format("outbox column '{}' (mapped as {})", spec.column, role_name(role));
    const bool was_seen =
        std::find(seen->second.begin(), seen->second.end(), spec.column) != seen->second.end();
    if (index == kAbsent) {
      if (!spec.optional) {
        problems.push_back(fmt::format("{} is not in relation {}", what, b.table));
      } else if (was_seen) {
        problems.push_back(fmt::format("{} was dropped from relation {}", what, b.table));
      }
      return;
    }
    if (spec.optional && !was_seen) seen->second.push_back(spec.column);
    if (!role_accepts(role, b.columns[index].type_oid)) type_problem(what, role, b.columns[index]);
  };
  map_role(id_, ColumnRole::kId, b.id);
  // With a template the topic column is not read, unless a placeholder names it.
  if (!topic_template_) map_role(topic_, ColumnRole::kTopic, b.topic);
  map_role(key_, ColumnRole::kKey, b.key);
  map_role(partition_, ColumnRole::kPartition, b.partition);
  map_role(headers_, ColumnRole::kHeaders, b.headers);
  map_role(payload_, ColumnRole::kPayload, b.payload);

  if (topic_template_) {
    b.topic_template = *topic_template_;
    for (auto& piece : b.topic_template) {
      if (piece.column.empty()) continue;
      piece.index = find_column(b.columns, piece.column);
      const std::string what = fmt::format("topic_template placeholder ${{{}}}", piece.column);
      if (piece.index == kAbsent) {
        problems.push_back(fmt::format("{} names column '{}', which is not in relation {}", what,
                                       piece.column, b.table));
      } else if (!role_accepts(ColumnRole::kPlaceholder, b.columns[piece.index].type_oid)) {
        type_problem(what, ColumnRole::kPlaceholder, b.columns[piece.index]);
      }
    }
  }

  for (const auto& [name, header] : header_columns_) {
    const int index = find_column(b.columns, name);
    const std::string what = fmt::format("header column '{}'", name);
    if (index == kAbsent) {
      problems.push_back(fmt::format("{} is not in relation {}", what, b.table));
    } else if (!role_accepts(ColumnRole::kHeaderColumn, b.columns[index].type_oid)) {
      type_problem(what, ColumnRole::kHeaderColumn, b.columns[index]);
    } else {
      b.header_columns.push_back(BoundHeader{index, header});
    }
  }

  if (!problems.empty()) {
    std::string message = std::move(problems.front());
    for (size_t i = 1; i < problems.size(); ++i) message.append("; ").append(problems[i]);
    return make_error(errc::invalid_mapping, std::move(message));
  }
  bindings_.push_back(std::move(b));
  return {};
}

// ---------------------------------------------------------------------------
// Router: rows
// ---------------------------------------------------------------------------

// Reads one tuple into a record. Every step returns errc::bad_row (or the
// codec's errc::out_of_range) for the row's own faults and the codec's other
// codes for values that break the protocol; route() sorts them.
class Router::RowBuilder {
 public:
  RowBuilder(Router& router, const Binding& b, std::span<const RawValue> tuple,
             const RowContext& ctx)
      : router_(router),
        b_(b),
        tuple_(tuple),
        ctx_(ctx),
        header_reader_(router.header_reader_),
        record_(std::move(router.spare_)) {
    record_.topic.clear();
    record_.partition = -1;
    record_.key.reset();
    record_.headers.clear();
    record_.payload.clear();
    record_.null_value = false;
  }

  common::Result<void> build() {
    if (auto r = read_id(); !r) return r;
    if (auto r = read_payload(); !r) return r;
    if (auto r = read_topic(); !r) return r;
    if (auto r = read_key(); !r) return r;
    if (auto r = read_partition(); !r) return r;
    record_.headers.reserve(b_.header_columns.size() + kRelayHeaders + kExpectedRowHeaders);
    if (auto r = read_headers(); !r) return r;
    if (auto r = read_header_columns(); !r) return r;
    add_relay_headers();
    return {};
  }

  OutboxRecord take_record() { return std::move(record_); }

  BadRow take_bad_row(std::string reason) {
    BadRow bad;
    bad.reason = std::move(reason);
    bad.row_id = std::move(row_id_);
    if (column_ != kAbsent) {
      const ColumnDesc& c = b_.columns[column_];
      bad.details = fmt::format("column '{}' of type {}", c.name, describe_type(c.type_oid));
    }
    bad.source_table = b_.table;
    // A row that failed before its topic was read still names one, for the
    // outbox-original-topic header.
    if (!topic_tried_) {
      const int column = column_;
      record_.topic.clear();
      (void)render_topic();
      column_ = column;
    }
    if (topic_named_) bad.original_topic = std::move(record_.topic);
    if (have_payload_) bad.payload = std::move(record_.payload);
    return bad;
  }

 private:
  // outbox-id, outbox-lsn, outbox-xid.
  static constexpr size_t kRelayHeaders = 3;
  // Room for a typical row's own headers before the vector has to grow.
  static constexpr size_t kExpectedRowHeaders = 4;

  // Last, after every step that could make a BadRow out of row_id_.
  void add_relay_headers() {
    router_.relay_headers_.append(record_.headers, std::move(row_id_), ctx_);
  }

  const RawValue& at(int index) {
    column_ = index;
    return tuple_[index];
  }
  const ColumnDesc& column(int index) const { return b_.columns[index]; }

  static common::Error bad(std::string reason) {
    return make_error(errc::bad_row, std::move(reason));
  }

  common::Result<void> read_id() {
    const RawValue& v = at(b_.id);
    if (v.kind == ValueKind::kNull) return bad("id is null");
    return append_text(column(b_.id), v, row_id_);
  }

  common::Result<void> read_payload() {
    const RawValue& v = at(b_.payload);
    if (v.kind == ValueKind::kNull) {
      if (router_.null_payload_ != config::NullPayloadPolicy::kTombstone) {
        return bad("payload is null");
      }
      record_.null_value = true;
      return {};
    }
    if (auto r = append_bytes(column(b_.payload), v, record_.payload); !r) return r;
    have_payload_ = true;
    return {};
  }

  // The topic's text in record_.topic; topic_named_ once it is whole.
  common::Result<void> render_topic() {
    topic_tried_ = true;
    if (b_.topic_template.empty()) {
      const RawValue& v = at(b_.topic);
      if (v.kind == ValueKind::kNull) return bad("topic is null");
      if (auto r = append_text(column(b_.topic), v, record_.topic); !r) return r;
    } else {
      for (const auto& piece : b_.topic_template) {
        if (piece.index == kAbsent) {
          record_.topic += piece.literal;
          continue;
        }
        const RawValue& v = at(piece.index);
        if (v.kind == ValueKind::kNull) {
          return bad(
              fmt::format("topic is null: column '{}' of topic_template is null", piece.column));
        }
        if (auto r = append_text(column(piece.index), v, record_.topic); !r) return r;
      }
      column_ = kAbsent;  // a rendered topic is no one column's fault
    }
    topic_named_ = true;
    return {};
  }

  common::Result<void> read_topic() {
    if (auto r = render_topic(); !r) return r;
    if (record_.topic.empty() || record_.topic != router_.last_valid_topic_) {
      if (auto valid = config::check_topic_name(record_.topic); !valid) {
        return bad(fmt::format("topic {} is not a valid Kafka topic name: {}",
                               quote_value(record_.topic), valid.error().describe()));
      }
      router_.last_valid_topic_ = record_.topic;
    }
    return {};
  }

  common::Result<void> read_key() {
    if (b_.key == kAbsent) return {};
    const RawValue& v = at(b_.key);
    if (v.kind == ValueKind::kNull) return {};
    std::string& key = record_.key.emplace();
    // bytea keys are raw bytes, as a Java producer's byte[] key would be.
    if (column(b_.key).type_oid == pg_type::kBytea) return append_bytes(column(b_.key), v, key);
    return append_text(column(b_.key), v, key);
  }

  common::Result<void> read_partition() {
    if (b_.partition == kAbsent) return {};
    const RawValue& v = at(b_.partition);
    if (v.kind == ValueKind::kNull) return {};  // -1: the partitioner picks by key
    auto p = decode_int32(column(b_.partition), v);
    if (!p) {
      if (p.error().code != errc::out_of_range) return p.error();
      return bad("partition is out of the int32 range: " + p.error().describe());
    }
    if (*p < 0) return bad(fmt::format("partition is negative: {}", *p));
    record_.partition = *p;
    return {};
  }

  common::Result<void> read_headers() {
    if (b_.headers == kAbsent) return {};
    const RawValue& v = at(b_.headers);
    if (v.kind == ValueKind::kNull) return {};
    if (auto r = append_text(column(b_.headers), v, header_reader_.document()); !r) return r;
    return header_reader_.read(record_.headers);
  }

  common::Result<void> read_header_columns() {
    for (const auto& [index, header] : b_.header_columns) {
      const RawValue& v = at(index);
      Header& h = record_.headers.emplace_back();
      h.key = header;
      if (v.kind == ValueKind::kNull) continue;
      if (auto r = append_text(column(index), v, h.value.emplace()); !r) return r;
    }
    return {};
  }

  Router& router_;
  const Binding& b_;
  std::span<const RawValue> tuple_;
  const RowContext& ctx_;
  JsonHeaderReader& header_reader_;
  OutboxRecord record_;
  std::string row_id_;
  int column_ = kAbsent;  // the column being read, for BadRow::details
  bool topic_tried_ = false;
  bool topic_named_ = false;
  bool have_payload_ = false;
};

namespace {

// pgoutput sends 'u' only in an UPDATE's new tuple, for a TOASTed column the
// UPDATE left alone; in an INSERT every column has a value or is null.
common::Result<void> check_tuple(std::string_view table, const std::vector<ColumnDesc>& columns,
                                 std::span<const RawValue> tuple, const RowContext& ctx) {
  if (tuple.size() != columns.size()) {
    return make_error(errc::protocol_violation,
                      fmt::format("Insert into {} at lsn={} has {} columns, its Relation message "
                                  "has {}",
                                  table, ctx.lsn.to_string(), tuple.size(), columns.size()));
  }
  for (size_t i = 0; i < tuple.size(); ++i) {
    switch (tuple[i].kind) {
      case ValueKind::kNull:
      case ValueKind::kText:
      case ValueKind::kBinary:
        continue;
      case ValueKind::kUnchanged:
        return make_error(errc::protocol_violation,
                          fmt::format("Insert into {} at lsn={}: column '{}' is unchanged TOAST "
                                      "('u'), which only an UPDATE may send",
                                      table, ctx.lsn.to_string(), columns[i].name));
    }
    const char kind = static_cast<char>(tuple[i].kind);
    return make_error(errc::protocol_violation,
                      fmt::format("Insert into {} at lsn={}: column '{}' has kind {}, expected "
                                  "'n', 't' or 'b'",
                                  table, ctx.lsn.to_string(), columns[i].name,
                                  quote_value(std::string_view(&kind, 1))));
  }
  return {};
}

}  // namespace

common::Result<RouteOutcome> Router::route(wal::RelId relid, std::span<const RawValue> tuple,
                                           const RowContext& ctx) {
  const Binding* b = find_binding(relid);
  if (b == nullptr) {
    return make_error(errc::unknown_relation,
                      fmt::format("Insert at lsn={} for relation OID {}, which no Relation "
                                  "message bound",
                                  ctx.lsn.to_string(), relid));
  }
  if (auto shape = check_tuple(b->table, b->columns, tuple, ctx); !shape) return shape.error();

  RowBuilder builder(*this, *b, tuple, ctx);
  auto built = builder.build();
  if (built) return RouteOutcome{builder.take_record()};
  const common::Error& e = built.error();
  if (e.code == errc::bad_row || e.code == errc::out_of_range) {
    return RouteOutcome{builder.take_bad_row(e.message)};
  }
  return common::Error{e.code, fmt::format("Insert into {} at lsn={}: {}", b->table,
                                           ctx.lsn.to_string(), e.describe())};
}

OutboxRecord Router::dead_letter(const BadRow& bad, const RowContext& ctx,
                                 const std::string& dlq_topic) {
  OutboxRecord r;
  r.topic = dlq_topic;
  // Keyed by the row id so that every attempt at one row lands in one
  // partition of the dead-letter topic.
  if (!bad.row_id.empty()) r.key = bad.row_id;
  if (bad.payload) r.payload = *bad.payload;
  r.headers.reserve(6);
  r.headers.push_back(Header{std::string(kHeaderId),
                             bad.row_id.empty() ? std::nullopt : std::optional(bad.row_id)});
  r.headers.push_back(Header{std::string(kHeaderLsn), ctx.commit_lsn.to_string()});
  r.headers.push_back(Header{std::string(kHeaderXid), std::to_string(ctx.xid)});
  r.headers.push_back(Header{std::string(kHeaderError), bad.reason});
  if (bad.message_prefix) {
    r.headers.push_back(Header{std::string(kHeaderMessagePrefix), *bad.message_prefix});
  } else {
    r.headers.push_back(Header{std::string(kHeaderSourceTable), bad.source_table});
  }
  r.headers.push_back(Header{std::string(kHeaderOriginalTopic), bad.original_topic});
  return r;
}

}  // namespace relay
