#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace relay {

// Why the router refused a mapping, a value or a row. The codes split into
// two families the caller treats differently: a bad row (bad_row,
// out_of_range) is the data's fault and goes to the bad-row policy; the rest
// mean the stream or the schema is not what the relay can read, and no row
// may be skipped because of them.
enum class errc {
  // A column value that is not in its type's wire format: a uuid that is not
  // 16 bytes, bytea text without "\x", a jsonb version byte other than 1.
  malformed_value = 1,
  // A well-formed value outside what its role accepts (an int8 partition
  // beyond int32).
  out_of_range,
  // A column type the requested form cannot be read from.
  unsupported_type,
  // The configured mapping does not fit the Relation message (a mapped
  // column is missing or has a type its role cannot use).
  invalid_mapping,
  // An Insert for a relation that no Relation message bound.
  unknown_relation,
  // A tuple whose shape breaks the protocol: a column count other than the
  // Relation message's, unchanged TOAST in an INSERT, an unknown kind byte.
  protocol_violation,
  // A row that cannot become a Kafka record: null topic, invalid topic name,
  // headers that are not the documented JSON, null payload.
  bad_row,
  // An outbox configuration the router cannot use (a table name it cannot
  // split, a topic template it cannot parse).
  invalid_config,
  // A relation in the stream that the relay cannot map to the configured
  // outbox: the outbox renamed, another table under its name, or a table
  // neither the outbox nor listed in outbox.ignore_relations.
  unmapped_relation,
};

const std::error_category& error_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), error_category()};
}

inline common::Error make_error(errc e, std::string message) {
  return common::Error{make_error_code(e), std::move(message)};
}

}  // namespace relay

template <>
struct std::is_error_code_enum<relay::errc> : std::true_type {};
