#include "pg/slot_status.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <variant>

#include "pg/query_connection.h"
#include "pg/replication_stream.h"
#include "wal/pgoutput.h"

namespace pg {

using detail::int8_column;
using detail::query_error;
using detail::trimmed_error;

namespace {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

std::optional<std::string> text(PGresult* res, int row, int column) {
  if (PQgetisnull(res, row, column)) return std::nullopt;
  return std::string(PQgetvalue(res, row, column), PQgetlength(res, row, column));
}

common::Result<std::optional<wal::Lsn>> lsn(PGresult* res, int row, int column, const char* what) {
  auto v = text(res, row, column);
  if (!v) return std::optional<wal::Lsn>();
  auto parsed = wal::Lsn::parse(*v);
  if (!parsed) return query_error(std::string("unexpected ") + what + " value '" + *v + "'");
  return std::optional<wal::Lsn>(*parsed);
}

}  // namespace

struct SlotInspector::Conn {
  detail::OwnedConn pg;
  // Runs `sql` with text parameters; results in `binary` format when asked.
  common::Result<Result> run(const char* sql, std::initializer_list<const char*> params,
                             const char* what, int result_format = 0) {
    std::vector<const char*> values(params);
    Result res(PQexecParams(pg.get(), sql, static_cast<int>(values.size()), nullptr, values.data(),
                            nullptr, nullptr, result_format),
               &PQclear);
    const auto status = PQresultStatus(res.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
      return query_error(std::string(what) + ": " + trimmed_error(pg.get()));
    }
    return res;
  }
};

SlotInspector::SlotInspector(std::string dsn, std::chrono::milliseconds timeout)
    : dsn_(std::move(dsn)), timeout_(timeout) {}
SlotInspector::~SlotInspector() = default;

common::Result<void> SlotInspector::ensure_connected() {
  if (conn_) return {};
  auto c = detail::connect_for_queries(dsn_, timeout_, "outbox-relay-status");
  if (!c) return c.error();
  conn_ = std::make_unique<Conn>(Conn{std::move(*c)});
  return {};
}

common::Result<ServerPosition> SlotInspector::position() {
  if (auto connected = ensure_connected(); !connected) return connected.error();
  auto res = conn_->run(
      "SELECT pg_is_in_recovery(), (CASE WHEN pg_is_in_recovery() THEN "
      "COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) ELSE pg_current_wal_lsn() "
      "END)::text, current_setting('server_version_num')",
      {}, "reading the server's WAL position");
  if (!res) return res.error();
  PGresult* r = res->get();
  ServerPosition p;
  p.in_recovery = std::string_view(PQgetvalue(r, 0, 0)) == "t";
  auto end = lsn(r, 0, 1, "WAL position");
  if (!end) return end.error();
  p.wal_end = end->value_or(wal::Lsn());
  auto version = int8_column(r, 0, 2, "server_version_num");
  if (!version) return version.error();
  p.server_version = static_cast<int>(version->value_or(0));
  return p;
}

common::Result<std::optional<SlotRow>> SlotInspector::slot(const std::string& slot) {
  if (auto connected = ensure_connected(); !connected) return connected.error();
  auto res = conn_->run(
      "SELECT s.plugin, s.slot_type, s.active_pid, s.confirmed_flush_lsn::text, "
      "s.restart_lsn::text, s.wal_status, s.safe_wal_size, r.application_name, "
      "r.client_addr::text "
      "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
      "WHERE s.slot_name = $1",
      {slot.c_str()}, "reading pg_replication_slots");
  if (!res) return res.error();
  PGresult* r = res->get();
  if (PQntuples(r) == 0) return std::optional<SlotRow>();
  SlotRow row;
  row.plugin = text(r, 0, 0).value_or("");
  row.slot_type = text(r, 0, 1).value_or("");
  auto pid = int8_column(r, 0, 2, "active_pid");
  if (!pid) return pid.error();
  if (*pid) row.active_pid = static_cast<int>(**pid);
  auto confirmed = lsn(r, 0, 3, "confirmed_flush_lsn");
  if (!confirmed) return confirmed.error();
  row.confirmed_flush = *confirmed;
  auto restart = lsn(r, 0, 4, "restart_lsn");
  if (!restart) return restart.error();
  row.restart_lsn = *restart;
  row.wal_status = text(r, 0, 5);
  auto safe = int8_column(r, 0, 6, "safe_wal_size");
  if (!safe) return safe.error();
  row.safe_wal_size = *safe;
  row.application_name = text(r, 0, 7);
  row.client_addr = text(r, 0, 8);
  return std::optional<SlotRow>(std::move(row));
}

common::Result<std::optional<PendingCommit>> SlotInspector::oldest_pending_commit(
    const std::string& slot, const std::string& publication) {
  if (auto connected = ensure_connected(); !connected) return connected.error();
  static std::atomic<int> copies{0};
  // Temporary: dropped with the session, whatever happens to this process.
  const std::string copy = "outbox_relay_status_" + std::to_string(::getpid()) + "_" +
                           std::to_string(copies.fetch_add(1));
  if (auto made = conn_->run("SELECT pg_copy_logical_replication_slot($1, $2, true)",
                             {slot.c_str(), copy.c_str()}, "copying the slot to read its backlog");
      !made) {
    return made.error();
  }
  // pgoutput sends a transaction's Begin (which carries its commit time)
  // only once it has a change the publication carries; upto_nchanges = 1
  // stops decoding at the end of the first such transaction. Binary
  // results: the data column is the pgoutput message as the relay reads it.
  const std::string publications = quote_identifier(publication);
  auto peeked = conn_->run(
      "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, 1, 'proto_version', '1', "
      "'publication_names', $2) LIMIT 1",
      {copy.c_str(), publications.c_str()}, "decoding the slot's backlog", 1);
  if (!peeked) {
    conn_.reset();  // the aborted session takes the copy with it
    return peeked.error();
  }
  std::optional<PendingCommit> pending;
  if (PQntuples(peeked->get()) > 0) {
    PGresult* r = peeked->get();
    const std::string_view data(PQgetvalue(r, 0, 0), PQgetlength(r, 0, 0));
    wal::PgOutputDecoder decoder(1);
    auto event = decoder.decode(data);
    const auto* begin = event ? std::get_if<wal::Begin>(&*event) : nullptr;
    if (!begin) {
      conn_.reset();
      return query_error("the slot's backlog starts with a message that is not a Begin");
    }
    pending = PendingCommit{begin->final_lsn, begin->commit_time.unix_micros(), 0};
  }
  auto dropped = conn_->run(
      "SELECT pg_drop_replication_slot($1), (extract(epoch FROM clock_timestamp()) * 1000000)::int8",
      {copy.c_str()}, "dropping the slot's copy");
  if (!dropped) {
    conn_.reset();
    return dropped.error();
  }
  if (pending) {
    auto now = int8_column(dropped->get(), 0, 1, "clock_timestamp");
    if (!now) return now.error();
    pending->server_now_unix_micros = now->value_or(0);
  }
  return pending;
}

}  // namespace pg
