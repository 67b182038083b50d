#pragma once

// Checks for the names the relay hands to PostgreSQL, Kafka and the network
// stack. Each is checked at load so that a typo is reported with its file
// position, not as a server error minutes later.

#include <string_view>

#include "common/result.h"

namespace config {

// PostgreSQL's ReplicationSlotValidateName(): [a-z0-9_], 1..63 bytes
// (NAMEDATALEN - 1).
common::Result<void> check_slot_name(std::string_view name);

// An unquoted SQL identifier in lower case, since the relay names the
// publication in CREATE PUBLICATION and in START_REPLICATION's
// publication_names: [a-z_][a-z0-9_]*, at most 63 bytes.
common::Result<void> check_publication_name(std::string_view name);

// "table" or "schema.table": one dot at most, no empty part.
common::Result<void> check_table_name(std::string_view name);

// Kafka's Topic.validate(): 1..249 characters of [a-zA-Z0-9._-], and not
// "." or "..".
common::Result<void> check_topic_name(std::string_view name);

// "host:port" with a port in 0..65535 (0 asks the kernel for a free port);
// the host is a name, an IPv4 address or a bracketed IPv6 address. The empty
// string is accepted: it disables the HTTP endpoints.
common::Result<void> check_listen_address(std::string_view address);

// A column name in the configuration: non-empty.
common::Result<void> check_column_name(std::string_view name);

}  // namespace config
