#pragma once

// Typed, located reading of a yaml-cpp document. Private to src/config: the
// only header that names YAML::Node, so the node type cannot leak through
// config.h.
//
// Every reader reports what is wrong to the Context and returns nullopt, and
// the caller moves on to the next key: one load reports every mistake in the
// file, not just the first.

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/config.h"

namespace config {

// 1-based; yaml-cpp's Mark is 0-based, and -1 when a node has no position.
struct Position {
  int line = 0;
  int column = 0;
};

Position position_of(const YAML::Mark& mark);

// The diagnostics of one load, and the environment ${VAR} reads from.
class Context {
 public:
  Context(std::string file, const EnvLookup& env) : file_(std::move(file)), env_(env) {}

  void error(Position where, std::string message);
  bool has_errors() const { return !diagnostics_.empty(); }
  const EnvLookup& env() const { return env_; }

  // In file order, so that the output reads top to bottom.
  std::vector<Diagnostic> take_sorted();

 private:
  std::string file_;
  const EnvLookup& env_;
  std::vector<Diagnostic> diagnostics_;
};

// A value as found in the file, with the key it was written under.
struct Field {
  std::string path;  // dotted, for messages: "postgres.reconnect_backoff.min"
  std::string key;   // the last component of the path; empty for sequence items
  Position key_at;
  YAML::Node value;

  // Where the value starts; at the key when the value is empty (yaml-cpp
  // places an empty value at the start of the next line).
  Position at() const;
};

// Reports "<path>: <problem>" at the value.
void report(Context& ctx, const Field& field, std::string_view problem);
// Reports "<path>: <problem>, got '<text>'": for values that are not secret.
void report_value(Context& ctx, const Field& field, std::string_view problem,
                  std::string_view text);

// "a mapping", "a sequence", "null" or "a string", for "got ..." messages.
std::string kind_of(const YAML::Node& node);

enum class Expand { kEnvironment, kVerbatim };

// A scalar's text, with ${VAR} expanded unless kVerbatim. Maps, sequences
// and null are reported as "expected a string".
std::optional<std::string> read_string(Context& ctx, const Field& field,
                                       Expand expand = Expand::kEnvironment);
std::optional<bool> read_bool(Context& ctx, const Field& field);
std::optional<int64_t> read_integer(Context& ctx, const Field& field);
std::optional<std::chrono::milliseconds> read_duration(Context& ctx, const Field& field);
std::optional<uint64_t> read_size(Context& ctx, const Field& field);

// A string that must pass `check`; the check's message is reported with the
// value.
std::optional<std::string> read_checked(Context& ctx, const Field& field,
                                        common::Result<void> (*check)(std::string_view),
                                        Expand expand = Expand::kEnvironment);

// One of `allowed`, reporting the list otherwise.
std::optional<std::string> read_choice(Context& ctx, const Field& field,
                                       std::span<const std::string_view> allowed);

// The entries of a sequence as fields named "<path>[i]"; null reads as
// empty.
std::optional<std::vector<Field>> read_sequence(Context& ctx, const Field& field);

// The keys of one mapping. Construction reports a value that is not a
// mapping, keys that are not strings, duplicate keys and, for a closed
// mapping, keys the schema does not know (with a "did you mean"). Null reads
// as an empty mapping, so that "kafka:" alone keeps every default.
class Mapping {
 public:
  // A mapping whose keys must be among `known_keys`.
  Mapping(Context& ctx, const Field& field, std::span<const std::string_view> known_keys);
  // A mapping with free-form keys (kafka.properties).
  Mapping(Context& ctx, const Field& field);

  bool valid() const { return valid_; }
  Context& context() const { return ctx_; }
  const std::string& path() const { return path_; }
  const std::vector<Field>& fields() const { return fields_; }

  // The first occurrence of `key`, or nullptr.
  const Field* find(std::string_view key) const;
  // Reports `key` missing, at this mapping's key.
  void report_missing(std::string_view key, std::string_view hint = {}) const;

 private:
  void read_entries(const Field& field, std::span<const std::string_view> known_keys, bool closed);
  void report_unknown(const Field& key, std::span<const std::string_view> known_keys) const;

  Context& ctx_;
  std::string path_;
  Position at_;
  bool valid_ = true;
  std::vector<Field> fields_;                         // in file order
  std::map<std::string, size_t, std::less<>> index_;  // key -> position in fields_
};

}  // namespace config
