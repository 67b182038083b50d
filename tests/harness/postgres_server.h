#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "harness/temp_dir.h"

struct pg_conn;

namespace harness {

enum class StopMode { kFast, kImmediate };

// A throwaway PostgreSQL cluster on a free loopback port (tests/harness/
// pg-server.sh): wal_level=logical, trust authentication for the superuser
// "postgres" on 127.0.0.1 including replication. Destroyed with this object.
class PostgresServer {
 public:
  using Row = std::vector<std::optional<std::string>>;

  struct Options {
    // Empty: $OUTBOX_PG_BINDIR, else /usr/lib/postgresql/15/bin.
    std::string bin_dir;
    // postgresql.conf lines added after the harness's own settings.
    std::vector<std::string> extra_conf;
    // pg_hba.conf lines placed before the harness's trust lines, so they
    // decide for the connections they match.
    std::vector<std::string> extra_hba;
    // Both set: the server runs with ssl = on and this certificate and key
    // (PEM files; copied, so the originals keep their owner and mode).
    std::string ssl_cert_file;
    std::string ssl_key_file;
    // The address dsn() names. The server listens there only if extra_conf
    // sets listen_addresses to include it (and extra_hba lets it in).
    std::string host = "127.0.0.1";
  };

  // Throws std::runtime_error with the script's output if it cannot start.
  static std::unique_ptr<PostgresServer> start(Options options);
  static std::unique_ptr<PostgresServer> start() { return start(Options{}); }
  // A streaming standby of `primary`, cloned from it while it runs (a base
  // backup between pg_backup_start and pg_backup_stop) and fed through the
  // physical slot `physical_slot`, which this creates on the primary. It
  // runs with hot_standby_feedback, and from PostgreSQL 17 on with
  // sync_replication_slots, so that it keeps copies of failover slots; its
  // walreceiver's application_name is `physical_slot` too, for
  // synchronous_standby_names.
  static std::unique_ptr<PostgresServer> start_standby(PostgresServer& primary,
                                                       const std::string& physical_slot);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  // The installation's bin directory (pg_recvlogical, psql… live there).
  const std::string& bin_dir() const { return bin_dir_; }
  // The cluster's directory: data/, server.log, the Unix socket.
  const std::string& dir() const { return cluster_dir_; }
  std::string server_log() const;

  // keyword=value conninfo for TCP on Options::host (127.0.0.1 by default).
  std::string dsn(const std::string& db = "postgres", const std::string& user = "postgres") const;

  // Runs one or more statements; throws std::runtime_error carrying the
  // server's message on failure. One connection per database is kept open
  // between calls (see drop_database).
  void exec(const std::string& sql, const std::string& db = "postgres");
  // Rows of the last statement in text format; SQL NULL is nullopt.
  std::vector<Row> query(const std::string& sql, const std::string& db = "postgres");
  // The first column of the first row; nullopt for no row or NULL.
  std::optional<std::string> query_scalar(const std::string& sql,
                                          const std::string& db = "postgres");

  void create_database(const std::string& name);
  // Closes the harness's own connection to it first, then drops it WITH
  // (FORCE) so that a relay still connected cannot block it.
  void drop_database(const std::string& name);

  // Server version as PostgreSQL numbers it: 15, 17…
  int major_version();

  void stop(StopMode mode = StopMode::kFast);
  // This server's data thrown away and cloned again from `primary` as a
  // standby (see start_standby); same directory, same port.
  void rebuild_as_standby(PostgresServer& primary, const std::string& physical_slot);
  // pg_ctl promote, waiting until the server accepts writes.
  void promote();
  // After stop(): same port, same data.
  void start_again();
  void restart();

 private:
  PostgresServer() = default;
  void run_script(const std::vector<std::string>& args);
  void clone_and_start_standby(PostgresServer& primary, const std::string& physical_slot);
  pg_conn* connection(const std::string& db);
  void disconnect_all();
  void disconnect(const std::string& db);

  std::unique_ptr<TempDir> dir_;
  std::string cluster_dir_;
  std::string bin_dir_;
  std::string host_;
  int port_ = 0;
  int on_signal_ = 0;
  std::mutex mutex_;
  std::vector<std::pair<std::string, pg_conn*>> connections_;
};

// Quotes an SQL identifier: "name" with inner quotes doubled.
std::string quote_ident(const std::string& name);
// Quotes an SQL string literal: 'text' with inner quotes doubled.
std::string quote_literal(const std::string& text);

}  // namespace harness
