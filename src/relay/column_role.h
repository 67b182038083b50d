#pragma once

// What each mapped outbox column is read as, and which column types can be
// read that way. Checked when a Relation message is bound, so that a column
// of the wrong type fails the mapping instead of every row.

#include <string_view>

#include "wal/lsn.h"

namespace relay {

enum class ColumnRole {
  kId,
  kTopic,
  kKey,
  kPartition,
  kHeaders,
  kPayload,
  kHeaderColumn,
  kPlaceholder
};

// Whether a column of type `t` can be read as `role`.
bool role_accepts(ColumnRole role, wal::Oid t);
// The types role_accepts() takes for `role`, for messages.
std::string_view accepted_types(ColumnRole role);
// "id", "topic", ..., for messages.
std::string_view role_name(ColumnRole role);

}  // namespace relay
