#include "config/yaml_reader.h"

#include <algorithm>
#include <tuple>

#include "config/env_expand.h"
#include "config/suggest.h"
#include "config/units.h"

namespace config {
namespace {

// Long enough to recognise a value, short enough for one terminal line.
constexpr size_t kMaxQuotedValue = 64;

std::string quote_value(std::string_view text) {
  if (text.size() <= kMaxQuotedValue) return "'" + std::string(text) + "'";
  return "'" + std::string(text.substr(0, kMaxQuotedValue)) + "...'";
}

std::string join(std::span<const std::string_view> words) {
  std::string out;
  for (std::string_view word : words) {
    if (!out.empty()) out += ", ";
    out += word;
  }
  return out;
}

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : parent + "." + std::string(key);
}

// The scalar text of `field`, ${VAR}-expanded unless kVerbatim; anything
// but a scalar is reported as not being `expected`.
std::optional<std::string> scalar_text(Context& ctx, const Field& field, std::string_view expected,
                                       Expand expand) {
  if (!field.value.IsScalar()) {
    report(ctx, field, "expected " + std::string(expected) + ", got " + kind_of(field.value));
    return std::nullopt;
  }
  if (expand == Expand::kVerbatim) return field.value.Scalar();
  Expansion expanded = expand_env(field.value.Scalar(), ctx.env());
  for (const std::string& error : expanded.errors) report(ctx, field, error);
  if (!expanded.errors.empty()) return std::nullopt;
  return std::move(expanded.value);
}

// Runs `parse` on the field's text, reporting its error with the text.
template <typename T, typename Parse>
std::optional<T> read_parsed(Context& ctx, const Field& field, std::string_view expected,
                             Parse parse) {
  auto text = scalar_text(ctx, field, expected, Expand::kEnvironment);
  if (!text) return std::nullopt;
  auto parsed = parse(*text);
  if (!parsed) {
    report_value(ctx, field, parsed.error().message, *text);
    return std::nullopt;
  }
  return *parsed;
}

}  // namespace

Position position_of(const YAML::Mark& mark) {
  if (mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

void Context::error(Position where, std::string message) {
  diagnostics_.push_back(Diagnostic{file_, where.line, where.column, std::move(message)});
}

std::vector<Diagnostic> Context::take_sorted() {
  std::stable_sort(diagnostics_.begin(), diagnostics_.end(),
                   [](const Diagnostic& a, const Diagnostic& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
  return std::move(diagnostics_);
}

Position Field::at() const {
  if (!value.IsDefined() || value.IsNull()) return key_at;
  const Position here = position_of(value.Mark());
  return here.line > 0 ? here : key_at;
}

void report(Context& ctx, const Field& field, std::string_view problem) {
  ctx.error(field.at(), field.path + ": " + std::string(problem));
}

void report_value(Context& ctx, const Field& field, std::string_view problem,
                  std::string_view text) {
  report(ctx, field, std::string(problem) + ", got " + quote_value(text));
}

std::string kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "null";
  }
  return "an unknown node";
}

std::optional<std::string> read_string(Context& ctx, const Field& field, Expand expand) {
  return scalar_text(ctx, field, "a string", expand);
}

std::optional<bool> read_bool(Context& ctx, const Field& field) {
  return read_parsed<bool>(ctx, field, "a boolean (true or false)", parse_bool);
}

std::optional<int64_t> read_integer(Context& ctx, const Field& field) {
  return read_parsed<int64_t>(ctx, field, "an integer", parse_integer);
}

std::optional<std::chrono::milliseconds> read_duration(Context& ctx, const Field& field) {
  return read_parsed<std::chrono::milliseconds>(ctx, field, "a duration such as 10s",
                                                parse_duration);
}

std::optional<uint64_t> read_size(Context& ctx, const Field& field) {
  return read_parsed<uint64_t>(ctx, field, "a size such as 256MiB", parse_size);
}

std::optional<std::string> read_checked(Context& ctx, const Field& field,
                                        common::Result<void> (*check)(std::string_view),
                                        Expand expand) {
  auto text = read_string(ctx, field, expand);
  if (!text) return std::nullopt;
  if (auto ok = check(*text); !ok) {
    report_value(ctx, field, ok.error().message, *text);
    return std::nullopt;
  }
  return text;
}

std::optional<std::string> read_choice(Context& ctx, const Field& field,
                                       std::span<const std::string_view> allowed) {
  auto text = read_string(ctx, field);
  if (!text) return std::nullopt;
  if (std::find(allowed.begin(), allowed.end(), *text) == allowed.end()) {
    report_value(ctx, field, "expected one of " + join(allowed), *text);
    return std::nullopt;
  }
  return text;
}

std::optional<std::vector<Field>> read_sequence(Context& ctx, const Field& field) {
  if (!field.value.IsDefined() || field.value.IsNull()) return std::vector<Field>{};
  if (!field.value.IsSequence()) {
    report(ctx, field, "expected a sequence, got " + kind_of(field.value));
    return std::nullopt;
  }
  std::vector<Field> items;
  for (const YAML::Node& item : field.value) {
    const Position here = position_of(item.Mark());
    items.push_back(Field{field.path + "[" + std::to_string(items.size()) + "]", "",
                          here.line > 0 ? here : field.at(), item});
  }
  return items;
}

Mapping::Mapping(Context& ctx, const Field& field, std::span<const std::string_view> known_keys)
    : ctx_(ctx), path_(field.path), at_(field.key_at) {
  read_entries(field, known_keys, /*closed=*/true);
}

Mapping::Mapping(Context& ctx, const Field& field)
    : ctx_(ctx), path_(field.path), at_(field.key_at) {
  read_entries(field, {}, /*closed=*/false);
}

void Mapping::read_entries(const Field& field, std::span<const std::string_view> known_keys,
                           bool closed) {
  const YAML::Node& node = field.value;
  if (!node.IsDefined() || node.IsNull()) return;
  if (!node.IsMap()) {
    valid_ = false;
    const std::string got = kind_of(node);
    if (path_.empty()) {
      ctx_.error(field.at(), "expected a mapping at the top level, got " + got);
    } else {
      report(ctx_, field, "expected a mapping, got " + got);
    }
    return;
  }
  // yaml-cpp's iterator yields pairs by value; copying the nodes (handles
  // to shared data) avoids references into a destroyed temporary.
  for (auto entry = node.begin(); entry != node.end(); ++entry) {
    const YAML::Node key = entry->first;
    Field child{"", "", position_of(key.Mark()), entry->second};
    if (!key.IsScalar()) {
      ctx_.error(child.key_at, (path_.empty() ? "" : path_ + ": ") + "expected a string key, got " +
                                   kind_of(key));
      continue;
    }
    child.key = key.Scalar();
    child.path = child_path(path_, child.key);
    if (const Field* first = find(child.key)) {
      ctx_.error(child.key_at, "duplicate key '" + child.path + "' (first defined at line " +
                                   std::to_string(first->key_at.line) + ", column " +
                                   std::to_string(first->key_at.column) + ")");
      continue;
    }
    if (closed && std::find(known_keys.begin(), known_keys.end(), child.key) == known_keys.end()) {
      report_unknown(child, known_keys);
      continue;
    }
    index_.emplace(child.key, fields_.size());
    fields_.push_back(std::move(child));
  }
}

void Mapping::report_unknown(const Field& key, std::span<const std::string_view> known_keys) const {
  std::string message = "unknown key '" + key.key + "'";
  if (!path_.empty()) message += " in '" + path_ + "'";
  if (key.key == "<<") {
    message += "; YAML merge keys are not supported";
  } else if (auto suggestion = closest_match(key.key, known_keys)) {
    message += "; did you mean '" + std::string(*suggestion) + "'?";
  } else {
    message += " (expected one of " + join(known_keys) + ")";
  }
  ctx_.error(key.key_at, std::move(message));
}

const Field* Mapping::find(std::string_view key) const {
  auto found = index_.find(key);
  return found == index_.end() ? nullptr : &fields_[found->second];
}

void Mapping::report_missing(std::string_view key, std::string_view hint) const {
  std::string message = "missing required key '" + std::string(key) + "'";
  if (!path_.empty()) message = path_ + ": " + message;
  ctx_.error(at_, message + std::string(hint));
}

}  // namespace config
