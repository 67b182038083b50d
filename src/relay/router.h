#pragma once

// Routing: one outbox row becomes one Kafka record (ARCHITECTURE.md,
// "Routing").
//
// The router is configured once from outbox.*, then learns each relation
// from its Relation message (bind) and turns Insert tuples into records
// (route). Columns are mapped by name, never by position: dropped and
// generated columns are absent from the Relation message, so positions shift
// when the table changes, and a Relation message arrives again whenever it
// does (ALTER TABLE mid-stream).
//
// route() separates two kinds of failure. A bad row (null topic, headers that
// are not the documented JSON, null payload) is the data's fault: it comes
// back as a BadRow for the bad-row policy, with what could be read of it. A
// protocol failure (an Insert for a relation never bound, a tuple of the
// wrong shape, a value not in its type's wire format) comes back as an
// error: the stream is not what the relay can read, and skipping the row
// would lose it.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "config/config.h"
#include "relay/json_headers.h"
#include "relay/record.h"
#include "relay/value_codec.h"
#include "wal/lsn.h"

namespace relay {

// A Relation message, as much of it as routing needs.
struct RelationDesc {
  wal::RelId relid;
  std::string nspname;
  std::string relname;
  std::vector<ColumnDesc> columns;
};

// Where a row sits in the stream.
struct RowContext {
  // The transaction's commit LSN: Begin's final_lsn, equal to the Commit's
  // commit_lsn. Consumers deduplicate on (outbox-id, outbox-lsn).
  wal::Lsn commit_lsn;
  wal::Lsn lsn;  // the Insert message's own position, for messages
  wal::Xid xid;
  wal::PgTimestamp commit_time;
};

// A row that cannot become a record as it is, with what could be read of it
// so that the dead-letter record carries it.
struct BadRow {
  std::string reason;        // one line, for the outbox-error header and logs
  std::string row_id;        // empty when the id column is null
  std::string details;       // where the reason came from: the column and its type
  std::string source_table;  // "schema.table" as the Relation message named it
  // A logical decoding message's prefix, for a bad message (source_table is
  // then empty).
  std::optional<std::string> message_prefix;
  // The topic the row names, valid or not; nullopt when it names none (a
  // null topic column or template placeholder) or it could not be read.
  std::optional<std::string> original_topic;
  std::optional<std::string> payload;  // when the payload was read
};

using RouteOutcome = std::variant<OutboxRecord, BadRow>;

// A table name as the catalog spells it.
struct QualifiedName {
  std::string nspname;
  std::string relname;
  bool operator==(const QualifiedName&) const = default;
};

// Resolves "table" or "schema.table" by SQL identifier rules, as in the
// CREATE TABLE that made it: unquoted names fold to lower case, "quoted" ones
// are taken as written; an unqualified name is in schema public. `what`
// names the setting in errors.
common::Result<QualifiedName> resolve_table_name(std::string_view text, std::string_view what);

// The headers the relay adds to every record, after the row's own.
inline constexpr std::string_view kHeaderId = "outbox-id";
inline constexpr std::string_view kHeaderLsn = "outbox-lsn";
inline constexpr std::string_view kHeaderXid = "outbox-xid";
// Dead-letter records only.
inline constexpr std::string_view kHeaderError = "outbox-error";
inline constexpr std::string_view kHeaderSourceTable = "outbox-source-table";
// Instead of outbox-source-table for a logical decoding message.
inline constexpr std::string_view kHeaderMessagePrefix = "outbox-message-prefix";
inline constexpr std::string_view kHeaderOriginalTopic = "outbox-original-topic";

// Appends outbox-id, outbox-lsn and outbox-xid, the headers every record
// carries after its own. Every record of a transaction has the same
// outbox-lsn and outbox-xid, so their text is formatted once per
// transaction: per record it is measurable at the rates the relay targets.
class RelayHeaders {
 public:
  void append(std::vector<Header>& headers, std::string id, const RowContext& ctx);

 private:
  wal::Lsn commit_lsn_;
  wal::Xid xid_ = 0;
  std::string lsn_text_;
  std::string xid_text_;
};

class Router {
 public:
  // Resolves the configured names. Table and column names follow SQL
  // identifier rules, as in the CREATE TABLE that made them: unquoted names
  // are folded to lower case, "double-quoted" ones are taken as written. An
  // unqualified table is in schema public.
  static common::Result<Router> create(const config::OutboxConfig& cfg);

  // Whether the relation is the configured outbox table.
  bool matches(const RelationDesc& relation) const;

  // Maps the configured columns onto the relation's, replacing any earlier
  // mapping for its relid. id, payload and (without a topic_template) topic
  // must exist; key, partition and headers may be absent only while they are
  // left at their default names; header_columns and template placeholders
  // must exist; every mapped column must have a type its role can read.
  // An optional column that an earlier Relation message for the same relid
  // had must still be there: dropping it would silently change keys,
  // partitions or headers mid-stream. On
  // failure every problem is reported and the relid is left unbound.
  common::Result<void> bind(const RelationDesc& relation);

  // Forgets every relation: after a reconnect the server sends Relation
  // messages again before any row.
  void clear_bindings() { bindings_.clear(); }

  // One Insert's new tuple. Non-const: the header parser's buffers and the
  // caches below are reused from row to row.
  common::Result<RouteOutcome> route(wal::RelId relid, std::span<const RawValue> tuple,
                                     const RowContext& ctx);

  // The record that carries a bad row to the dead-letter topic: keyed by the
  // row id, with the original payload when it was readable, and headers
  // saying why and where it came from. outbox-original-topic is always
  // there, with a null value when the row names no topic.
  static OutboxRecord dead_letter(const BadRow& bad, const RowContext& ctx,
                                  const std::string& dlq_topic);

  // A record the producer has copied, handed back so that the next row is
  // built in its buffers instead of new ones.
  void recycle(OutboxRecord&& spent) { spare_ = std::move(spent); }

 private:
  static constexpr int kAbsent = -1;

  // A column of the configured mapping, before a relation is known.
  struct RoleSpec {
    std::string column;     // resolved name
    bool optional = false;  // may be missing from the relation
  };

  // One piece of a topic_template: literal text or a column.
  struct TemplatePiece {
    std::string literal;
    std::string column;   // resolved name; empty for a literal
    int index = kAbsent;  // the column's position once bound
  };

  // A header_columns entry: the resolved column, and the header's name
  // (the column's when not configured).
  struct HeaderSpec {
    std::string column;
    std::string header;
  };
  struct BoundHeader {
    int index = kAbsent;
    std::string header;
  };

  struct Binding {
    wal::RelId relid = 0;
    std::string table;  // "schema.table", for messages
    std::vector<ColumnDesc> columns;
    int id = kAbsent;
    int topic = kAbsent;
    int key = kAbsent;
    int partition = kAbsent;
    int headers = kAbsent;
    int payload = kAbsent;
    std::vector<TemplatePiece> topic_template;
    std::vector<BoundHeader> header_columns;
  };

  class RowBuilder;

  Router() = default;

  const Binding* find_binding(wal::RelId relid) const;

  std::string nspname_;
  std::string relname_;
  RoleSpec id_;
  RoleSpec topic_;
  RoleSpec key_;
  RoleSpec partition_;
  RoleSpec headers_;
  RoleSpec payload_;
  std::optional<std::vector<TemplatePiece>> topic_template_;
  std::vector<HeaderSpec> header_columns_;
  config::NullPayloadPolicy null_payload_ = config::NullPayloadPolicy::kDeadLetter;

  // Usually one entry: a vector beats a hash map for a handful of relids.
  std::vector<Binding> bindings_;
  // Optional columns each relid has had, kept across clear_bindings(): once
  // a key, partition or headers column has been read, a relation without it
  // is a dropped column, not a table that never had one.
  std::vector<std::pair<wal::RelId, std::vector<std::string>>> seen_optional_;
  JsonHeaderReader header_reader_;

  // Caches for the hot path, valid across rows. Consecutive rows mostly go
  // to one topic; validating it per row is measurable at the rates the relay
  // targets.
  RelayHeaders relay_headers_;
  std::string last_valid_topic_;
  OutboxRecord spare_;
};

}  // namespace relay
