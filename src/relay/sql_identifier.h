#pragma once

// Configured table and column names, read the way PostgreSQL's parser reads
// an identifier in the CREATE TABLE that made them.

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"

namespace relay {

// An unqualified outbox.table lives here, as in the schema in sql/.
inline constexpr std::string_view kDefaultSchema = "public";

// One SQL identifier: "quoted" is taken as written (with "" for a quote),
// anything else is folded to lower case. Only ASCII letters fold, as
// downcase_identifier() does in multibyte encodings. errc::invalid_config
// naming `what` for an empty or unterminated one.
common::Result<std::string> resolve_identifier(std::string_view text, std::string_view what);

// `name` as SQL writes it: always double-quoted (with "" for a quote), so
// that any name reads back as itself.
std::string quote_identifier(std::string_view name);

// The spelling resolve_identifier() reads back as `name`: bare when it is
// lower-case letters, digits and underscores, not starting with a digit;
// quoted otherwise. For names the relay suggests writing into its config.
std::string spell_identifier(std::string_view name);

// Where "schema.table" splits: the first dot outside double quotes, or npos.
size_t find_qualifying_dot(std::string_view name);

}  // namespace relay
