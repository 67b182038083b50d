#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "config/yaml_reader.h"

namespace config {

// The root node of the only document in `yaml` (a null node when the text
// holds no content), or nullopt after reporting why the text is not a single
// document. Throws what yaml-cpp throws for syntax errors.
std::optional<YAML::Node> parse_single_document(Context& ctx, const std::string& yaml);

}  // namespace config
