#pragma once

// The catalog queries behind the relay's checks of the outbox and its
// publication, shared by the replication connection (at every connect, before
// START_REPLICATION: a walsender in database mode runs plain SQL over the
// simple-query protocol) and the monitor's ordinary connection (periodically
// while streaming: ALTER PUBLICATION ... DROP TABLE leaves no trace in the
// stream, the server just stops sending the table).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "pg/wal_types.h"

struct pg_conn;

namespace pg {

using CatalogRows = std::vector<std::vector<std::optional<std::string>>>;
using CatalogQuery = std::function<common::Result<CatalogRows>(const std::string& sql)>;

// Runs one statement over the simple-query protocol. `expect_rows` false: a
// command (CREATE ...) that returns none. SQLSTATE 55006 (object in use)
// becomes replication_errc::slot_in_use, anything else query_failed.
common::Result<CatalogRows> run_simple_query(pg_conn* conn, const std::string& sql,
                                             bool expect_rows = true);

// Resolves outbox.table as CREATE TABLE would have (unquoted names fold to
// lower case; an unqualified name is in schema public) and reads what the
// relay needs of it. replication_errc::outbox_missing when no such table.
common::Result<OutboxRelation> read_outbox_relation(const CatalogQuery& query,
                                                    std::string_view table, int server_version);

// The relation with this OID, as "schema.table"; nullopt when it was dropped.
common::Result<std::optional<std::string>> relation_name(const CatalogQuery& query, RelId oid);

struct PublicationState {
  bool exists = false;
  bool publishes_insert = false;
  bool via_partition_root = false;
  // The outbox is in the publication: listed by OID, its schema is
  // (FOR TABLES IN SCHEMA), or the publication is FOR ALL TABLES.
  bool includes_outbox = false;
  // FOR ALL TABLES, FOR TABLES IN SCHEMA; the tables such a publication
  // covers are read by read_published_tables().
  wal::PublicationScope scope;
};

common::Result<PublicationState> read_publication(const CatalogQuery& query,
                                                  const std::string& publication,
                                                  const OutboxRelation& outbox, int server_version);

// Every table the publication publishes now (pg_publication_tables), by
// schema and name.
common::Result<std::vector<wal::PublishedTable>> read_published_tables(
    const CatalogQuery& query, const std::string& publication);

// A replication slot as pg_replication_slots shows it.
struct ReplicationSlotRow {
  std::string plugin;
  std::string slot_type;
  bool in_this_database = false;
  std::optional<std::string> active_pid;  // the backend streaming it
  std::optional<Lsn> confirmed_flush;
  std::optional<Lsn> restart_lsn;
  std::string wal_status;  // empty before PostgreSQL 13
  bool failover = false;   // PostgreSQL 17+

  bool lost() const { return wal_status == "lost"; }
};

// The row of pg_replication_slots for `slot`; nullopt when there is none.
common::Result<std::optional<ReplicationSlotRow>> read_slot(const CatalogQuery& query, const std::string& slot,
                                                 int server_version);

// Whether an existing publication delivers every outbox row to the slot
// under the outbox's own OID; otherwise replication_errc::publication_invalid
// with the SQL that fixes it.
common::Result<void> check_publication(const PublicationState& state,
                                       const std::string& publication, const std::string& slot,
                                       const OutboxRelation& outbox, int server_version);

// CREATE PUBLICATION for the outbox: inserts only, and through the root of a
// partitioned outbox.
std::string create_publication_sql(const std::string& publication, const OutboxRelation& outbox);
// CREATE PUBLICATION without tables, for outbox.source: messages (pgoutput
// sends messages whatever the publication holds).
std::string create_empty_publication_sql(const std::string& publication);

// A name no publication has yet, for one of the relay's own to suggest in
// place of `configured` when that one publishes more than the outbox:
// sql/01-outbox-table.sql's outbox_pub when it is free, else outbox_relay_pub,
// outbox_relay_pub_2, ...
common::Result<std::string> free_publication_name(const CatalogQuery& query,
                                                  const std::string& configured);

// The periodic check, on its own ordinary connection (connects on first use
// and again after a failure). Errors with replication_errc::outbox_missing,
// outbox_replaced, publication_missing or publication_invalid are verdicts:
// the stream no longer carries the outbox. connect_failed and query_failed
// are the check's own trouble, to be retried.
class CatalogWatch {
 public:
  explicit CatalogWatch(std::string dsn);
  ~CatalogWatch();
  CatalogWatch(const CatalogWatch&) = delete;
  CatalogWatch& operator=(const CatalogWatch&) = delete;

  // `streamed_oid`: the outbox OID the stream is judged against; 0 when not
  // known yet (only name and publication are checked then).
  common::Result<void> check(std::string_view table, const std::string& publication,
                             const std::string& slot, RelId streamed_oid);

 private:
  common::Result<CatalogRows> query(const std::string& sql);

  struct Conn;
  std::string dsn_;
  std::unique_ptr<Conn> conn_;
  int server_version_ = 0;
};

// True for the codes CatalogWatch::check returns as verdicts.
bool is_catalog_verdict(const common::Error& e);

}  // namespace pg
