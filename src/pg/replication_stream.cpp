#include "pg/replication_stream.h"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <chrono>
#include <string>
#include <vector>

#include "config/config.h"
#include "wal/copy_protocol.h"
#include "pg/replication_catalog.h"

namespace pg {

namespace {

// How long close() waits for the server to end the copy.
constexpr std::chrono::milliseconds kCopyDoneWait{2000};

// TCP keepalives and tcp_user_timeout for the replication connection.
constexpr const char* kKeepalivesIdle = "30";
constexpr const char* kKeepalivesInterval = "10";
constexpr const char* kKeepalivesCount = "3";
constexpr const char* kTcpUserTimeoutMs = "60000";

struct ReplicationCategory : std::error_category {
  const char* name() const noexcept override { return "replication"; }
  std::string message(int ev) const override {
    switch (static_cast<replication_errc>(ev)) {
      case replication_errc::connect_failed: return "cannot connect to PostgreSQL";
      case replication_errc::server_unsupported: return "server version not supported";
      case replication_errc::wal_level_not_logical: return "wal_level is not logical";
      case replication_errc::publication_missing: return "publication missing";
      case replication_errc::publication_invalid: return "publication does not fit the outbox";
      case replication_errc::slot_missing: return "replication slot missing";
      case replication_errc::slot_invalid: return "replication slot does not fit";
      case replication_errc::slot_lost: return "replication slot invalidated";
      case replication_errc::slot_in_use: return "replication slot is active for another backend";
      case replication_errc::query_failed: return "query failed";
      case replication_errc::copy_failed: return "replication stream failed";
      case replication_errc::copy_ended: return "server ended the replication stream";
      case replication_errc::send_failed: return "sending to the server failed";
      case replication_errc::dsn_invalid: return "invalid connection string";
      case replication_errc::outbox_missing:
        return "outbox table missing";
      case replication_errc::outbox_replaced:
        return "outbox table replaced by another";
      case replication_errc::lsn_invalid:
        return "invalid LSN from the server";
    }
    return "unknown replication error";
  }
};

common::Error error(replication_errc code, std::string message) {
  return common::Error{make_error_code(code), std::move(message)};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct ResultGuard {
  PGresult* res;
  explicit ResultGuard(PGresult* r) : res(r) {}
  ~ResultGuard() {
    if (res) PQclear(res);
  }
  ResultGuard(const ResultGuard&) = delete;
  ResultGuard& operator=(const ResultGuard&) = delete;
};

}  // namespace

const std::error_category& replication_category() {
  static ReplicationCategory c;
  return c;
}

struct ReplicationStream::Conn {
  PGconn* pg = nullptr;
  ~Conn() {
    if (pg) PQfinish(pg);
  }

  // Simple-query protocol only: a walsender in database mode does not speak
  // the extended protocol, so values are quoted, never interpolated raw.
  common::Result<CatalogRows> query(const std::string& sql, ExecStatusType want = PGRES_TUPLES_OK) {
    return run_simple_query(pg, sql, want == PGRES_TUPLES_OK);
  }
};

CopyBuffer& CopyBuffer::operator=(CopyBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) PQfreemem(data_);
    data_ = o.data_;
    size_ = o.size_;
    o.data_ = nullptr;
  }
  return *this;
}

CopyBuffer::~CopyBuffer() {
  if (data_) PQfreemem(data_);
}

std::string quote_identifier(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

common::Result<void> check_conninfo(const std::string& dsn) {
  char* errmsg = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(dsn.c_str(), &errmsg);
  if (parsed) {
    PQconninfoFree(parsed);
    return {};
  }
  std::string msg = errmsg ? trim(errmsg) : "out of memory";
  PQfreemem(errmsg);
  return error(replication_errc::dsn_invalid,
               "postgres.dsn: not a valid libpq connection string: " +
                   config::redact_libpq_message(msg, dsn));
}

common::Result<Lsn> parse_server_lsn(std::string_view text, std::string_view what) {
  if (auto lsn = Lsn::parse(text)) return *lsn;
  return error(replication_errc::lsn_invalid, "the server sent " + std::string(what) + " '" +
                                                  std::string(text) +
                                                  "', which is not an LSN (X/X)");
}

common::Result<std::unique_ptr<ReplicationStream>> ReplicationStream::connect(
    const ReplicationOptions& o) {
  // Text-mode values depend on session settings; pin the ones the router
  // parses, as PostgreSQL's own apply worker does.
  // Options the DSN already carries (a user's -c settings) are kept; the
  // pinned ones come after them and win.
  std::string session_options;
  if (PQconninfoOption* parsed = PQconninfoParse(o.dsn.c_str(), nullptr)) {
    for (PQconninfoOption* opt = parsed; opt->keyword; ++opt) {
      if (std::string_view(opt->keyword) == "options" && opt->val && *opt->val) {
        session_options = std::string(opt->val) + " ";
      }
    }
    PQconninfoFree(parsed);
  }
  session_options +=
      "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 "
      "-c bytea_output=hex -c client_encoding=UTF8";
  // A path to the server that dies without a reset is invisible to a socket
  // that only reads: without keepalives the relay would hold the slot (and
  // in group mode its lease) for the whole TCP retry time, about 15 minutes.
  // Idle probes find a dead path within idle + interval * count (60 s);
  // tcp_user_timeout ends one where our status updates go unacknowledged.
  // These come before the DSN so that the user's own settings win.
  const char* keywords[] = {"keepalives",
                            "keepalives_idle",
                            "keepalives_interval",
                            "keepalives_count",
                            "tcp_user_timeout",
                            "dbname",
                            "replication",
                            "fallback_application_name",
                            "options",
                            nullptr};
  const char* values[] = {"1",
                          kKeepalivesIdle,
                          kKeepalivesInterval,
                          kKeepalivesCount,
                          kTcpUserTimeoutMs,
                          o.dsn.c_str(),
                          "database",
                          o.application_name.c_str(),
                          session_options.c_str(),
                          nullptr};
  std::unique_ptr<ReplicationStream> s(new ReplicationStream());
  s->options_ = o;
  s->conn_ = std::make_unique<Conn>();
  s->conn_->pg = PQconnectdbParams(keywords, values, 1);
  if (!s->conn_->pg || PQstatus(s->conn_->pg) != CONNECTION_OK) {
    std::string msg = s->conn_->pg ? trim(PQerrorMessage(s->conn_->pg)) : "out of memory";
    return error(replication_errc::connect_failed, config::redact_libpq_message(msg, o.dsn));
  }
  s->server_version_ = PQserverVersion(s->conn_->pg);
  if (auto r = s->check_server(); !r) return r.error();
  return s;
}

ReplicationStream::~ReplicationStream() { close(); }

common::Result<void> ReplicationStream::check_server() {
  if (server_version_ < 100000) {
    return error(replication_errc::server_unsupported,
                 "PostgreSQL " + std::to_string(server_version_) +
                     " has no pgoutput; version 10 or later is required");
  }
  auto ident = conn_->query("IDENTIFY_SYSTEM");
  if (!ident) return ident.error();
  if (ident->empty() || !(*ident)[0][0]) {
    return error(replication_errc::query_failed, "IDENTIFY_SYSTEM returned no row");
  }
  const std::string& systemid = *(*ident)[0][0];
  auto [end, ec] = std::from_chars(systemid.data(), systemid.data() + systemid.size(),
                                   system_identifier_);
  if (systemid.empty() || ec != std::errc() || end != systemid.data() + systemid.size()) {
    return error(replication_errc::query_failed,
                 "IDENTIFY_SYSTEM returned systemid '" + systemid + "', not a system identifier");
  }
  const auto& row = (*ident)[0];
  if (row.size() >= 3 && row[1] && row[2]) {
    timeline_ = *row[1];
    wal::TimelineId tli = 0;
    const char* tli_last = timeline_.data() + timeline_.size();
    auto [tli_end, tli_ec] = std::from_chars(timeline_.data(), tli_last, tli);
    if (timeline_.empty() || tli_ec != std::errc() || tli_end != tli_last || tli == 0) {
      return error(replication_errc::query_failed,
                   "IDENTIFY_SYSTEM returned timeline '" + timeline_ + "', not a timeline ID");
    }
    timeline_id_ = tli;
    auto xlogpos = parse_server_lsn(*row[2], "IDENTIFY_SYSTEM xlogpos");
    if (!xlogpos) return xlogpos.error();
    identified_wal_end_ = *xlogpos;
  }
  auto level = conn_->query("SHOW wal_level");
  if (!level) return level.error();
  if (level->empty() || (*level)[0][0] != std::optional<std::string>("logical")) {
    return error(replication_errc::wal_level_not_logical,
                 "wal_level is '" + (level->empty() ? std::string("?") : *(*level)[0][0]) +
                     "'; logical decoding needs wal_level = logical (and a server restart)");
  }
  return read_wal_safety();
}

common::Result<std::string> ReplicationStream::timeline_history(wal::TimelineId tli) {
  auto rows = conn_->query("TIMELINE_HISTORY " + std::to_string(tli));
  if (!rows) return rows.error();
  if (rows->size() != 1 || (*rows)[0].size() < 2 || !(*rows)[0][1]) {
    return error(replication_errc::query_failed,
                 "TIMELINE_HISTORY " + std::to_string(tli) + " returned no history file");
  }
  return *(*rows)[0][1];
}

common::Result<void> ReplicationStream::read_wal_safety() {
  const auto show = [this](const char* name) -> common::Result<std::optional<std::string>> {
    auto rows = conn_->query(std::string("SHOW ") + name);
    if (!rows) return rows.error();
    if (rows->empty() || !(*rows)[0][0]) {
      return error(replication_errc::query_failed,
                   std::string("SHOW ") + name + " returned no value");
    }
    return (*rows)[0][0];
  };
  wal_safety_ = {};
  if (server_version_ >= 130000) {
    auto keep = show("max_slot_wal_keep_size");
    if (!keep) return keep.error();
    wal_safety_.max_slot_wal_keep_size = *keep;
  }
  if (server_version_ >= 180000) {
    auto idle = show("idle_replication_slot_timeout");
    if (!idle) return idle.error();
    wal_safety_.idle_replication_slot_timeout = *idle;
  }
  return {};
}

common::Result<void> ReplicationStream::ensure_publication(bool slot_exists) {
  const CatalogQuery q = [this](const std::string& sql) { return conn_->query(sql); };
  auto state = read_publication(q, options_.publication, outbox_, server_version_);
  if (!state) return state.error();
  // A missing publication is created only before the slot: the slot's
  // unconfirmed changes predate any publication made now, and would fail to
  // decode (or a retry that moves on would skip them). check_publication
  // refuses it with the explanation.
  if (state->exists || slot_exists) {
    if (auto r = check_publication(*state, options_.publication, options_.slot, outbox_,
                                   server_version_);
        !r) {
      return r;
    }
    return read_scope(state->scope);
  }
  const std::string create = create_publication_sql(options_.publication, outbox_);
  if (!options_.create_publication) {
    return error(
        replication_errc::publication_missing,
        "slot=" + options_.slot + " publication \"" + options_.publication +
            "\" does not exist and create_publication is false; create it with: " + create);
  }
  auto created = conn_->query(create, PGRES_COMMAND_OK);
  if (!created) {
    return error(replication_errc::publication_invalid,
                 "slot=" + options_.slot + " cannot create publication \"" + options_.publication +
                     "\": " + created.error().message);
  }
  return {};
}

// A publication that covers more than the tables it lists sends the rows of
// every table it covers: those are read here, for relay::RelationGuard to
// judge against the outbox and outbox.ignore_relations before the slot.
common::Result<void> ReplicationStream::read_scope(wal::PublicationScope scope) {
  if (!scope.lists_tables_only()) {
    const CatalogQuery q = [this](const std::string& sql) { return conn_->query(sql); };
    auto tables = read_published_tables(q, options_.publication);
    if (!tables) return tables.error();
    scope.tables = std::move(*tables);
    auto name = pg::free_publication_name(q, options_.publication);
    if (!name) return name.error();
    free_publication_name_ = std::move(*name);
  }
  publication_scope_ = std::move(scope);
  return {};
}

// pgoutput carries messages whatever the publication holds, but it loads the
// publication at the first change of any table and fails if it is missing;
// so it must exist, and from before the slot, as with a table.
common::Result<void> ReplicationStream::ensure_message_publication(bool slot_exists) {
  const CatalogQuery q = [this](const std::string& sql) { return conn_->query(sql); };
  auto state = read_publication(q, options_.publication, OutboxRelation{}, server_version_);
  if (!state) return state.error();
  if (state->exists) return read_scope(state->scope);
  const std::string create = create_empty_publication_sql(options_.publication);
  const std::string where =
      "slot=" + options_.slot + " publication \"" + options_.publication + "\" does not exist";
  if (slot_exists) {
    return error(replication_errc::publication_missing,
                 where +
                     " but the slot does; a publication created now is \"not found\" for the "
                     "changes the slot has yet to send: create it, then drop the slot so that "
                     "the relay creates it again (messages written in between are not "
                     "published): " +
                     create + "; SELECT pg_drop_replication_slot(" + quote_literal(options_.slot) +
                     ")");
  }
  if (!options_.create_publication) {
    return error(replication_errc::publication_missing,
                 where + " and create_publication is false; create it with: " + create);
  }
  auto created = conn_->query(create, PGRES_COMMAND_OK);
  if (!created) {
    return error(replication_errc::publication_invalid,
                 "slot=" + options_.slot + " cannot create publication \"" + options_.publication +
                     "\": " + created.error().message);
  }
  return {};
}

common::Result<std::optional<ReplicationSlotRow>> ReplicationStream::read_slot() {
  const CatalogQuery q = [this](const std::string& sql) { return conn_->query(sql); };
  return pg::read_slot(q, options_.slot, server_version_);
}

// FAILOVER (17+): a standby with sync_replication_slots keeps a copy, so a
// promotion does not lose the slot. A standby itself (logical decoding on a
// standby, 16+) cannot create one.
common::Result<bool> ReplicationStream::wants_failover_slot() {
  if (!options_.failover_slot || server_version_ < 170000) return false;
  auto rows = conn_->query("SELECT pg_catalog.pg_is_in_recovery()");
  if (!rows) return rows.error();
  return rows->empty() || (*rows)[0][0] != std::optional<std::string>("t");
}

common::Result<SlotState> ReplicationStream::use_slot() {
  auto row = read_slot();
  if (!row) return row.error();
  const std::string name = "replication slot \"" + options_.slot + "\"";
  if (!*row) return error(replication_errc::slot_missing, name + " does not exist");
  const ReplicationSlotRow& slot = **row;
  if (slot.plugin != "pgoutput" || slot.slot_type != "logical") {
    return error(replication_errc::slot_invalid, name + " is not a logical pgoutput slot");
  }
  if (!slot.in_this_database) {
    return error(replication_errc::slot_invalid, name + " belongs to another database");
  }
  // Invalidated since the resume policy looked: it judges the slot again at
  // the next connect.
  if (slot.lost()) {
    return error(replication_errc::slot_lost,
                 name + " was invalidated (wal_status = lost) while the relay connected");
  }
  if (slot.active_pid) {
    return error(replication_errc::slot_in_use, name + " is active for PID " + *slot.active_pid);
  }
  SlotState state;
  state.confirmed_flush = slot.confirmed_flush.value_or(Lsn());
  state.restart_lsn = slot.restart_lsn.value_or(Lsn());
  state.wal_status = slot.wal_status;
  state.failover = slot.failover;
  auto failover = wants_failover_slot();
  if (!failover) return failover.error();
  if (*failover && !state.failover) {
    // A slot made before this setting (or by hand) becomes one too.
    auto altered = conn_->query(
        "ALTER_REPLICATION_SLOT " + quote_identifier(options_.slot) + " (FAILOVER true)",
        PGRES_COMMAND_OK);
    if (!altered) return altered.error();
    state.failover = true;
  }
  return state;
}

common::Result<SlotState> ReplicationStream::create_slot() {
  auto failover = wants_failover_slot();
  if (!failover) return failover.error();
  // PG15 replaced NOEXPORT_SNAPSHOT with the option list; both need no
  // snapshot since the outbox is streamed from now on, never copied.
  std::string sql =
      "CREATE_REPLICATION_SLOT " + quote_identifier(options_.slot) + " LOGICAL pgoutput" +
      (server_version_ >= 150000
           ? (*failover ? " (SNAPSHOT 'nothing', FAILOVER)" : " (SNAPSHOT 'nothing')")
           : " NOEXPORT_SNAPSHOT");
  auto created = conn_->query(sql);
  if (!created) return created.error();
  auto state = use_slot();
  if (!state) {
    if (state.error().code != replication_errc::slot_missing) return state.error();
    return error(replication_errc::slot_missing,
                 "replication slot \"" + options_.slot + "\" vanished right after creation");
  }
  state->created = true;
  return state;
}

common::Result<SlotState> ReplicationStream::recreate_lost_slot() {
  auto row = read_slot();
  if (!row) return row.error();
  if (*row && (*row)->active_pid) {
    return error(replication_errc::slot_in_use, "replication slot \"" + options_.slot +
                                                    "\" is active for PID " + *(*row)->active_pid);
  }
  if (*row) {
    auto dropped = conn_->query("DROP_REPLICATION_SLOT " + quote_identifier(options_.slot),
                                PGRES_COMMAND_OK);
    if (!dropped) return dropped.error();
  }
  return create_slot();
}

common::Result<std::optional<std::string>> ReplicationStream::terminate_relay_holder(
    std::string_view relay_prefix) {
  auto rows = conn_->query(
      "SELECT a.pid::text, a.application_name FROM pg_catalog.pg_replication_slots s "
      "JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = " +
      quote_literal(options_.slot));
  if (!rows) return rows.error();
  if (rows->empty() || !(*rows)[0][0]) return std::optional<std::string>();
  const std::string pid = *(*rows)[0][0];
  const std::string app = (*rows)[0][1].value_or("");
  if (app.compare(0, relay_prefix.size(), relay_prefix) != 0) return std::optional<std::string>();
  auto killed = conn_->query("SELECT pg_catalog.pg_terminate_backend(" + pid + ")");
  if (!killed) return killed.error();
  return std::optional<std::string>(pid);
}

common::Result<void> ReplicationStream::prepare_catalog(bool slot_exists) {
  const CatalogQuery q = [this](const std::string& sql) { return conn_->query(sql); };
  if (options_.outbox_table) {
    auto outbox = read_outbox_relation(q, options_.table, server_version_);
    if (!outbox) return outbox.error();
    outbox_ = std::move(*outbox);
  }
  return options_.outbox_table ? ensure_publication(slot_exists)
                               : ensure_message_publication(slot_exists);
}

common::Result<void> ReplicationStream::start(Lsn from, bool binary) {
  std::string sql = "START_REPLICATION SLOT " + quote_identifier(options_.slot) + " LOGICAL " +
                    from.to_string() + " (proto_version '" + std::to_string(kProtoVersion) +
                    "', publication_names " + quote_literal(quote_identifier(options_.publication));
  // binary and messages arrived with PostgreSQL 14. Messages of other
  // prefixes than the relay's are dropped by the slot core.
  if (binary && server_version_ >= 140000) sql += ", binary 'true'";
  if (server_version_ >= 140000) sql += ", messages 'true'";
  sql += ")";
  ResultGuard r(PQexec(conn_->pg, sql.c_str()));
  if (PQresultStatus(r.res) != PGRES_COPY_BOTH) {
    const char* state = PQresultErrorField(r.res, PG_DIAG_SQLSTATE);
    std::string msg = trim(PQresultErrorMessage(r.res));
    if (state && std::string(state) == "55006") return error(replication_errc::slot_in_use, msg);
    return error(replication_errc::copy_failed, "START_REPLICATION failed: " + msg);
  }
  if (PQsetnonblocking(conn_->pg, 1) != 0) {
    return error(replication_errc::copy_failed, "cannot make the connection non-blocking");
  }
  streaming_ = true;
  return {};
}

int ReplicationStream::socket() const { return PQsocket(conn_->pg); }

common::Result<std::optional<CopyBuffer>> ReplicationStream::read() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    char* buf = nullptr;
    int n = PQgetCopyData(conn_->pg, &buf, 1);
    if (n > 0) return std::optional<CopyBuffer>(CopyBuffer(buf, n));
    if (n == 0) {
      if (attempt == 0 && PQconsumeInput(conn_->pg) == 0) {
        return error(replication_errc::copy_failed, trim(PQerrorMessage(conn_->pg)));
      }
      continue;
    }
    if (n == -1) {
      // The server ended the copy; the reason (say, a publication that did not
      // exist at the change's LSN) comes as the following result.
      streaming_ = false;
      std::string msg = "server ended the replication stream";
      std::string sqlstate;
      while (PGresult* res = PQgetResult(conn_->pg)) {
        if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
          msg = trim(PQresultErrorMessage(res));
          const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
          sqlstate = state ? state : "";
        }
        PQclear(res);
      }
      // undefined_object while decoding: the publication did not exist at a
      // change's LSN (created after the slot, or dropped). A retry reads the
      // same change again, and one that moves on skips it: neither helps.
      if (sqlstate == "42704") {
        return error(replication_errc::publication_missing,
                     "slot=" + options_.slot + " the server cannot decode the stream (" + msg +
                         ", SQLSTATE 42704): publication \"" + options_.publication +
                         "\" did not exist at a change the slot has yet to send, either created "
                         "after the slot or dropped. Decoding reads the catalog as of each "
                         "change, so this never resolves by itself: create the publication, "
                         "then drop the slot so that the relay creates it again (rows committed "
                         "in between are not published), or create the publication before the "
                         "slot next time");
      }
      return error(replication_errc::copy_ended, msg);
    }
    streaming_ = false;
    return error(replication_errc::copy_failed, trim(PQerrorMessage(conn_->pg)));
  }
  return std::optional<CopyBuffer>();
}

common::Result<void> ReplicationStream::send_status(Lsn write, Lsn flush, Lsn apply,
                                                    PgTimestamp now, bool reply) {
  std::string msg = encode_standby_status_update(write, flush, apply, now, reply);
  if (PQputCopyData(conn_->pg, msg.data(), static_cast<int>(msg.size())) != 1) {
    return error(replication_errc::send_failed, trim(PQerrorMessage(conn_->pg)));
  }
  return {};
}

common::Result<bool> ReplicationStream::flush() {
  int r = PQflush(conn_->pg);
  if (r < 0) return error(replication_errc::send_failed, trim(PQerrorMessage(conn_->pg)));
  return r == 0;
}

void ReplicationStream::close() {
  if (!conn_ || !conn_->pg) return;
  if (streaming_) {
    PQsetnonblocking(conn_->pg, 0);
    PQputCopyEnd(conn_->pg, nullptr);
    PQflush(conn_->pg);
    await_copy_done();
    streaming_ = false;
  }
  PQfinish(conn_->pg);
  conn_->pg = nullptr;
}

void ReplicationStream::abandon() {
  if (!conn_ || !conn_->pg) return;
  // PQfinish still sends a Terminate message; non-blocking, it only queues it.
  PQsetnonblocking(conn_->pg, 1);
  streaming_ = false;
  PQfinish(conn_->pg);
  conn_->pg = nullptr;
}

// The walsender answers CopyDone with its own only once it has read what came
// before it, the final status update included. Closing at once, with the
// walsender's data still unread, makes the kernel reset the connection, and a
// walsender busy sending may die of the reset before it reads the update:
// the slot then keeps an older position and the next start sends again what
// Kafka already has. What arrives meanwhile is discarded.
void ReplicationStream::await_copy_done() {
  const auto deadline = std::chrono::steady_clock::now() + kCopyDoneWait;
  PQsetnonblocking(conn_->pg, 1);
  while (true) {
    char* buf = nullptr;
    const int n = PQgetCopyData(conn_->pg, &buf, 1);
    if (n > 0) {
      PQfreemem(buf);
      continue;
    }
    if (n < 0) return;  // -1: the server's CopyDone; -2: the connection failed
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    struct pollfd pfd = {PQsocket(conn_->pg), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return;
    if (PQconsumeInput(conn_->pg) == 0) return;
  }
}

}  // namespace pg
