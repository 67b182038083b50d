#include "relay/router.h"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "config/names.h"
#include "config/topic_template.h"
#include "relay/errc.h"

namespace relay {

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

namespace {

// An unqualified outbox.table lives here, as in the schema in sql/.
constexpr std::string_view kDefaultSchema = "public";

// One SQL identifier, the way the parser reads it: "quoted" is taken as
// written (with "" for a quote), anything else is folded to lower case. Only
// ASCII letters fold, as downcase_identifier() does in multibyte encodings.
common::Result<std::string> resolve_identifier(std::string_view text, std::string_view what) {
  if (text.empty()) return make_error(errc::invalid_config, fmt::format("{} is empty", what));
  if (text.front() != '"') {
    std::string folded(text);
    for (char& c : folded) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return folded;
  }
  std::string name;
  for (size_t i = 1; i < text.size(); ++i) {
    if (text[i] != '"') {
      name += text[i];
    } else if (i + 1 < text.size() && text[i + 1] == '"') {
      name += '"';
      ++i;
    } else if (i + 1 == text.size() && !name.empty()) {
      return name;
    } else {
      break;
    }
  }
  return make_error(errc::invalid_config,
                    fmt::format("{} {} is not a valid quoted identifier", what, quote_value(text)));
}

// Splits "schema.table" at the dot that is outside double quotes.
size_t find_qualifying_dot(std::string_view name) {
  bool quoted = false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '"') quoted = !quoted;
    if (name[i] == '.' && !quoted) return i;
  }
  return std::string_view::npos;
}

// ---------------------------------------------------------------------------
// Roles: which column types each mapped column may have
// ---------------------------------------------------------------------------

enum class Role { kId, kTopic, kKey, kPartition, kHeaders, kPayload, kHeaderColumn, kPlaceholder };

bool is_text_like(wal::Oid t) {
  return t == pg_type::kText || t == pg_type::kVarchar || t == pg_type::kBpchar ||
         t == pg_type::kName;
}

bool is_integer(wal::Oid t) {
  return t == pg_type::kInt2 || t == pg_type::kInt4 || t == pg_type::kInt8;
}

bool is_json(wal::Oid t) {
  return t == pg_type::kJson || t == pg_type::kJsonb;
}

bool accepts(Role role, wal::Oid t) {
  switch (role) {
    case Role::kId:
    case Role::kPlaceholder:
      return is_text_like(t) || t == pg_type::kUuid || is_integer(t);
    case Role::kTopic:
      return is_text_like(t);
    case Role::kKey:
      return is_text_like(t) || t == pg_type::kUuid || is_integer(t) || t == pg_type::kBytea;
    case Role::kPartition:
      return is_integer(t);
    case Role::kHeaders:
      // text too: a hand-made outbox may keep its headers JSON in a text column.
      return is_json(t) || t == pg_type::kText || t == pg_type::kVarchar;
    case Role::kPayload:
      return t == pg_type::kBytea || t == pg_type::kText || t == pg_type::kVarchar || is_json(t);
    case Role::kHeaderColumn:
      return can_decode(t, ValueForm::kText);
  }
  return false;
}

std::string_view accepted_types(Role role) {
  switch (role) {
    case Role::kId:
    case Role::kPlaceholder:
      return "text, varchar, bpchar, name, uuid, int2, int4 or int8";
    case Role::kTopic:
      return "text, varchar, bpchar or name";
    case Role::kKey:
      return "text, varchar, bpchar, name, uuid, int2, int4, int8 or bytea";
    case Role::kPartition:
      return "int2, int4 or int8";
    case Role::kHeaders:
      return "json, jsonb, text or varchar";
    case Role::kPayload:
      return "bytea, text, varchar, json or jsonb";
    case Role::kHeaderColumn:
      return "text, varchar, bpchar, name, json, jsonb, uuid, int2, int4 or int8";
  }
  return "";
}

std::string_view role_name(Role role) {
  switch (role) {
    case Role::kId:
      return "id";
    case Role::kTopic:
      return "topic";
    case Role::kKey:
      return "key";
    case Role::kPartition:
      return "partition";
    case Role::kHeaders:
      return "headers";
    case Role::kPayload:
      return "payload";
    case Role::kHeaderColumn:
      return "header column";
    case Role::kPlaceholder:
      return "topic_template placeholder";
  }
  return "";
}

int find_column(const std::vector<ColumnDesc>& columns, std::string_view name) {
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

// ---------------------------------------------------------------------------
// Headers JSON
//
// Two shapes, read in document order:
//   {"k": "v", "n": null, "x": 1.50, "o": {"a": [1]}}
//   [{"key": "k", "value": "v"}, {"key": "n", "value": null}, {"key": "n"}]
// A string value is the header value as is; null is a null header value;
// numbers, booleans, objects and arrays become their minified JSON text.
//
// simdjson's On-Demand API, because it leaves numbers as written: the DOM
// API re-prints them from a double (1.50 becomes 1.5, 0.1000000000000000000001
// becomes 0.1) and refuses integers beyond 64 bits, which jsonb stores
// exactly. On-Demand validates what it reads, not what it skips, so every
// value is read (numbers against the RFC 8259 grammar, which simdjson does
// not check for a token it only hands back), and trailing content is checked
// at the end.
// ---------------------------------------------------------------------------

namespace sj = simdjson::ondemand;

constexpr std::string_view kNotHeaders = "headers is not a JSON object or [{key,value}] array: ";

common::Error not_headers(std::string_view why) {
  return make_error(errc::bad_row, fmt::format("{}{}", kNotHeaders, why));
}

common::Error not_headers(simdjson::error_code e) {
  return not_headers(simdjson::error_message(e));
}

std::string_view json_type_name(sj::json_type t) {
  switch (t) {
    case sj::json_type::array:
      return "an array";
    case sj::json_type::object:
      return "an object";
    case sj::json_type::number:
      return "a number";
    case sj::json_type::string:
      return "a string";
    case sj::json_type::boolean:
      return "a boolean";
    case sj::json_type::null:
      return "null";
  }
  return "an unknown JSON type";
}

// RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
bool is_json_number(std::string_view s) {
  size_t i = 0;
  auto digit = [&](size_t j) { return j < s.size() && s[j] >= '0' && s[j] <= '9'; };
  auto digits = [&] {
    if (!digit(i)) return false;
    while (digit(i)) ++i;
    return true;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digit(i)) return false;
  if (s[i] == '0') {
    ++i;
  } else {
    digits();
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

// A scalar's raw token runs up to the next token, whitespace included.
std::string_view trim_json_whitespace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Escapes what JSON requires, as PostgreSQL's escape_json() does; UTF-8
// passes through.
void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Writes `v` as minified JSON, reading (and so validating) every part of it.
simdjson::error_code write_minified(sj::value v, std::string& out) {
  sj::json_type type;
  if (auto e = v.type().get(type)) return e;
  switch (type) {
    case sj::json_type::object: {
      sj::object object;
      if (auto e = v.get_object().get(object)) return e;
      out += '{';
      bool first = true;
      for (auto field_or : object) {
        sj::field field;
        std::string_view key;
        if (auto e = std::move(field_or).get(field)) return e;
        if (auto e = field.unescaped_key().get(key)) return e;
        if (!first) out += ',';
        first = false;
        append_json_string(out, key);
        out += ':';
        if (auto e = write_minified(field.value(), out)) return e;
      }
      out += '}';
      return simdjson::SUCCESS;
    }
    case sj::json_type::array: {
      sj::array array;
      if (auto e = v.get_array().get(array)) return e;
      out += '[';
      bool first = true;
      for (auto element_or : array) {
        sj::value element;
        if (auto e = std::move(element_or).get(element)) return e;
        if (!first) out += ',';
        first = false;
        if (auto e = write_minified(element, out)) return e;
      }
      out += ']';
      return simdjson::SUCCESS;
    }
    case sj::json_type::string: {
      std::string_view s;
      if (auto e = v.get_string().get(s)) return e;
      append_json_string(out, s);
      return simdjson::SUCCESS;
    }
    case sj::json_type::number: {
      const std::string_view raw = trim_json_whitespace(v.raw_json_token());
      if (!is_json_number(raw)) return simdjson::NUMBER_ERROR;
      out += raw;
      return simdjson::SUCCESS;
    }
    case sj::json_type::boolean: {
      bool b = false;
      if (auto e = v.get_bool().get(b)) return e;
      out += b ? "true" : "false";
      return simdjson::SUCCESS;
    }
    case sj::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      if (!is_null) return simdjson::N_ATOM_ERROR;
      out += "null";
      return simdjson::SUCCESS;
    }
  }
  return simdjson::INCORRECT_TYPE;
}

common::Result<void> read_header_value(sj::value v, std::optional<std::string>& out) {
  sj::json_type type;
  if (auto e = v.type().get(type)) return not_headers(e);
  if (type == sj::json_type::string) {
    std::string_view s;
    if (auto e = v.get_string().get(s)) return not_headers(e);
    out.emplace(s);
    return {};
  }
  if (type == sj::json_type::null) {
    bool is_null = false;
    if (auto e = v.is_null().get(is_null)) return not_headers(e);
    if (!is_null) return not_headers(simdjson::N_ATOM_ERROR);
    out.reset();
    return {};
  }
  out.emplace();
  if (auto e = write_minified(v, *out)) return not_headers(e);
  return {};
}

common::Result<void> read_header_object(sj::object object, std::vector<Header>& out) {
  for (auto field_or : object) {
    sj::field field;
    std::string_view key;
    if (auto e = std::move(field_or).get(field)) return not_headers(e);
    if (auto e = field.unescaped_key().get(key)) return not_headers(e);
    Header& h = out.emplace_back();
    h.key.assign(key);
    if (auto r = read_header_value(field.value(), h.value); !r) return r;
  }
  return {};
}

// One {"key": "...", "value": ...} element; a missing value is a null one.
common::Result<void> read_header_element(sj::value element, size_t index, Header& h) {
  sj::json_type type;
  if (auto e = element.type().get(type)) return not_headers(e);
  sj::object object;
  if (type != sj::json_type::object || element.get_object().get(object)) {
    return not_headers(fmt::format("element {} is {}, expected {{\"key\": ..., \"value\": ...}}",
                                   index, json_type_name(type)));
  }
  bool have_key = false;
  bool have_value = false;
  for (auto field_or : object) {
    sj::field field;
    std::string_view name;
    if (auto e = std::move(field_or).get(field)) return not_headers(e);
    if (auto e = field.unescaped_key().get(name)) return not_headers(e);
    if (name == "key") {
      sj::json_type key_type;
      std::string_view key;
      if (auto e = field.value().type().get(key_type)) return not_headers(e);
      if (have_key || key_type != sj::json_type::string) {
        return not_headers(fmt::format("element {} has {} \"key\"", index,
                                       have_key ? "more than one" : "a non-string"));
      }
      if (auto e = field.value().get_string().get(key)) return not_headers(e);
      h.key.assign(key);
      have_key = true;
    } else if (name == "value") {
      if (have_value)
        return not_headers(fmt::format("element {} has more than one \"value\"", index));
      if (auto r = read_header_value(field.value(), h.value); !r) return r;
      have_value = true;
    } else {
      std::string quoted;
      append_json_string(quoted, name);
      return not_headers(fmt::format(
          "element {} has member {}, expected only \"key\" and \"value\"", index, quoted));
    }
  }
  if (!have_key) return not_headers(fmt::format("element {} has no \"key\"", index));
  return {};
}

common::Result<void> read_header_array(sj::array array, std::vector<Header>& out) {
  size_t index = 0;
  for (auto element_or : array) {
    sj::value element;
    if (auto e = std::move(element_or).get(element)) return not_headers(e);
    if (auto r = read_header_element(element, index, out.emplace_back()); !r) return r;
    ++index;
  }
  return {};
}

}  // namespace

struct JsonScratch::State {
  sj::parser parser;
  // The document, then SIMDJSON_PADDING bytes: simdjson reads ahead in
  // blocks and needs them readable.
  std::string buffer;
};

JsonScratch::JsonScratch() = default;
JsonScratch::~JsonScratch() = default;
JsonScratch::JsonScratch(const JsonScratch&) {}
JsonScratch& JsonScratch::operator=(const JsonScratch&) {
  return *this;
}
JsonScratch::JsonScratch(JsonScratch&&) noexcept = default;
JsonScratch& JsonScratch::operator=(JsonScratch&&) noexcept = default;

JsonScratch::State& JsonScratch::state() {
  if (!state_) state_ = std::make_unique<State>();
  return *state_;
}

namespace {

// Parses the headers document held in state.buffer (length bytes, then
// padding) and appends its headers to `out`.
common::Result<void> parse_headers(JsonScratch::State& state, size_t length,
                                   std::vector<Header>& out) {
  sj::document doc;
  const simdjson::padded_string_view input(state.buffer.data(), length, state.buffer.size());
  if (auto e = state.parser.iterate(input).get(doc)) return not_headers(e);
  sj::json_type type;
  if (auto e = doc.type().get(type)) return not_headers(e);
  common::Result<void> read;
  if (type == sj::json_type::object) {
    sj::object object;
    if (auto e = doc.get_object().get(object)) return not_headers(e);
    read = read_header_object(object, out);
  } else if (type == sj::json_type::array) {
    sj::array array;
    if (auto e = doc.get_array().get(array)) return not_headers(e);
    read = read_header_array(array, out);
  } else {
    return not_headers(fmt::format("the document is {}", json_type_name(type)));
  }
  if (!read) return read;
  // In bounds after the root value means a token follows it: `{} x`, `{}}`.
  if (!doc.current_location().error()) return not_headers(simdjson::TRAILING_CONTENT);
  return {};
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
    auto name = resolve_identifier(configured, "outbox.header_columns entry");
    if (!name) return name.error();
    r.header_columns_.push_back(std::move(*name));
  }
  return r;
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
  auto type_problem = [&](std::string what, Role role, const ColumnDesc& col) {
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
  auto map_role = [&](const RoleSpec& spec, Role role, int& index) {
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
    if (!accepts(role, b.columns[index].type_oid)) type_problem(what, role, b.columns[index]);
  };
  map_role(id_, Role::kId, b.id);
  // With a template the topic column is not read, unless a placeholder names it.
  if (!topic_template_) map_role(topic_, Role::kTopic, b.topic);
  map_role(key_, Role::kKey, b.key);
  map_role(partition_, Role::kPartition, b.partition);
  map_role(headers_, Role::kHeaders, b.headers);
  map_role(payload_, Role::kPayload, b.payload);

  if (topic_template_) {
    b.topic_template = *topic_template_;
    for (auto& piece : b.topic_template) {
      if (piece.column.empty()) continue;
      piece.index = find_column(b.columns, piece.column);
      const std::string what = fmt::format("topic_template placeholder ${{{}}}", piece.column);
      if (piece.index == kAbsent) {
        problems.push_back(fmt::format("{} names column '{}', which is not in relation {}", what,
                                       piece.column, b.table));
      } else if (!accepts(Role::kPlaceholder, b.columns[piece.index].type_oid)) {
        type_problem(what, Role::kPlaceholder, b.columns[piece.index]);
      }
    }
  }

  for (const auto& name : header_columns_) {
    const int index = find_column(b.columns, name);
    const std::string what = fmt::format("header column '{}'", name);
    if (index == kAbsent) {
      problems.push_back(fmt::format("{} is not in relation {}", what, b.table));
    } else if (!accepts(Role::kHeaderColumn, b.columns[index].type_oid)) {
      type_problem(what, Role::kHeaderColumn, b.columns[index]);
    } else {
      b.header_columns.push_back(index);
    }
  }

  if (!problems.empty()) {
    return make_error(errc::invalid_mapping, fmt::format("{}", fmt::join(problems, "; ")));
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
      : router_(router), b_(b), tuple_(tuple), ctx_(ctx), json_(router.json_.state()) {}

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
    if (have_topic_) bad.original_topic = std::move(record_.topic);
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
    if (router_.cached_lsn_text_.empty() || router_.cached_commit_lsn_ != ctx_.commit_lsn ||
        router_.cached_xid_ != ctx_.xid) {
      router_.cached_commit_lsn_ = ctx_.commit_lsn;
      router_.cached_xid_ = ctx_.xid;
      router_.cached_lsn_text_ = ctx_.commit_lsn.to_string();
      router_.cached_xid_text_ = std::to_string(ctx_.xid);
    }
    record_.headers.push_back(Header{std::string(kHeaderId), std::move(row_id_)});
    record_.headers.push_back(Header{std::string(kHeaderLsn), router_.cached_lsn_text_});
    record_.headers.push_back(Header{std::string(kHeaderXid), router_.cached_xid_text_});
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
    if (v.kind == ValueKind::kNull) return bad("payload is null");
    if (auto r = append_bytes(column(b_.payload), v, record_.payload); !r) return r;
    have_payload_ = true;
    return {};
  }

  common::Result<void> read_topic() {
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
    if (record_.topic.empty() || record_.topic != router_.last_valid_topic_) {
      if (auto valid = config::check_topic_name(record_.topic); !valid) {
        return bad(fmt::format("topic {} is not a valid Kafka topic name: {}",
                               quote_value(record_.topic), valid.error().describe()));
      }
      router_.last_valid_topic_ = record_.topic;
    }
    have_topic_ = true;
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
    json_.buffer.clear();
    if (auto r = append_text(column(b_.headers), v, json_.buffer); !r) return r;
    const size_t length = json_.buffer.size();
    json_.buffer.append(simdjson::SIMDJSON_PADDING, '\0');
    return parse_headers(json_, length, record_.headers);
  }

  common::Result<void> read_header_columns() {
    for (int index : b_.header_columns) {
      const RawValue& v = at(index);
      Header& h = record_.headers.emplace_back();
      h.key = column(index).name;
      if (v.kind == ValueKind::kNull) continue;
      if (auto r = append_text(column(index), v, h.value.emplace()); !r) return r;
    }
    return {};
  }

  Router& router_;
  const Binding& b_;
  std::span<const RawValue> tuple_;
  const RowContext& ctx_;
  JsonScratch::State& json_;
  OutboxRecord record_;
  std::string row_id_;
  int column_ = kAbsent;  // the column being read, for BadRow::details
  bool have_topic_ = false;
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
  r.headers.push_back(Header{std::string(kHeaderSourceTable), bad.source_table});
  if (bad.original_topic) {
    r.headers.push_back(Header{std::string(kHeaderOriginalTopic), *bad.original_topic});
  }
  return r;
}

}  // namespace relay
