#include "harness/postgres_server.h"

#include <libpq-fe.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "harness/scripts.h"
#include "harness/signal_cleanup.h"

namespace harness {
namespace {

constexpr const char* kScript = "pg-server.sh";

std::string default_bin_dir() {
  const char* env = std::getenv("OUTBOX_PG_BINDIR");
  return env && *env ? env : "/usr/lib/postgresql/15/bin";
}

std::string conninfo_value(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// Owns one PGresult; PQclear on every path.
struct Result {
  PGresult* r;
  ~Result() { PQclear(r); }
};

// What the destructor does to the cluster, for a signalled test binary.
int destroy_on_signal(const std::string& cluster_dir) {
  std::vector<std::string> argv{detail::script_path(kScript)};
  if (TempDir::keep_requested()) {
    argv.insert(argv.end(), {"stop", cluster_dir, "immediate"});
  } else {
    argv.insert(argv.end(), {"destroy", cluster_dir});
  }
  return detail::run_on_signal(std::move(argv));
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_literal(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::unique_ptr<PostgresServer> PostgresServer::start(Options options) {
  std::unique_ptr<PostgresServer> s(new PostgresServer());
  s->bin_dir_ = options.bin_dir.empty() ? default_bin_dir() : options.bin_dir;
  s->host_ = options.host;
  s->dir_ = std::make_unique<TempDir>("outbox-pg");
  // The server runs as an unprivileged user, which must be able to reach the
  // cluster directory inside this root-owned one.
  ::chmod(s->dir_->path().c_str(), 0711);
  s->cluster_dir_ = s->dir_->path() + "/pg";
  s->on_signal_ = destroy_on_signal(s->cluster_dir_);
  std::string extra, hba;
  for (const auto& line : options.extra_conf) extra += line + "\n";
  for (const auto& line : options.extra_hba) hba += line + "\n";
  const std::string out = detail::run_script(kScript, {"start", s->cluster_dir_, s->bin_dir_},
                                             {{"PG_EXTRA_CONF", extra},
                                              {"PG_EXTRA_HBA", hba},
                                              {"PG_SSL_CERT", options.ssl_cert_file},
                                              {"PG_SSL_KEY", options.ssl_key_file}});
  try {
    s->port_ = std::stoi(out);
  } catch (const std::exception&) {
    throw std::runtime_error("pg-server.sh start printed no port: " + out);
  }
  return s;
}

std::unique_ptr<PostgresServer> PostgresServer::start_standby(PostgresServer& primary,
                                                              const std::string& physical_slot) {
  std::unique_ptr<PostgresServer> s(new PostgresServer());
  s->bin_dir_ = primary.bin_dir_;
  s->host_ = primary.host_;
  s->dir_ = std::make_unique<TempDir>("outbox-pg");
  ::chmod(s->dir_->path().c_str(), 0711);
  s->cluster_dir_ = s->dir_->path() + "/pg";
  s->on_signal_ = destroy_on_signal(s->cluster_dir_);
  s->clone_and_start_standby(primary, physical_slot);
  return s;
}

void PostgresServer::rebuild_as_standby(PostgresServer& primary,
                                        const std::string& physical_slot) {
  disconnect_all();
  clone_and_start_standby(primary, physical_slot);
}

// The slot is created before the backup starts and reserves WAL at once, so
// the standby can stream everything from the backup's checkpoint on.
void PostgresServer::clone_and_start_standby(PostgresServer& primary,
                                             const std::string& physical_slot) {
  primary.exec("SELECT pg_create_physical_replication_slot(" + quote_literal(physical_slot) +
               ", true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = " +
               quote_literal(physical_slot) + ")");
  // pg_backup_start and pg_backup_stop must run in one session: the
  // harness's cached connection to "postgres".
  primary.exec("SELECT pg_backup_start('outbox-relay test standby', true)");
  try {
    detail::run_script(kScript, {"clone", cluster_dir_, primary.cluster_dir_});
  } catch (...) {
    try {
      primary.exec("SELECT pg_backup_stop(false)");
    } catch (const std::exception&) {
    }
    throw;
  }
  const auto label = primary.query_scalar("SELECT labelfile FROM pg_backup_stop(false)");
  if (!label) throw std::runtime_error("pg_backup_stop returned no backup label");
  std::ofstream(cluster_dir_ + "/backup_label.new", std::ios::binary) << *label;
  const std::string out = detail::run_script(
      kScript, {"standby", cluster_dir_, std::to_string(primary.port()), physical_slot});
  try {
    port_ = std::stoi(out);
  } catch (const std::exception&) {
    throw std::runtime_error("pg-server.sh standby printed no port: " + out);
  }
}

void PostgresServer::promote() {
  disconnect_all();
  detail::run_script(kScript, {"promote", cluster_dir_});
}

PostgresServer::~PostgresServer() {
  detail::forget_on_signal(on_signal_);
  disconnect_all();
  try {
    // Kept directories keep their data for a post-mortem; the server goes
    // either way.
    if (TempDir::keep_requested()) {
      detail::run_script(kScript, {"stop", cluster_dir_, "immediate"});
    } else {
      detail::run_script(kScript, {"destroy", cluster_dir_});
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harness: %s\n", e.what());
  }
}

std::string PostgresServer::server_log() const {
  std::ifstream in(cluster_dir_ + "/server.log", std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string PostgresServer::dsn(const std::string& db, const std::string& user) const {
  return "host=" + host_ + " port=" + std::to_string(port_) + " dbname=" + conninfo_value(db) +
         " user=" + conninfo_value(user) + " connect_timeout=10";
}

pg_conn* PostgresServer::connection(const std::string& db) {
  auto it = std::find_if(connections_.begin(), connections_.end(),
                         [&](const auto& c) { return c.first == db; });
  if (it != connections_.end()) {
    // A connection the server closed while idle (restart, terminated
    // backend) shows up only once its socket is read; a fresh one is safe
    // since nothing was sent on the old one.
    if (PQconsumeInput(it->second) != 0 && PQstatus(it->second) == CONNECTION_OK) {
      return it->second;
    }
    PQfinish(it->second);
    connections_.erase(it);
  }
  PGconn* conn = PQconnectdb(dsn(db).c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    throw std::runtime_error("connect to database " + db + ": " + msg);
  }
  connections_.emplace_back(db, conn);
  return conn;
}

void PostgresServer::disconnect(const std::string& db) {
  auto it = std::find_if(connections_.begin(), connections_.end(),
                         [&](const auto& c) { return c.first == db; });
  if (it == connections_.end()) return;
  PQfinish(it->second);
  connections_.erase(it);
}

void PostgresServer::disconnect_all() {
  std::lock_guard lock(mutex_);
  for (auto& [db, conn] : connections_) PQfinish(conn);
  connections_.clear();
}

std::vector<PostgresServer::Row> PostgresServer::query(const std::string& sql,
                                                       const std::string& db) {
  std::lock_guard lock(mutex_);
  PGconn* conn = connection(db);
  Result res{PQexec(conn, sql.c_str())};
  const ExecStatusType st = PQresultStatus(res.r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY) {
    std::string msg = trimmed(res.r ? PQresultErrorMessage(res.r) : PQerrorMessage(conn));
    if (msg.empty()) msg = PQresStatus(st);
    if (PQstatus(conn) != CONNECTION_OK) {
      disconnect(db);
    } else if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
      // "BEGIN; …; COMMIT" stops at the failing statement, leaving the
      // cached connection inside an aborted transaction for the next call.
      PQclear(PQexec(conn, "ROLLBACK"));
    }
    throw std::runtime_error(msg + "\n  in: " + sql.substr(0, 500));
  }
  std::vector<Row> rows;
  const int n = PQntuples(res.r), cols = PQnfields(res.r);
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<size_t>(cols));
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res.r, i, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(res.r, i, c), static_cast<size_t>(PQgetlength(res.r, i, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

void PostgresServer::exec(const std::string& sql, const std::string& db) {
  query(sql, db);
}

std::optional<std::string> PostgresServer::query_scalar(const std::string& sql,
                                                        const std::string& db) {
  auto rows = query(sql, db);
  if (rows.empty() || rows[0].empty()) return std::nullopt;
  return rows[0][0];
}

void PostgresServer::create_database(const std::string& name) {
  exec("CREATE DATABASE " + quote_ident(name));
}

void PostgresServer::drop_database(const std::string& name) {
  {
    std::lock_guard lock(mutex_);
    disconnect(name);
  }
  exec("DROP DATABASE IF EXISTS " + quote_ident(name) + " WITH (FORCE)");
}

int PostgresServer::major_version() {
  return std::stoi(query_scalar("SHOW server_version_num").value_or("0")) / 10000;
}

void PostgresServer::stop(StopMode mode) {
  disconnect_all();
  detail::run_script(kScript,
                     {"stop", cluster_dir_, mode == StopMode::kFast ? "fast" : "immediate"});
}

void PostgresServer::start_again() {
  disconnect_all();
  detail::run_script(kScript, {"start-again", cluster_dir_});
}

void PostgresServer::restart() {
  disconnect_all();
  detail::run_script(kScript, {"restart", cluster_dir_});
}

}  // namespace harness
