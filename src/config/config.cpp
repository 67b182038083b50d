// The boundary of the config module: file reading and yaml-cpp's exceptions
// end here, converted to diagnostics. Nothing thrown inside escapes
// load_file or load_string.

#include "config/config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "config/document.h"
#include "config/env_expand.h"
#include "config/schema.h"
#include "config/yaml_reader.h"

namespace config {
namespace {

LoadFailure failure_without_position(const std::string& file, std::string message) {
  return LoadFailure{{Diagnostic{file, 0, 0, std::move(message)}}};
}

// Inside a flow collection ({...} or [...]) braces are YAML syntax, so an
// unquoted ${VAR} there breaks the parse with a message that does not say
// why. Looks at the line the parser stopped on.
std::string syntax_hint(const std::string& yaml, const YAML::Mark& mark) {
  if (mark.line < 0) return {};
  size_t start = 0;
  for (int line = 0; line < mark.line && start != std::string::npos; ++line) {
    start = yaml.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  if (start == std::string::npos) return {};
  const std::string_view text =
      std::string_view(yaml).substr(start, yaml.find('\n', start) - start);
  if (text.find("${") == std::string_view::npos) return {};
  return " (inside {...} or [...], quote a value that contains ${VAR})";
}

// Parses the text and reads it into `cfg`. Throws what yaml-cpp throws.
void parse_into(Context& ctx, const std::string& yaml, Config& cfg) {
  const std::optional<YAML::Node> root = parse_single_document(ctx, yaml);
  if (!root) return;
  if (!root->IsDefined() || root->IsNull()) {
    ctx.error(Position{1, 1}, "the configuration is empty; it needs at least postgres.dsn");
    return;
  }
  cfg = read_config(ctx, *root);
}

}  // namespace

std::vector<SlotConfig> slots_of(const Config& cfg) {
  if (!cfg.slots.empty()) return cfg.slots;
  return {SlotConfig{cfg.postgres, cfg.outbox}};
}

Config for_slot(const Config& cfg, const SlotConfig& slot) {
  Config narrowed = cfg;
  narrowed.postgres = slot.postgres;
  narrowed.outbox = slot.outbox;
  narrowed.slots.clear();
  return narrowed;
}

std::string Diagnostic::format() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::variant<Config, LoadFailure> load_string(const std::string& yaml, const std::string& name,
                                              const EnvLookup& env) {
  Context ctx(name, env);
  Config cfg;
  try {
    parse_into(ctx, yaml, cfg);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own message for this is "bad file".
    ctx.error(position_of(e.mark),
              "invalid YAML: nested more than " + std::to_string(e.depth()) + " levels deep");
  } catch (const YAML::Exception& e) {
    ctx.error(position_of(e.mark), "invalid YAML: " + e.msg + syntax_hint(yaml, e.mark));
  } catch (const std::exception& e) {
    ctx.error(Position{}, std::string("cannot load the configuration: ") + e.what());
  }
  if (ctx.has_errors()) return LoadFailure{ctx.take_sorted()};
  cfg.source_file = name;
  return cfg;
}

std::variant<Config, LoadFailure> load_string(const std::string& yaml, const std::string& name) {
  return load_string(yaml, name, process_env());
}

std::variant<Config, LoadFailure> load_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return failure_without_position(path, "is a directory, expected a YAML file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    const int error = errno;
    return failure_without_position(
        path, "cannot open the configuration file: " + std::generic_category().message(error));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return failure_without_position(path, "cannot read the configuration file");
  }
  return load_string(text.str(), path);
}

}  // namespace config
