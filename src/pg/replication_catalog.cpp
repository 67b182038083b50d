#include "pg/replication_catalog.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>

#include "config/config.h"
#include "pg/replication_stream.h"

namespace pg {

namespace {

common::Error error(replication_errc code, std::string message) {
  return common::Error{make_error_code(code), std::move(message)};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// outbox.table as to_regclass() reads it: the parser's own rules for quoting
// and case folding, with schema public when none is written (not the
// search_path, which differs between roles).
std::string qualified_for_regclass(std::string_view table) {
  bool quoted = false;
  for (char c : table) {
    if (c == '"') quoted = !quoted;
    if (c == '.' && !quoted) return std::string(table);
  }
  return "public." + std::string(table);
}

common::Result<uint32_t> parse_oid(const std::optional<std::string>& text, std::string_view what) {
  uint32_t v = 0;
  if (text) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec == std::errc() && end == text->data() + text->size()) return v;
  }
  return error(replication_errc::query_failed, "unexpected " + std::string(what) + " '" +
                                                   text.value_or("NULL") + "' in the catalog");
}

common::Result<int32_t> parse_int32(const std::optional<std::string>& text, std::string_view what) {
  int32_t v = 0;
  if (text) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
    if (ec == std::errc() && end == text->data() + text->size()) return v;
  }
  return error(replication_errc::query_failed, "unexpected " + std::string(what) + " '" +
                                                   text.value_or("NULL") + "' in the catalog");
}

bool is_true(const std::optional<std::string>& v) {
  return v == std::optional<std::string>("t");
}

common::Result<void> read_columns(const CatalogQuery& query, OutboxRelation& rel,
                                  int server_version) {
  // pgoutput sends neither dropped nor generated columns (PostgreSQL 12
  // added generated ones).
  auto rows = query(
      "SELECT attname, atttypid, atttypmod FROM pg_catalog.pg_attribute "
      "WHERE attrelid = " +
      std::to_string(rel.oid) + " AND attnum > 0 AND NOT attisdropped" +
      (server_version >= 120000 ? " AND attgenerated = ''" : "") + " ORDER BY attnum");
  if (!rows) return rows.error();
  for (const auto& row : *rows) {
    auto type = parse_oid(row[1], "atttypid");
    if (!type) return type.error();
    auto typmod = parse_int32(row[2], "atttypmod");
    if (!typmod) return typmod.error();
    rel.columns.push_back(CatalogColumn{row[0].value_or(""), *type, *typmod});
  }
  return {};
}

common::Result<void> read_partitions(const CatalogQuery& query, OutboxRelation& rel) {
  const std::string oid = std::to_string(rel.oid);
  auto rows = query("SELECT relid::oid FROM pg_catalog.pg_partition_tree(" + oid +
                    "::pg_catalog.regclass) WHERE relid <> " + oid + "::pg_catalog.regclass");
  if (!rows) return rows.error();
  for (const auto& row : *rows) {
    auto part = parse_oid(row[0], "partition oid");
    if (!part) return part.error();
    rel.partitions.push_back(*part);
  }
  return {};
}

std::string quoted_name(const OutboxRelation& rel) {
  return quote_identifier(rel.nspname) + "." + quote_identifier(rel.relname);
}

}  // namespace

common::Result<CatalogRows> run_simple_query(pg_conn* conn, const std::string& sql,
                                             bool expect_rows) {
  PGresult* res = PQexec(conn, sql.c_str());
  std::unique_ptr<PGresult, decltype(&PQclear)> guard(res, &PQclear);
  const ExecStatusType want = expect_rows ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
  if (PQresultStatus(res) != want) {
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    std::string msg = trim(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
    if (msg.empty()) {
      msg = std::string("unexpected result ") + PQresStatus(PQresultStatus(res)) + " for " +
            sql.substr(0, sql.find(' '));
    }
    if (state && std::string_view(state) == "55006") {
      return error(replication_errc::slot_in_use, msg);
    }
    return error(replication_errc::query_failed, msg);
  }
  CatalogRows rows;
  for (int i = 0; i < PQntuples(res); ++i) {
    auto& row = rows.emplace_back();
    for (int j = 0; j < PQnfields(res); ++j) {
      if (PQgetisnull(res, i, j)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(res, i, j), static_cast<size_t>(PQgetlength(res, i, j))));
      }
    }
  }
  return rows;
}

common::Result<OutboxRelation> read_outbox_relation(const CatalogQuery& query,
                                                    std::string_view table, int server_version) {
  auto rows = query(
      "SELECT c.oid, n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = "
      "pg_catalog.to_regclass(" +
      quote_literal(qualified_for_regclass(table)) + ")");
  if (!rows) return rows.error();
  if (rows->empty()) {
    return error(replication_errc::outbox_missing,
                 "outbox table " + std::string(table) +
                     " (outbox.table) does not exist; create it (sql/01-outbox-table.sql) or "
                     "correct outbox.table");
  }
  const auto& row = (*rows)[0];
  OutboxRelation rel;
  auto oid = parse_oid(row[0], "pg_class.oid");
  if (!oid) return oid.error();
  rel.oid = *oid;
  rel.nspname = row[1].value_or("");
  rel.relname = row[2].value_or("");
  rel.relkind = row[3] && row[3]->size() == 1 ? (*row[3])[0] : '?';
  if (rel.relkind != OutboxRelation::kTable && rel.relkind != OutboxRelation::kPartitioned) {
    return error(replication_errc::outbox_missing,
                 "outbox table " + rel.qualified_name() + " (oid " + std::to_string(rel.oid) +
                     ") is not a table (relkind '" + row[3].value_or("?") +
                     "'); logical replication publishes tables and partitioned tables only");
  }
  if (auto r = read_columns(query, rel, server_version); !r) return r.error();
  if (rel.relkind == OutboxRelation::kPartitioned) {
    if (server_version < 130000) {
      return error(replication_errc::publication_invalid,
                   "outbox table " + rel.qualified_name() +
                       " is partitioned, and PostgreSQL before 13 cannot publish a partitioned "
                       "table through its root (publish_via_partition_root)");
    }
    if (auto r = read_partitions(query, rel); !r) return r.error();
  }
  return rel;
}

common::Result<std::optional<std::string>> relation_name(const CatalogQuery& query, RelId oid) {
  auto rows = query(
      "SELECT n.nspname || '.' || c.relname FROM pg_catalog.pg_class c JOIN "
      "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = " +
      std::to_string(oid));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<std::string>();
  return (*rows)[0][0];
}

common::Result<PublicationState> read_publication(const CatalogQuery& query,
                                                  const std::string& publication,
                                                  const OutboxRelation& outbox,
                                                  int server_version) {
  const std::string oid = std::to_string(outbox.oid);
  // publish_via_partition_root came with 13, FOR TABLES IN SCHEMA with 15.
  const bool schemas = server_version >= 150000;
  std::string sql = std::string("SELECT p.pubinsert, ") +
                    (server_version >= 130000 ? "p.pubviaroot" : "false") +
                    ", p.puballtables OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel r "
                    "WHERE r.prpubid = p.oid AND r.prrelid = " +
                    oid + ")";
  if (schemas) {
    sql +=
        " OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace s JOIN "
        "pg_catalog.pg_class c ON c.relnamespace = s.pnnspid WHERE s.pnpubid = p.oid AND "
        "c.oid = " +
        oid + ")";
  }
  sql += ", p.puballtables, ";
  sql += schemas ? "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_namespace s WHERE "
                   "s.pnpubid = p.oid)"
                 : "false";
  sql += " FROM pg_catalog.pg_publication p WHERE p.pubname = " + quote_literal(publication);
  auto rows = query(sql);
  if (!rows) return rows.error();
  PublicationState state;
  if (rows->empty()) return state;
  const auto& row = (*rows)[0];
  if (row.size() != 5) {
    return error(replication_errc::query_failed,
                 "pg_publication: expected 5 columns, got " + std::to_string(row.size()));
  }
  state.exists = true;
  state.publishes_insert = is_true(row[0]);
  state.via_partition_root = is_true(row[1]);
  state.includes_outbox = is_true(row[2]);
  state.scope.all_tables = is_true(row[3]);
  state.scope.schemas = is_true(row[4]);
  return state;
}

common::Result<std::vector<wal::PublishedTable>> read_published_tables(
    const CatalogQuery& query, const std::string& publication) {
  auto rows = query(
      "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_publication_tables t "
      "JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname "
      "JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.tablename "
      "WHERE t.pubname = " +
      quote_literal(publication) + " ORDER BY n.nspname, c.relname");
  if (!rows) return rows.error();
  std::vector<wal::PublishedTable> tables;
  for (const auto& row : *rows) {
    auto oid = parse_oid(row[0], "pg_class.oid");
    if (!oid) return oid.error();
    tables.push_back({*oid, row[1].value_or(""), row[2].value_or("")});
  }
  return tables;
}

namespace {

// The columns read_slot() selects, named: the SELECT list below is built
// from this order, and each field is read by its name.
enum SlotColumn {
  kPlugin,
  kSlotType,
  kInThisDatabase,
  kActivePid,
  kConfirmedFlush,
  kRestartLsn,
  kWalStatus,
  kFailover,
  kSlotColumns,
};

std::string slot_select(const std::string& slot, int server_version) {
  std::string columns[kSlotColumns];
  columns[kPlugin] = "plugin";
  columns[kSlotType] = "slot_type";
  columns[kInThisDatabase] = "database = pg_catalog.current_database()";
  columns[kActivePid] = "active_pid";
  columns[kConfirmedFlush] = "confirmed_flush_lsn";
  columns[kRestartLsn] = "restart_lsn";
  // wal_status came with 13, failover with 17.
  columns[kWalStatus] = server_version >= 130000 ? "wal_status" : "NULL";
  columns[kFailover] = server_version >= 170000 ? "failover" : "false";
  std::string sql = "SELECT ";
  for (int i = 0; i < kSlotColumns; ++i) sql += (i ? ", " : "") + columns[i];
  return sql + " FROM pg_catalog.pg_replication_slots WHERE slot_name = " + quote_literal(slot);
}

common::Result<std::optional<Lsn>> optional_lsn(const std::optional<std::string>& text,
                                                const std::string& what) {
  if (!text) return std::optional<Lsn>();
  auto lsn = parse_server_lsn(*text, what);
  if (!lsn) return lsn.error();
  return std::optional<Lsn>(*lsn);
}

}  // namespace

common::Result<std::optional<ReplicationSlotRow>> read_slot(const CatalogQuery& query, const std::string& slot,
                                                 int server_version) {
  auto rows = query(slot_select(slot, server_version));
  if (!rows) return rows.error();
  if (rows->empty()) return std::optional<ReplicationSlotRow>();
  const auto& row = (*rows)[0];
  if (row.size() != kSlotColumns) {
    return error(replication_errc::query_failed,
                 "pg_replication_slots: expected " + std::to_string(kSlotColumns) +
                     " columns, got " + std::to_string(row.size()));
  }
  ReplicationSlotRow s;
  s.plugin = row[kPlugin].value_or("");
  s.slot_type = row[kSlotType].value_or("");
  s.in_this_database = is_true(row[kInThisDatabase]);
  s.active_pid = row[kActivePid];
  auto confirmed = optional_lsn(row[kConfirmedFlush], "confirmed_flush_lsn of slot " + slot);
  if (!confirmed) return confirmed.error();
  s.confirmed_flush = *confirmed;
  auto restart = optional_lsn(row[kRestartLsn], "restart_lsn of slot " + slot);
  if (!restart) return restart.error();
  s.restart_lsn = *restart;
  s.wal_status = row[kWalStatus].value_or("");
  s.failover = is_true(row[kFailover]);
  return std::optional<ReplicationSlotRow>(std::move(s));
}

common::Result<void> check_publication(const PublicationState& state,
                                       const std::string& publication, const std::string& slot,
                                       const OutboxRelation& outbox, int server_version) {
  const std::string pub = quote_identifier(publication);
  const std::string where = "slot=" + slot + " publication \"" + publication + "\" ";
  if (!state.exists) {
    return error(replication_errc::publication_missing,
                 where +
                     "does not exist. Decoding reads the catalog as of each change, so a "
                     "publication created now is \"not found\" for the changes the slot "
                     "has yet to send: create it, then drop the slot so that the relay "
                     "creates it again (rows committed in between are not published): " +
                     create_publication_sql(publication, outbox) +
                     "; SELECT pg_drop_replication_slot(" + quote_literal(slot) + ")");
  }
  if (!state.publishes_insert) {
    return error(replication_errc::publication_invalid,
                 where +
                     "does not publish inserts, so no outbox row reaches the slot; fix it "
                     "with: ALTER PUBLICATION " +
                     pub + " SET (publish = 'insert') (rows inserted before that are not in the "
                           "stream)");
  }
  if (!state.includes_outbox) {
    return error(replication_errc::publication_invalid,
                 where + "does not include the outbox table " + outbox.qualified_name() + " (oid " +
                     std::to_string(outbox.oid) +
                     "), so its rows never reach the slot; add it with: ALTER PUBLICATION " + pub +
                     " ADD TABLE " + quoted_name(outbox) +
                     " (rows inserted before that are not in the stream)");
  }
  if (outbox.relkind == OutboxRelation::kPartitioned && !state.via_partition_root) {
    if (server_version < 130000) {
      return error(replication_errc::publication_invalid,
                   where + "cannot publish the partitioned outbox table " +
                       outbox.qualified_name() +
                       " through its root: publish_via_partition_root needs PostgreSQL 13 or "
                       "later");
    }
    return error(replication_errc::publication_invalid,
                 where + "includes the partitioned outbox table " + outbox.qualified_name() +
                     " without publish_via_partition_root, so its rows would arrive under each "
                     "partition's name and OID instead of the outbox's; fix it with: ALTER "
                     "PUBLICATION " +
                     pub + " SET (publish_via_partition_root = true)");
  }
  return {};
}

std::string create_publication_sql(const std::string& publication, const OutboxRelation& outbox) {
  // Inserts only: with UPDATE/DELETE published, a table without a replica
  // identity makes the application's cleanup DELETEs fail on the primary.
  // Through the root: otherwise a partition's rows carry the partition's name
  // and OID, which the relay does not map to the outbox.
  return "CREATE PUBLICATION " + quote_identifier(publication) + " FOR TABLE " +
         quoted_name(outbox) + " WITH (publish = 'insert'" +
         (outbox.relkind == OutboxRelation::kPartitioned ? ", publish_via_partition_root = true"
                                                         : "") +
         ")";
}

std::string create_empty_publication_sql(const std::string& publication) {
  return "CREATE PUBLICATION " + quote_identifier(publication);
}

common::Result<std::string> free_publication_name(const CatalogQuery& query,
                                                  const std::string& configured) {
  auto rows = query(
      "SELECT pubname FROM pg_catalog.pg_publication WHERE pubname LIKE 'outbox%pub%'");
  if (!rows) return rows.error();
  const auto taken = [&](const std::string& name) {
    if (name == configured) return true;
    return std::any_of(rows->begin(), rows->end(), [&](const auto& row) {
      return !row.empty() && row[0] == std::optional<std::string>(name);
    });
  };
  if (!taken("outbox_pub")) return std::string("outbox_pub");
  std::string name = "outbox_relay_pub";
  for (int n = 2; taken(name); ++n) name = "outbox_relay_pub_" + std::to_string(n);
  return name;
}

struct CatalogWatch::Conn {
  PGconn* pg = nullptr;
  ~Conn() {
    if (pg) PQfinish(pg);
  }
};

CatalogWatch::CatalogWatch(std::string dsn) : dsn_(std::move(dsn)) {}
CatalogWatch::~CatalogWatch() = default;

common::Result<CatalogRows> CatalogWatch::query(const std::string& sql) {
  if (!conn_) {
    // Our keywords come first so that the same keywords in the DSN win; a
    // check must never hang on a server that stopped answering.
    const char* keywords[] = {"connect_timeout", "options", "fallback_application_name", "dbname",
                              nullptr};
    const char* values[] = {"10", "-c statement_timeout=10000", "outbox-relay-monitor",
                            dsn_.c_str(), nullptr};
    auto c = std::make_unique<Conn>();
    c->pg = PQconnectdbParams(keywords, values, 1);
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) {
      std::string msg = c->pg ? trim(PQerrorMessage(c->pg)) : "out of memory";
      return error(replication_errc::connect_failed, config::redact_libpq_message(msg, dsn_));
    }
    server_version_ = PQserverVersion(c->pg);
    conn_ = std::move(c);
  }
  auto rows = run_simple_query(conn_->pg, sql);
  if (!rows) conn_.reset();  // reconnect next time: the connection may be gone
  return rows;
}

common::Result<void> CatalogWatch::check(std::string_view table, const std::string& publication,
                                         const std::string& slot, RelId streamed_oid) {
  const CatalogQuery q = [this](const std::string& sql) { return query(sql); };
  // The version is known once connected; the first query connects.
  if (auto probe = q("SELECT 1"); !probe) return probe.error();
  auto outbox = read_outbox_relation(q, table, server_version_);
  if (!outbox && outbox.error().code == replication_errc::outbox_missing && streamed_oid != 0) {
    auto now = relation_name(q, streamed_oid);
    if (!now) return now.error();
    return error(replication_errc::outbox_missing,
                 "slot=" + slot + " outbox table " + std::string(table) +
                     " no longer exists: the table the slot streams (oid " +
                     std::to_string(streamed_oid) + ") " +
                     (*now ? "is now named " + **now : std::string("was dropped")) +
                     "; nothing after the current position is confirmed. Restore the table's "
                     "name, or set outbox.table to its new name, and restart");
  }
  if (!outbox) return outbox.error();
  if (streamed_oid != 0 && outbox->oid != streamed_oid) {
    auto old = relation_name(q, streamed_oid);
    if (!old) return old.error();
    return error(replication_errc::outbox_replaced,
                 "slot=" + slot + " outbox table " + outbox->qualified_name() + " is now oid " +
                     std::to_string(outbox->oid) + ", not the oid " + std::to_string(streamed_oid) +
                     " the slot streams (" +
                     (*old ? "now named " + **old : std::string("dropped")) +
                     "): the table was swapped, and rows written to the new table are not in "
                     "the stream unless it is in publication \"" +
                     publication +
                     "\"; restart the relay to check the new table, after adding it with: "
                     "ALTER PUBLICATION " +
                     quote_identifier(publication) + " ADD TABLE " + quoted_name(*outbox));
  }
  auto state = read_publication(q, publication, *outbox, server_version_);
  if (!state) return state.error();
  return check_publication(*state, publication, slot, *outbox, server_version_);
}

bool is_catalog_verdict(const common::Error& e) {
  return e.code == replication_errc::outbox_missing ||
         e.code == replication_errc::outbox_replaced ||
         e.code == replication_errc::publication_missing ||
         e.code == replication_errc::publication_invalid;
}

}  // namespace pg
