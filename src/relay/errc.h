#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace relay {

// Why the slot core refused a mapping, a value, a row or a delivery. A bad row
// (bad_row, out_of_range) is the data's fault and goes to the bad-row policy;
// the rest mean the stream, the schema or Kafka is not what the relay can go
// on with, and no row may be skipped because of them. The driver decides from
// the code alone whether to reconnect, halt or give up (driver::disposition).
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
  // Begin, Commit and Insert out of their nesting (Begin inside an open
  // transaction, Commit or Insert outside one).
  stream_out_of_order,
  // A message the relay never asks for (streamed or two-phase transactions):
  // the slot or server does something the relay cannot confirm safely.
  unsupported_message,
  // A record Kafka could not take within delivery.timeout.ms, on a failure
  // that may clear: resume from the confirmed position.
  delivery_failed,
  // The bad-row policy is halt and a row or record could not be published.
  halted,
  // The producer cannot continue (fenced, idempotence broken).
  producer_failed,
  // Ownership of the slot could not be proven any more (group lease).
  fenced,
  // Kafka had not acknowledged every record when the session had to end.
  unacknowledged,
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
