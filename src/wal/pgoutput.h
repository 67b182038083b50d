#pragma once

// Decoder for the messages of PostgreSQL's pgoutput plugin, protocol versions
// 1 to 4 ("Logical Replication Message Formats" in the PostgreSQL docs;
// written by src/backend/replication/logical/proto.c). One XLogData carries
// exactly one message. Integers are big-endian; String is NUL-terminated;
// LSNs are Int64; times are Int64 microseconds since 2000-01-01.
//
//   'B' Begin              final_lsn commit_time xid
//   'C' Commit             flags(0) commit_lsn end_lsn commit_time
//   'O' Origin             commit_lsn name
//   'R' Relation     [xid] relid nspname relname replica_identity
//                          Int16 ncolumns × (flags name type_oid type_modifier)
//   'Y' Type         [xid] oid nspname typname
//   'I' Insert       [xid] relid 'N' TupleData
//   'U' Update       [xid] relid [('K' | 'O') TupleData] 'N' TupleData
//   'D' Delete       [xid] relid ('K' | 'O') TupleData
//   'T' Truncate     [xid] Int32 nrelids, options, nrelids × relid
//   'M' Message      [xid] flags lsn prefix Int32 length, content
//   proto >= 2, streaming:
//   'S' Stream Start       xid first_segment
//   'E' Stream Stop
//   'c' Stream Commit      xid flags(0) commit_lsn end_lsn commit_time
//   'A' Stream Abort       xid subxid [abort_lsn abort_time: proto 4, streaming=parallel]
//   proto >= 3, two-phase:
//   'b' Begin Prepare      prepare_lsn end_lsn prepare_time xid gid
//   'P' Prepare            flags(0) prepare_lsn end_lsn prepare_time xid gid
//   'K' Commit Prepared    flags(0) commit_lsn end_lsn commit_time xid gid
//   'r' Rollback Prepared  flags(0) prepare_end_lsn rollback_end_lsn prepare_time
//                          rollback_time xid gid
//   'p' Stream Prepare     flags(0) prepare_lsn end_lsn prepare_time xid gid
//
//   TupleData: Int16 ncolumns, then per column one kind byte:
//     'n' null, 'u' unchanged TOAST (no value), 't' text or 'b' binary
//     followed by Int32 length and that many bytes.
//
// [xid] is sent only inside a streamed chunk, between Stream Start and Stream
// Stop; the decoder tracks that itself. It is the xid of the (sub)transaction
// that made the change, which need not be the xid of the Stream Start.
//
// Lifetime: column values and a Message's prefix and content are views into
// the buffer given to decode(); an Event borrows that buffer and must not
// outlive it. Names (relation, column, type, origin, gid) are owned strings,
// because consumers cache Relation and Type messages past the buffer.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"
#include "wal/errc.h"
#include "wal/lsn.h"

namespace wal {

// The TupleData column kinds (LOGICALREP_COLUMN_*).
enum class ColumnKind : char {
  null = 'n',
  // The value is stored out of line and did not change. Only an Update's new
  // tuple can carry it; the consumer must keep the previous value.
  unchanged_toast = 'u',
  text = 't',
  binary = 'b',
};

struct ColumnValue {
  ColumnKind kind = ColumnKind::null;
  // Set for text and binary only; borrows the decoded buffer.
  std::string_view data;
};

// One row, in the column order of the latest Relation message for its table.
struct TupleData {
  std::vector<ColumnValue> values;
};

// pg_class.relreplident: which old values Update and Delete carry.
enum class ReplicaIdentity : char {
  default_identity = 'd',  // the primary key
  nothing = 'n',
  full = 'f',
  index = 'i',
};

// The tuple that precedes an Update's new tuple, or the one a Delete carries.
enum class OldTupleKind : char {
  key = 'K',  // replica identity columns only; the others are null
  old = 'O',  // the whole old row (REPLICA IDENTITY FULL)
};

struct Begin {
  static constexpr char kType = 'B';
  Lsn final_lsn;  // the commit record's LSN
  PgTimestamp commit_time;
  Xid xid = 0;
};

struct Commit {
  static constexpr char kType = 'C';
  uint8_t flags = 0;
  Lsn commit_lsn;
  // The end of the commit record: the position to confirm, where a restart
  // resumes.
  Lsn end_lsn;
  PgTimestamp commit_time;
};

struct Origin {
  static constexpr char kType = 'O';
  Lsn commit_lsn;  // on the origin server; proto.c reads it as origin_lsn
  std::string name;
};

struct Column {
  static constexpr uint8_t kFlagKey = 1;  // LOGICALREP_IS_REPLICA_IDENTITY
  uint8_t flags = 0;
  std::string name;
  Oid type_oid = 0;
  int32_t type_modifier = -1;

  bool is_key() const { return (flags & kFlagKey) != 0; }
};

// Sent before the first change to a table in a session and again whenever
// its definition changes (ALTER TABLE mid-stream). Dropped and generated
// columns are absent: map values to columns by position in this list.
struct Relation {
  static constexpr char kType = 'R';
  std::optional<Xid> xid;  // streamed chunks only
  RelId relid = 0;
  std::string nspname;  // "pg_catalog" when the server sent an empty string
  std::string relname;
  ReplicaIdentity replica_identity = ReplicaIdentity::default_identity;
  std::vector<Column> columns;
};

// Describes a column type outside the built-in catalog (enum, composite,
// domain over one), sent before the Relation that uses it.
struct Type {
  static constexpr char kType = 'Y';
  std::optional<Xid> xid;
  Oid oid = 0;
  std::string nspname;
  std::string typname;
};

struct Insert {
  static constexpr char kType = 'I';
  std::optional<Xid> xid;
  RelId relid = 0;
  TupleData new_tuple;
};

struct Update {
  static constexpr char kType = 'U';
  std::optional<Xid> xid;
  RelId relid = 0;
  // Sent when the key changed or the table has REPLICA IDENTITY FULL;
  // old_tuple is empty otherwise.
  std::optional<OldTupleKind> old_kind;
  TupleData old_tuple;
  TupleData new_tuple;
};

struct Delete {
  static constexpr char kType = 'D';
  std::optional<Xid> xid;
  RelId relid = 0;
  OldTupleKind old_kind = OldTupleKind::key;
  TupleData old_tuple;
};

struct Truncate {
  static constexpr char kType = 'T';
  static constexpr uint8_t kCascade = 1;      // TRUNCATE_CASCADE
  static constexpr uint8_t kRestartSeqs = 2;  // TRUNCATE_RESTART_SEQS
  std::optional<Xid> xid;
  uint8_t options = 0;
  std::vector<RelId> relids;

  bool cascade() const { return (options & kCascade) != 0; }
  bool restart_seqs() const { return (options & kRestartSeqs) != 0; }
};

// pg_logical_emit_message(). A non-transactional one arrives at once,
// outside any Begin/Commit, even if its transaction later aborts.
struct Message {
  static constexpr char kType = 'M';
  static constexpr uint8_t kTransactional = 1;
  std::optional<Xid> xid;
  uint8_t flags = 0;
  Lsn lsn;
  std::string_view prefix;   // borrows the decoded buffer
  std::string_view content;  // borrows the decoded buffer

  bool transactional() const { return (flags & kTransactional) != 0; }
};

struct StreamStart {
  static constexpr char kType = 'S';
  Xid xid = 0;
  bool first_segment = false;
};

struct StreamStop {
  static constexpr char kType = 'E';
};

struct StreamCommit {
  static constexpr char kType = 'c';
  Xid xid = 0;
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time;
};

// xid == subxid aborts the whole streamed transaction; otherwise only the
// subtransaction subxid and the changes it streamed are rolled back.
struct StreamAbort {
  static constexpr char kType = 'A';
  Xid xid = 0;
  Xid subxid = 0;
  // Sent with proto_version 4 and streaming = parallel only.
  std::optional<Lsn> abort_lsn;
  std::optional<PgTimestamp> abort_time;
};

struct BeginPrepare {
  static constexpr char kType = 'b';
  Lsn prepare_lsn;
  Lsn end_lsn;
  PgTimestamp prepare_time;
  Xid xid = 0;
  std::string gid;
};

struct Prepare {
  static constexpr char kType = 'P';
  uint8_t flags = 0;
  Lsn prepare_lsn;
  Lsn end_lsn;
  PgTimestamp prepare_time;
  Xid xid = 0;
  std::string gid;
};

struct CommitPrepared {
  static constexpr char kType = 'K';
  uint8_t flags = 0;
  Lsn commit_lsn;
  Lsn end_lsn;
  PgTimestamp commit_time;
  Xid xid = 0;
  std::string gid;
};

struct RollbackPrepared {
  static constexpr char kType = 'r';
  uint8_t flags = 0;
  Lsn prepare_end_lsn;
  Lsn rollback_end_lsn;
  PgTimestamp prepare_time;
  PgTimestamp rollback_time;
  Xid xid = 0;
  std::string gid;
};

// A streamed transaction's PREPARE TRANSACTION: same layout as Prepare.
struct StreamPrepare {
  static constexpr char kType = 'p';
  uint8_t flags = 0;
  Lsn prepare_lsn;
  Lsn end_lsn;
  PgTimestamp prepare_time;
  Xid xid = 0;
  std::string gid;
};

using Event = std::variant<Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
                           Message, StreamStart, StreamStop, StreamCommit, StreamAbort,
                           BeginPrepare, Prepare, CommitPrepared, RollbackPrepared, StreamPrepare>;

// "Begin", "Stream Abort", ...; "unknown" for a byte pgoutput does not send.
std::string_view message_type_name(char type);

// The type byte of a decoded event.
char message_type(const Event& event);

struct DecoderOptions {
  int proto_version = 1;
  // The session asked for streaming = parallel (PostgreSQL 16+). With
  // proto_version 4, Stream Abort then carries abort_lsn and abort_time.
  bool parallel_streaming = false;
};

// Bytes in, typed messages out: no I/O, clock or logging. Its only state is
// whether a streamed chunk is open, which decides whether changes carry an
// xid. Reset it (or make a new decoder) on every new connection.
class PgOutputDecoder {
 public:
  static constexpr int kMinProtoVersion = 1;
  static constexpr int kMaxProtoVersion = 4;

  // proto_version is what START_REPLICATION asked for; outside
  // [kMinProtoVersion, kMaxProtoVersion] it is a bug of the caller's.
  explicit PgOutputDecoder(int proto_version);
  explicit PgOutputDecoder(DecoderOptions options);

  // One pgoutput message (the payload of one XLogData). An error names the
  // message and the offending byte or field; the caller adds the LSN. A
  // failed decode leaves the decoder's state as it was.
  common::Result<Event> decode(std::string_view message);
  common::Result<Event> decode(std::span<const std::byte> message);

  int proto_version() const { return options_.proto_version; }
  // Between Stream Start and Stream Stop.
  bool in_stream() const { return in_stream_; }
  // The xid of the open Stream Start; meaningful only while in_stream().
  Xid stream_xid() const { return stream_xid_; }
  void reset();

 private:
  DecoderOptions options_;
  bool in_stream_ = false;
  Xid stream_xid_ = 0;
};

}  // namespace wal
