#include "wal/pgoutput.h"

#include <string>
#include <utility>

#include "wal/byte_reader.h"

namespace wal {

namespace {

// What a message body's layout depends on besides its own bytes.
struct Context {
  int proto_version = 1;
  bool parallel_streaming = false;
  bool in_stream = false;
  Xid stream_xid = 0;
};

// pgoutput sends an empty namespace for pg_catalog to save space
// (logicalrep_write_namespace).
constexpr std::string_view kCatalogNamespace = "pg_catalog";

// decode() prefixes every error with the message type's name.
common::Result<void> require_proto(const Context& c, int min_version) {
  if (c.proto_version >= min_version) return {};
  return make_error(errc::unsupported, "requires proto_version >= " + std::to_string(min_version) +
                                           "; this session negotiated " +
                                           std::to_string(c.proto_version));
}

// A streamed chunk holds only changes of the streamed transaction; the
// walsender writes Stream Start, the chunk and Stream Stop in one go, so a
// transaction boundary inside means we lost track of the stream.
common::Result<void> require_outside_stream(const Context& c) {
  if (!c.in_stream) return {};
  return make_error(errc::protocol_violation, "not allowed inside the streamed chunk of xid " +
                                                  std::to_string(c.stream_xid) +
                                                  " (no Stream Stop)");
}

common::Result<Xid> read_valid_xid(ByteReader& r, std::string_view what) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(Xid xid, r.read_u32(what));
  if (xid == 0) {
    return make_error(errc::invalid_value, std::string(what) + " at offset " + std::to_string(at) +
                                               " is 0 (InvalidTransactionId)");
  }
  return xid;
}

// Changes in a streamed chunk lead with the xid of the (sub)transaction that
// made them (pgoutput_change: "if (in_streaming) xid = change->txn->xid").
common::Result<std::optional<Xid>> read_change_xid(ByteReader& r, const Context& c) {
  if (!c.in_stream) return std::optional<Xid>();
  WAL_TRY_ASSIGN(Xid xid, read_valid_xid(r, "xid"));
  return std::optional<Xid>(xid);
}

// proto.c rejects these unset ("final_lsn not set in begin message"): an
// unset position would later be confirmed to the server as 0/0.
common::Result<Lsn> read_set_lsn(ByteReader& r, std::string_view what) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(Lsn lsn, r.read_lsn(what));
  if (lsn.is_zero()) {
    return make_error(errc::invalid_value,
                      std::string(what) + " at offset " + std::to_string(at) + " is not set (0/0)");
  }
  return lsn;
}

// Flags that every PostgreSQL version so far sends as 0; proto.c fails on
// anything else ("unrecognized flags %u in commit message").
common::Result<uint8_t> read_zero_flags(ByteReader& r) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t flags, r.read_u8("flags"));
  if (flags != 0) {
    return make_error(errc::invalid_value, "unrecognized flags " + describe_byte(flags) +
                                               " at offset " + std::to_string(at));
  }
  return flags;
}

// Flags with a defined set of bits: an unknown bit changes meaning we cannot
// know, so it is an error rather than ignored.
common::Result<uint8_t> read_flags(ByteReader& r, uint8_t known_bits) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t flags, r.read_u8("flags"));
  if ((flags & ~known_bits) != 0) {
    return make_error(errc::invalid_value, "unrecognized flags " + describe_byte(flags) +
                                               " at offset " + std::to_string(at));
  }
  return flags;
}

common::Result<std::string> read_namespace(ByteReader& r) {
  WAL_TRY_ASSIGN(std::string_view nspname, r.read_cstring("nspname"));
  if (nspname.empty()) return std::string(kCatalogNamespace);
  return std::string(nspname);
}

common::Result<std::string> read_string(ByteReader& r, std::string_view what) {
  WAL_TRY_ASSIGN(std::string_view s, r.read_cstring(what));
  return std::string(s);
}

// A length that pq_sendcountedtext / pq_sendbytes wrote from a non-negative
// size; no message documents a negative one.
common::Result<std::string_view> read_counted_bytes(ByteReader& r, std::string_view what) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(int32_t len, r.read_i32(what));
  if (len < 0) {
    return make_error(errc::invalid_value, "negative " + std::string(what) + " " +
                                               std::to_string(len) + " at offset " +
                                               std::to_string(at));
  }
  return r.read_bytes(static_cast<size_t>(len), "value");
}

// ---- TupleData ---------------------------------------------------------

enum class Unchanged { forbidden, allowed };

common::Result<ColumnValue> read_column(ByteReader& r, Unchanged unchanged) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t kind, r.read_u8("kind"));
  ColumnValue v;
  switch (static_cast<ColumnKind>(kind)) {
    case ColumnKind::null:
      v.kind = ColumnKind::null;
      return v;
    case ColumnKind::unchanged_toast:
      // Only heap_update leaves an out-of-line value in place; old tuples
      // are flattened (ExtractReplicaIdentity) and inserts carry every value.
      if (unchanged == Unchanged::forbidden) {
        return make_error(errc::protocol_violation, "unchanged TOAST " + describe_byte(kind) +
                                                        " at offset " + std::to_string(at) +
                                                        " outside an Update's new tuple");
      }
      v.kind = ColumnKind::unchanged_toast;
      return v;
    case ColumnKind::text:
    case ColumnKind::binary:
      v.kind = static_cast<ColumnKind>(kind);
      WAL_TRY_ASSIGN(v.data, read_counted_bytes(r, "length"));
      return v;
  }
  return make_error(errc::invalid_value,
                    "unknown kind " + describe_byte(kind) + " at offset " + std::to_string(at));
}

common::Result<TupleData> read_tuple(ByteReader& r, Unchanged unchanged) {
  WAL_TRY_ASSIGN(uint16_t ncolumns, r.read_u16("ncolumns"));
  // Every column takes at least its kind byte: a count the rest of the
  // message cannot hold is refused before anything is allocated for it.
  if (ncolumns > r.remaining()) {
    return make_error(errc::truncated, "ncolumns " + std::to_string(ncolumns) + " but only " +
                                           std::to_string(r.remaining()) + " bytes left");
  }
  TupleData t;
  t.values.reserve(ncolumns);
  for (uint16_t i = 0; i < ncolumns; ++i) {
    auto v = read_column(r, unchanged);
    if (!v) return with_context("column " + std::to_string(i + 1), v.error());
    t.values.push_back(*v);
  }
  return t;
}

// The 'N' / 'K' / 'O' byte before a tuple.
common::Result<char> read_tuple_tag(ByteReader& r, std::string_view expected) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t tag, r.read_u8("tuple type"));
  if (expected.find(static_cast<char>(tag)) == std::string_view::npos) {
    std::string want;
    for (char e : expected) {
      if (!want.empty()) want += " or ";
      want += describe_byte(static_cast<uint8_t>(e));
    }
    return make_error(errc::invalid_value, "expected tuple type " + want + ", got " +
                                               describe_byte(tag) + " at offset " +
                                               std::to_string(at));
  }
  return static_cast<char>(tag);
}

common::Result<TupleData> read_tuple_in(ByteReader& r, std::string_view which,
                                        Unchanged unchanged) {
  auto t = read_tuple(r, unchanged);
  if (!t) return with_context(which, t.error());
  return t;
}

// ---- transaction boundaries ---------------------------------------------

common::Result<Event> read_begin(ByteReader& r) {
  Begin m;
  WAL_TRY_ASSIGN(m.final_lsn, read_set_lsn(r, "final_lsn"));
  WAL_TRY_ASSIGN(m.commit_time, r.read_timestamp("commit_time"));
  WAL_TRY_ASSIGN(m.xid, r.read_u32("xid"));
  return Event(std::move(m));
}

common::Result<Event> read_commit(ByteReader& r) {
  Commit m;
  WAL_TRY_ASSIGN(m.flags, read_zero_flags(r));
  WAL_TRY_ASSIGN(m.commit_lsn, r.read_lsn("commit_lsn"));
  WAL_TRY_ASSIGN(m.end_lsn, r.read_lsn("end_lsn"));
  WAL_TRY_ASSIGN(m.commit_time, r.read_timestamp("commit_time"));
  return Event(std::move(m));
}

common::Result<Event> read_origin(ByteReader& r) {
  Origin m;
  WAL_TRY_ASSIGN(m.commit_lsn, r.read_lsn("commit_lsn"));
  WAL_TRY_ASSIGN(m.name, read_string(r, "name"));
  return Event(std::move(m));
}

// ---- schema ---------------------------------------------------------------

common::Result<ReplicaIdentity> read_replica_identity(ByteReader& r) {
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t b, r.read_u8("replica_identity"));
  switch (static_cast<ReplicaIdentity>(b)) {
    case ReplicaIdentity::default_identity:
    case ReplicaIdentity::nothing:
    case ReplicaIdentity::full:
    case ReplicaIdentity::index:
      return static_cast<ReplicaIdentity>(b);
  }
  return make_error(errc::invalid_value, "unknown replica_identity " + describe_byte(b) +
                                             " at offset " + std::to_string(at));
}

common::Result<Column> read_relation_column(ByteReader& r) {
  Column col;
  WAL_TRY_ASSIGN(col.flags, read_flags(r, Column::kFlagKey));
  WAL_TRY_ASSIGN(col.name, read_string(r, "name"));
  WAL_TRY_ASSIGN(col.type_oid, r.read_u32("type_oid"));
  WAL_TRY_ASSIGN(col.type_modifier, r.read_i32("type_modifier"));
  return col;
}

common::Result<Event> read_relation(ByteReader& r, const Context& c) {
  Relation m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.relid, r.read_u32("relid"));
  WAL_TRY_ASSIGN(m.nspname, read_namespace(r));
  WAL_TRY_ASSIGN(m.relname, read_string(r, "relname"));
  WAL_TRY_ASSIGN(m.replica_identity, read_replica_identity(r));
  WAL_TRY_ASSIGN(uint16_t ncolumns, r.read_u16("ncolumns"));
  // flags, an empty name's NUL, type_oid and type_modifier: 10 bytes at least.
  constexpr size_t kMinColumnBytes = 10;
  if (ncolumns > r.remaining() / kMinColumnBytes) {
    return make_error(errc::truncated, "ncolumns " + std::to_string(ncolumns) + " but only " +
                                           std::to_string(r.remaining()) + " bytes left");
  }
  m.columns.reserve(ncolumns);
  for (uint16_t i = 0; i < ncolumns; ++i) {
    auto col = read_relation_column(r);
    if (!col) return with_context("column " + std::to_string(i + 1), col.error());
    m.columns.push_back(std::move(*col));
  }
  return Event(std::move(m));
}

common::Result<Event> read_type(ByteReader& r, const Context& c) {
  Type m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.oid, r.read_u32("oid"));
  WAL_TRY_ASSIGN(m.nspname, read_namespace(r));
  WAL_TRY_ASSIGN(m.typname, read_string(r, "typname"));
  return Event(std::move(m));
}

// ---- changes ----------------------------------------------------------------

common::Result<Event> read_insert(ByteReader& r, const Context& c) {
  Insert m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.relid, r.read_u32("relid"));
  WAL_TRY(read_tuple_tag(r, "N"));
  WAL_TRY_ASSIGN(m.new_tuple, read_tuple_in(r, "new tuple", Unchanged::forbidden));
  return Event(std::move(m));
}

common::Result<Event> read_update(ByteReader& r, const Context& c) {
  Update m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.relid, r.read_u32("relid"));
  WAL_TRY_ASSIGN(char tag, read_tuple_tag(r, "KON"));
  if (tag != 'N') {
    m.old_kind = static_cast<OldTupleKind>(tag);
    WAL_TRY_ASSIGN(m.old_tuple, read_tuple_in(r, "old tuple", Unchanged::forbidden));
    WAL_TRY(read_tuple_tag(r, "N"));
  }
  WAL_TRY_ASSIGN(m.new_tuple, read_tuple_in(r, "new tuple", Unchanged::allowed));
  return Event(std::move(m));
}

common::Result<Event> read_delete(ByteReader& r, const Context& c) {
  Delete m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.relid, r.read_u32("relid"));
  WAL_TRY_ASSIGN(char tag, read_tuple_tag(r, "KO"));
  m.old_kind = static_cast<OldTupleKind>(tag);
  WAL_TRY_ASSIGN(m.old_tuple, read_tuple_in(r, "old tuple", Unchanged::forbidden));
  return Event(std::move(m));
}

common::Result<Event> read_truncate(ByteReader& r, const Context& c) {
  Truncate m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(int32_t nrelids, r.read_i32("nrelids"));
  if (nrelids < 0) {
    return make_error(errc::invalid_value, "negative nrelids " + std::to_string(nrelids) +
                                               " at offset " + std::to_string(at));
  }
  WAL_TRY_ASSIGN(m.options, read_flags(r, Truncate::kCascade | Truncate::kRestartSeqs));
  if (static_cast<size_t>(nrelids) > r.remaining() / sizeof(RelId)) {
    return make_error(errc::truncated, "nrelids " + std::to_string(nrelids) + " but only " +
                                           std::to_string(r.remaining()) + " bytes left");
  }
  m.relids.reserve(static_cast<size_t>(nrelids));
  for (int32_t i = 0; i < nrelids; ++i) {
    WAL_TRY_ASSIGN(RelId relid, r.read_u32("relid"));
    m.relids.push_back(relid);
  }
  return Event(std::move(m));
}

common::Result<Event> read_message(ByteReader& r, const Context& c) {
  Message m;
  WAL_TRY_ASSIGN(m.xid, read_change_xid(r, c));
  WAL_TRY_ASSIGN(m.flags, read_flags(r, Message::kTransactional));
  WAL_TRY_ASSIGN(m.lsn, r.read_lsn("lsn"));
  WAL_TRY_ASSIGN(m.prefix, r.read_cstring("prefix"));
  WAL_TRY_ASSIGN(m.content, read_counted_bytes(r, "content length"));
  return Event(std::move(m));
}

// ---- streaming (proto >= 2) -----------------------------------------------

common::Result<Event> read_stream_start(ByteReader& r, const Context& c) {
  StreamStart m;
  WAL_TRY_ASSIGN(m.xid, read_valid_xid(r, "xid"));
  if (c.in_stream) {
    return make_error(errc::protocol_violation,
                      "for xid " + std::to_string(m.xid) + " while the chunk of xid " +
                          std::to_string(c.stream_xid) + " is open (no Stream Stop)");
  }
  const size_t at = r.offset();
  WAL_TRY_ASSIGN(uint8_t first_segment, r.read_u8("first_segment"));
  if (first_segment > 1) {
    return make_error(errc::invalid_value, "first_segment " + describe_byte(first_segment) +
                                               " at offset " + std::to_string(at) +
                                               " is neither 0 nor 1");
  }
  m.first_segment = first_segment == 1;
  return Event(m);
}

common::Result<Event> read_stream_stop(const Context& c) {
  if (!c.in_stream) {
    return make_error(errc::protocol_violation, "without Stream Start");
  }
  return Event(StreamStop{});
}

common::Result<Event> read_stream_commit(ByteReader& r) {
  StreamCommit m;
  WAL_TRY_ASSIGN(m.xid, read_valid_xid(r, "xid"));
  WAL_TRY_ASSIGN(m.flags, read_zero_flags(r));
  WAL_TRY_ASSIGN(m.commit_lsn, r.read_lsn("commit_lsn"));
  WAL_TRY_ASSIGN(m.end_lsn, r.read_lsn("end_lsn"));
  WAL_TRY_ASSIGN(m.commit_time, r.read_timestamp("commit_time"));
  return Event(m);
}

common::Result<Event> read_stream_abort(ByteReader& r, const Context& c) {
  StreamAbort m;
  WAL_TRY_ASSIGN(m.xid, read_valid_xid(r, "xid"));
  WAL_TRY_ASSIGN(m.subxid, read_valid_xid(r, "subxid"));
  // logicalrep_write_stream_abort: write_abort_info is proto >= 4 with
  // streaming = parallel, so the apply worker can record the abort position.
  if (c.proto_version >= 4 && c.parallel_streaming) {
    WAL_TRY_ASSIGN(m.abort_lsn, r.read_lsn("abort_lsn"));
    WAL_TRY_ASSIGN(m.abort_time, r.read_timestamp("abort_time"));
  }
  return Event(m);
}

// ---- two-phase (proto >= 3) -----------------------------------------------

common::Result<Event> read_begin_prepare(ByteReader& r) {
  BeginPrepare m;
  WAL_TRY_ASSIGN(m.prepare_lsn, read_set_lsn(r, "prepare_lsn"));
  WAL_TRY_ASSIGN(m.end_lsn, read_set_lsn(r, "end_lsn"));
  WAL_TRY_ASSIGN(m.prepare_time, r.read_timestamp("prepare_time"));
  WAL_TRY_ASSIGN(m.xid, r.read_u32("xid"));
  WAL_TRY_ASSIGN(m.gid, read_string(r, "gid"));
  return Event(std::move(m));
}

// Prepare and Stream Prepare (logicalrep_write_prepare_common).
template <typename T>
common::Result<Event> read_prepare(ByteReader& r) {
  T m;
  WAL_TRY_ASSIGN(m.flags, read_zero_flags(r));
  WAL_TRY_ASSIGN(m.prepare_lsn, read_set_lsn(r, "prepare_lsn"));
  WAL_TRY_ASSIGN(m.end_lsn, read_set_lsn(r, "end_lsn"));
  WAL_TRY_ASSIGN(m.prepare_time, r.read_timestamp("prepare_time"));
  WAL_TRY_ASSIGN(m.xid, r.read_u32("xid"));
  WAL_TRY_ASSIGN(m.gid, read_string(r, "gid"));
  return Event(std::move(m));
}

common::Result<Event> read_commit_prepared(ByteReader& r) {
  CommitPrepared m;
  WAL_TRY_ASSIGN(m.flags, read_zero_flags(r));
  WAL_TRY_ASSIGN(m.commit_lsn, read_set_lsn(r, "commit_lsn"));
  WAL_TRY_ASSIGN(m.end_lsn, read_set_lsn(r, "end_lsn"));
  WAL_TRY_ASSIGN(m.commit_time, r.read_timestamp("commit_time"));
  WAL_TRY_ASSIGN(m.xid, r.read_u32("xid"));
  WAL_TRY_ASSIGN(m.gid, read_string(r, "gid"));
  return Event(std::move(m));
}

common::Result<Event> read_rollback_prepared(ByteReader& r) {
  RollbackPrepared m;
  WAL_TRY_ASSIGN(m.flags, read_zero_flags(r));
  WAL_TRY_ASSIGN(m.prepare_end_lsn, read_set_lsn(r, "prepare_end_lsn"));
  WAL_TRY_ASSIGN(m.rollback_end_lsn, read_set_lsn(r, "rollback_end_lsn"));
  WAL_TRY_ASSIGN(m.prepare_time, r.read_timestamp("prepare_time"));
  WAL_TRY_ASSIGN(m.rollback_time, r.read_timestamp("rollback_time"));
  WAL_TRY_ASSIGN(m.xid, r.read_u32("xid"));
  WAL_TRY_ASSIGN(m.gid, read_string(r, "gid"));
  return Event(std::move(m));
}

// ---- dispatch ---------------------------------------------------------------

common::Result<Event> decode_body(char type, ByteReader& r, const Context& c) {
  switch (type) {
    case Begin::kType:
      WAL_TRY(require_outside_stream(c));
      return read_begin(r);
    case Commit::kType:
      WAL_TRY(require_outside_stream(c));
      return read_commit(r);
    case Origin::kType:
      return read_origin(r);
    case Relation::kType:
      return read_relation(r, c);
    case Type::kType:
      return read_type(r, c);
    case Insert::kType:
      return read_insert(r, c);
    case Update::kType:
      return read_update(r, c);
    case Delete::kType:
      return read_delete(r, c);
    case Truncate::kType:
      return read_truncate(r, c);
    case Message::kType:
      return read_message(r, c);
    case StreamStart::kType:
      WAL_TRY(require_proto(c, 2));
      return read_stream_start(r, c);
    case StreamStop::kType:
      WAL_TRY(require_proto(c, 2));
      return read_stream_stop(c);
    case StreamCommit::kType:
      WAL_TRY(require_proto(c, 2));
      WAL_TRY(require_outside_stream(c));
      return read_stream_commit(r);
    case StreamAbort::kType:
      WAL_TRY(require_proto(c, 2));
      WAL_TRY(require_outside_stream(c));
      return read_stream_abort(r, c);
    case BeginPrepare::kType:
      WAL_TRY(require_proto(c, 3));
      WAL_TRY(require_outside_stream(c));
      return read_begin_prepare(r);
    case Prepare::kType:
      WAL_TRY(require_proto(c, 3));
      WAL_TRY(require_outside_stream(c));
      return read_prepare<Prepare>(r);
    case CommitPrepared::kType:
      WAL_TRY(require_proto(c, 3));
      WAL_TRY(require_outside_stream(c));
      return read_commit_prepared(r);
    case RollbackPrepared::kType:
      WAL_TRY(require_proto(c, 3));
      WAL_TRY(require_outside_stream(c));
      return read_rollback_prepared(r);
    case StreamPrepare::kType:
      WAL_TRY(require_proto(c, 3));
      WAL_TRY(require_outside_stream(c));
      return read_prepare<StreamPrepare>(r);
    default:
      return make_error(errc::unknown_message,
                        "unknown message type " + describe_byte(static_cast<uint8_t>(type)));
  }
}

}  // namespace

std::string_view message_type_name(char type) {
  switch (type) {
    case Begin::kType:
      return "Begin";
    case Commit::kType:
      return "Commit";
    case Origin::kType:
      return "Origin";
    case Relation::kType:
      return "Relation";
    case Type::kType:
      return "Type";
    case Insert::kType:
      return "Insert";
    case Update::kType:
      return "Update";
    case Delete::kType:
      return "Delete";
    case Truncate::kType:
      return "Truncate";
    case Message::kType:
      return "Message";
    case StreamStart::kType:
      return "Stream Start";
    case StreamStop::kType:
      return "Stream Stop";
    case StreamCommit::kType:
      return "Stream Commit";
    case StreamAbort::kType:
      return "Stream Abort";
    case BeginPrepare::kType:
      return "Begin Prepare";
    case Prepare::kType:
      return "Prepare";
    case CommitPrepared::kType:
      return "Commit Prepared";
    case RollbackPrepared::kType:
      return "Rollback Prepared";
    case StreamPrepare::kType:
      return "Stream Prepare";
    default:
      return "unknown";
  }
}

char message_type(const Event& event) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::kType; }, event);
}

PgOutputDecoder::PgOutputDecoder(int proto_version)
    : PgOutputDecoder(DecoderOptions{proto_version, false}) {}

PgOutputDecoder::PgOutputDecoder(DecoderOptions options) : options_(options) {
  OUTBOX_ASSERT(options_.proto_version >= kMinProtoVersion &&
                options_.proto_version <= kMaxProtoVersion);
  // The server refuses streaming = parallel below proto_version 4.
  OUTBOX_ASSERT(!options_.parallel_streaming || options_.proto_version >= 4);
}

void PgOutputDecoder::reset() {
  in_stream_ = false;
  stream_xid_ = 0;
}

common::Result<Event> PgOutputDecoder::decode(std::span<const std::byte> message) {
  return decode(std::string_view(reinterpret_cast<const char*>(message.data()), message.size()));
}

common::Result<Event> PgOutputDecoder::decode(std::string_view message) {
  ByteReader r(message);
  WAL_TRY_ASSIGN(uint8_t type_byte, r.read_u8("message type"));
  const char type = static_cast<char>(type_byte);
  const Context c{options_.proto_version, options_.parallel_streaming, in_stream_, stream_xid_};

  auto event = decode_body(type, r, c);
  if (!event) {
    if (event.error().code == errc::unknown_message) return event;
    return with_context(message_type_name(type), event.error());
  }
  if (auto end = r.expect_end(message_type_name(type)); !end) return end.error();

  // State changes only once the whole message is known to be good, so a
  // caller that reconnects after an error starts from a consistent decoder.
  if (const auto* start = std::get_if<StreamStart>(&*event)) {
    in_stream_ = true;
    stream_xid_ = start->xid;
  } else if (std::holds_alternative<StreamStop>(*event)) {
    reset();
  }
  return event;
}

}  // namespace wal
