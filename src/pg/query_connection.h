#pragma once

// An ordinary (not a replication) libpq connection for catalog queries, as
// the slot monitor and the status command open it. Internal to src/pg.

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

namespace pg::detail {

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using OwnedConn = std::unique_ptr<PGconn, PgConnDeleter>;

// libpq's last error without its trailing newline.
std::string trimmed_error(PGconn* c);
// replication_errc::query_failed with `message`.
common::Error query_error(std::string message);

// Connects to `dsn` with connect_timeout and statement_timeout set to
// `timeout` (the DSN's own keywords win), so that a server that stopped
// answering never holds the caller longer. replication_errc::connect_failed
// with the DSN's secrets redacted.
common::Result<OwnedConn> connect_for_queries(const std::string& dsn,
                                              std::chrono::milliseconds timeout,
                                              const char* application_name);

// Column `column` of row `row` as int64, nullopt when NULL; query_failed
// naming `what` when it is not an integer.
common::Result<std::optional<int64_t>> int8_column(PGresult* res, int row, int column,
                                                   const char* what);

}  // namespace pg::detail
