#pragma once

// outbox.topic_template: literal topic characters and ${column} placeholders,
// e.g. "orders.${aggregate_type}". The placeholders name columns of the
// outbox row, so the template is never expanded from the environment.

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace config {

struct TemplatePart {
  enum class Kind { kLiteral, kColumn };
  Kind kind;
  std::string text;  // the literal text, or the column name

  bool operator==(const TemplatePart&) const = default;
};

// Splits a template into parts, or says what is wrong and at which
// character (1-based). Literal text must use Kafka topic characters.
common::Result<std::vector<TemplatePart>> parse_topic_template(std::string_view text);

}  // namespace config
