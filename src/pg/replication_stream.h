#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "common/result.h"
#include "pg/replication_catalog.h"
#include "pg/wal_safety.h"
#include "pg/wal_types.h"
#include "wal/timeline.h"

namespace pg {

enum class replication_errc {
  connect_failed = 1,
  server_unsupported,
  wal_level_not_logical,
  publication_missing,
  publication_invalid,
  slot_missing,
  slot_invalid,
  slot_lost,
  slot_in_use,  // SQLSTATE 55006: another walsender still holds the slot
  query_failed,
  copy_failed,
  copy_ended,
  send_failed,
  dsn_invalid,
  outbox_missing,   // outbox.table names no table
  outbox_replaced,  // outbox.table names another table than the one streamed
  lsn_invalid,      // the server sent an LSN that does not parse
};

const std::error_category& replication_category();
inline std::error_code make_error_code(replication_errc e) {
  return {static_cast<int>(e), replication_category()};
}

struct ReplicationOptions {
  std::string dsn;  // may contain a password: never logged
  std::string slot;
  std::string publication;
  std::string table;  // schema-qualified outbox table, for CREATE PUBLICATION
  // false (outbox.source: messages): there is no outbox table to read or to
  // find in the publication, which only has to exist, and is created empty.
  bool outbox_table = true;
  bool create_publication = true;
  bool binary = true;
  // Create the slot with FAILOVER on PostgreSQL 17 and later, so that a
  // standby with sync_replication_slots keeps a copy to resume from after a
  // promotion. Harmless on a primary without standbys; skipped on a standby,
  // which cannot create one.
  bool failover_slot = true;
  std::string application_name = "outbox-relay";
};

// The slot the relay streams from, once used or created.
struct SlotState {
  Lsn confirmed_flush;
  Lsn restart_lsn;
  bool created = false;
  std::string wal_status;
  bool failover = false;  // pg_replication_slots.failover (PostgreSQL 17+)
};

// One CopyData message from the server, owning libpq's buffer.
class CopyBuffer {
 public:
  CopyBuffer() = default;
  CopyBuffer(char* data, int size) : data_(data), size_(size) {}
  CopyBuffer(CopyBuffer&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  CopyBuffer& operator=(CopyBuffer&& o) noexcept;
  CopyBuffer(const CopyBuffer&) = delete;
  CopyBuffer& operator=(const CopyBuffer&) = delete;
  ~CopyBuffer();

  std::string_view view() const { return {data_, static_cast<size_t>(size_)}; }

 private:
  char* data_ = nullptr;
  int size_ = 0;
};

// A logical replication connection (replication=database) to one slot. Only
// this class and its .cpp know libpq.
class ReplicationStream {
 public:
  static common::Result<std::unique_ptr<ReplicationStream>> connect(const ReplicationOptions& o);
  ~ReplicationStream();

  int server_version() const { return server_version_; }
  // IDENTIFY_SYSTEM's systemid: the cluster's identity since initdb, kept
  // by physical copies of it (standbys, base backups).
  uint64_t system_identifier() const { return system_identifier_; }
  // The settings that decide whether the server may invalidate the slot.
  const WalSafetySettings& wal_safety() const { return wal_safety_; }
  // IDENTIFY_SYSTEM's timeline and WAL flush position at connect: a timeline
  // above 1 means the server was promoted at some point.
  const std::string& timeline() const { return timeline_; }
  // The same timeline as a number; unset when the server sent none.
  std::optional<wal::TimelineId> timeline_id() const { return timeline_id_; }
  Lsn identified_wal_end() const { return identified_wal_end_; }
  // TIMELINE_HISTORY `tli`: the content of the server's history file for
  // that timeline (wal::parse_timeline_history reads it). Timeline 1 has
  // none.
  common::Result<std::string> timeline_history(wal::TimelineId tli);

  // The slot's row in pg_replication_slots now; nullopt when it is missing.
  common::Result<std::optional<ReplicationSlotRow>> read_slot();

  // Reads the outbox from the catalog and checks that the publication
  // delivers it, creating the publication only when the slot does not exist
  // yet (decoding reads the catalog as of each change, so a publication
  // created after the slot is "not found" for earlier changes).
  common::Result<void> prepare_catalog(bool slot_exists);
  // The outbox as the catalog described it in prepare_catalog(); empty (oid
  // 0) without an outbox table.
  const OutboxRelation& outbox() const { return outbox_; }
  // What the publication covers beyond the tables it lists, with the tables
  // it publishes when it covers more (FOR ALL TABLES, FOR TABLES IN SCHEMA).
  const wal::PublicationScope& publication_scope() const { return publication_scope_; }
  // For such a publication, a name no publication has yet, to suggest for
  // one of the relay's own; empty otherwise.
  const std::string& free_publication_name() const { return free_publication_name_; }

  // The slot step the resume policy decided (relay::ResumePolicy): stream
  // from the slot as it is, create it, or drop a lost one and create it
  // again. Each fails with slot_in_use while another backend holds the
  // slot, and with slot_invalid when it is not a logical pgoutput slot of
  // this database.
  common::Result<SlotState> use_slot();
  common::Result<SlotState> create_slot();
  common::Result<SlotState> recreate_lost_slot();

  // The pgoutput protocol version START_REPLICATION asks for, and so the one
  // the decoder must read. Version 1 carries all the relay reads; 2 and
  // later add streamed and two-phase transactions, which it never asks for.
  static constexpr int kProtoVersion = 1;

  // START_REPLICATION at `from` (0/0 means the slot's confirmed_flush_lsn; the
  // server starts at max(from, confirmed_flush_lsn) anyway), with logical
  // decoding messages from PostgreSQL 14 on.
  common::Result<void> start(Lsn from, bool binary);

  int socket() const;

  // Terminates the backend holding the slot, but only if its
  // application_name starts with `relay_prefix`: another relay that stopped
  // answering, never an unrelated consumer of the slot. Returns the pid
  // terminated, or nullopt when the slot is free or held by something else.
  common::Result<std::optional<std::string>> terminate_relay_holder(
      std::string_view relay_prefix);

  // Non-blocking. An empty optional means: wait for the socket.
  common::Result<std::optional<CopyBuffer>> read();

  // Queues a standby status update; call flush() until it reports done.
  common::Result<void> send_status(Lsn write, Lsn flush, Lsn apply, PgTimestamp now, bool reply);
  // True when all queued output reached the kernel.
  common::Result<bool> flush();

  // Ends the copy cleanly (CopyDone) so the walsender releases the slot now
  // rather than after wal_sender_timeout.
  void close();
  // Drops a connection whose network path is presumed dead: nothing would
  // answer a CopyDone, and a blocking flush could wait for TCP to give up.
  void abandon();

 private:
  ReplicationStream() = default;
  common::Result<void> check_server();
  common::Result<void> read_wal_safety();
  common::Result<void> ensure_publication(bool slot_exists);
  common::Result<void> ensure_message_publication(bool slot_exists);
  common::Result<void> read_scope(wal::PublicationScope scope);
  common::Result<bool> wants_failover_slot();
  void await_copy_done();

  struct Conn;
  std::unique_ptr<Conn> conn_;
  ReplicationOptions options_;
  int server_version_ = 0;
  uint64_t system_identifier_ = 0;
  WalSafetySettings wal_safety_;
  std::string timeline_;
  std::optional<wal::TimelineId> timeline_id_;
  Lsn identified_wal_end_;
  OutboxRelation outbox_;
  wal::PublicationScope publication_scope_;
  std::string free_publication_name_;
  bool streaming_ = false;
};

// Whether libpq can parse `dsn`, checked before the first connection: a
// malformed DSN is a configuration error, not a reason to reconnect forever.
// The error quotes no password (config::redact_libpq_message).
common::Result<void> check_conninfo(const std::string& dsn);

// An LSN the server sent as text; replication_errc::lsn_invalid naming the
// text and where it came from when it does not parse, never 0/0.
common::Result<Lsn> parse_server_lsn(std::string_view text, std::string_view what);

std::string quote_identifier(std::string_view ident);
std::string quote_literal(std::string_view text);

}  // namespace pg

template <>
struct std::is_error_code_enum<pg::replication_errc> : std::true_type {};
