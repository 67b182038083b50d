#include "pg/query_connection.h"

#include <charconv>
#include <string_view>

#include "config/config.h"
#include "pg/replication_stream.h"

namespace pg::detail {

std::string trimmed_error(PGconn* c) {
  std::string s = c ? PQerrorMessage(c) : "out of memory";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

common::Error query_error(std::string message) {
  return common::Error{make_error_code(replication_errc::query_failed), std::move(message)};
}

common::Result<OwnedConn> connect_for_queries(const std::string& dsn,
                                              std::chrono::milliseconds timeout,
                                              const char* application_name) {
  const std::string connect_timeout =
      std::to_string(std::max<int64_t>(1, (timeout.count() + 999) / 1000));
  const std::string options = "-c statement_timeout=" + std::to_string(timeout.count());
  // Ours come first so that the same keywords in the DSN win.
  const char* keywords[] = {"connect_timeout", "options", "fallback_application_name", "dbname",
                            nullptr};
  const char* values[] = {connect_timeout.c_str(), options.c_str(), application_name, dsn.c_str(),
                          nullptr};
  OwnedConn c(PQconnectdbParams(keywords, values, 1));
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    return common::Error{make_error_code(replication_errc::connect_failed),
                         config::redact_libpq_message(trimmed_error(c.get()), dsn)};
  }
  return c;
}

common::Result<std::optional<int64_t>> int8_column(PGresult* res, int row, int column,
                                                   const char* what) {
  if (PQgetisnull(res, row, column)) return std::optional<int64_t>();
  std::string_view v = PQgetvalue(res, row, column);
  int64_t value = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (ec != std::errc() || end != v.data() + v.size()) {
    return query_error(std::string("unexpected ") + what + " value '" + std::string(v) + "'");
  }
  return std::optional<int64_t>(value);
}

}  // namespace pg::detail
