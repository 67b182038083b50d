#include "pg/replication_slot_stats.h"

#include <libpq-fe.h>

#include <charconv>

#include "pg/query_connection.h"
#include "pg/replication_stream.h"

namespace pg {

using detail::int8_column;
using detail::query_error;
using detail::trimmed_error;

struct SlotStatsReader::Conn {
  detail::OwnedConn pg;
};

SlotStatsReader::SlotStatsReader(std::string dsn) : dsn_(std::move(dsn)) {}
SlotStatsReader::~SlotStatsReader() = default;

// A scrape must never hang on a server that stopped answering.
common::Result<void> SlotStatsReader::ensure_connected() {
  if (conn_) return {};
  auto c = detail::connect_for_queries(dsn_, std::chrono::seconds(10), "outbox-relay-monitor");
  if (!c) return c.error();
  conn_ = std::make_unique<Conn>(Conn{std::move(*c)});
  return {};
}

common::Result<std::optional<SlotUsage>> SlotStatsReader::read(const std::string& slot) {
  if (auto connected = ensure_connected(); !connected) return connected.error();
  const char* params[] = {slot.c_str()};
  // wal_status and safe_wal_size came with max_slot_wal_keep_size in 13.
  const char* query = PQserverVersion(conn_->pg.get()) >= 130000
                          ? "SELECT active, (pg_current_wal_lsn() - restart_lsn)::int8, "
                            "wal_status, safe_wal_size "
                            "FROM pg_replication_slots WHERE slot_name = $1"
                          : "SELECT active, (pg_current_wal_lsn() - restart_lsn)::int8, "
                            "NULL::text, NULL::int8 "
                            "FROM pg_replication_slots WHERE slot_name = $1";
  PGresult* res = PQexecParams(conn_->pg.get(), query, 1, nullptr, params, nullptr, nullptr, 0);
  std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    auto e = query_error("reading pg_replication_slots: " + trimmed_error(conn_->pg.get()));
    conn_.reset();  // reconnect next time: the connection may be gone
    return e;
  }
  if (PQntuples(res) == 0) return std::optional<SlotUsage>();
  SlotUsage u;
  u.active = std::string_view(PQgetvalue(res, 0, 0)) == "t";
  auto retained = int8_column(res, 0, 1, "retained WAL");
  if (!retained) return retained.error();
  u.retained_wal_bytes = *retained;
  if (!PQgetisnull(res, 0, 2)) u.wal_status = PQgetvalue(res, 0, 2);
  auto safe = int8_column(res, 0, 3, "safe_wal_size");
  if (!safe) return safe.error();
  u.safe_wal_size = *safe;
  return std::optional<SlotUsage>(u);
}

common::Result<std::optional<SlotFailover>> SlotStatsReader::read_failover(
    const std::string& slot) {
  if (auto connected = ensure_connected(); !connected) return connected.error();
  const bool has_failover = PQserverVersion(conn_->pg.get()) >= 170000;
  const char* params[] = {slot.c_str()};
  PGresult* res = PQexecParams(
      conn_->pg.get(),
      has_failover
          ? "SELECT s.failover, (SELECT count(*) FROM pg_replication_slots p "
            "WHERE p.slot_type = 'physical' AND p.active "
            "AND p.slot_name = ANY (string_to_array(replace(current_setting("
            "'synchronized_standby_slots'), ' ', ''), ',')) "
            "AND p.restart_lsn >= s.confirmed_flush_lsn)::int4 "
            "FROM pg_replication_slots s WHERE s.slot_name = $1"
          : "SELECT false, 0 FROM pg_replication_slots WHERE slot_name = $1",
      1, nullptr, params, nullptr, nullptr, 0);
  std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    auto e = query_error("reading the slot's failover state: " + trimmed_error(conn_->pg.get()));
    conn_.reset();
    return e;
  }
  if (PQntuples(res) == 0) return std::optional<SlotFailover>();
  SlotFailover f;
  f.failover = std::string_view(PQgetvalue(res, 0, 0)) == "t";
  std::string_view v = PQgetvalue(res, 0, 1);
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), f.ready_standbys);
  if (ec != std::errc() || end != v.data() + v.size()) {
    return query_error("unexpected standby count '" + std::string(v) + "'");
  }
  return std::optional<SlotFailover>(f);
}

std::string libpq_version() { return std::to_string(PQlibVersion()); }

}  // namespace pg
