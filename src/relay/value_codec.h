#pragma once

// Column values of an outbox row, as pgoutput sends them in TupleData, read
// in the three forms the router needs: text, bytes and an int32 partition.
//
// A value arrives as 't' (the type's output function, in the session's
// settings) or 'b' (its send function). binary=true only asks: a type without
// a send function still arrives as 't', so every type is read in both forms.
//
//   type                   't' text form                 'b' binary form
//   text varchar bpchar    the characters                the same bytes (textsend)
//   name                   the characters                the same bytes (namesend)
//   json                   the text                      the text (json_send)
//   jsonb                  the text                      0x01, then the text (jsonb_send)
//   uuid                   8-4-4-4-12 hex                16 bytes (uuid_send)
//   int2 int4 int8         decimal                       2/4/8 bytes, big-endian (int*send)
//   bytea                  "\x" + hex digits             the raw bytes (byteasend)
//
// bytea's text form is hex because the connection pins bytea_output=hex, as
// PostgreSQL's own logical replication receiver does.
//
// A value that does not fit its form is an error (errc::malformed_value),
// never a default: a wrong length or bad digit means the stream is not what
// the relay thinks it is.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "wal/lsn.h"

namespace relay {

// TupleData column kinds (LOGICALREP_COLUMN_*).
enum class ValueKind : char { kNull = 'n', kUnchanged = 'u', kText = 't', kBinary = 'b' };

// One column of one tuple; data borrows the decoder's buffer and is set for
// kText and kBinary only.
struct RawValue {
  ValueKind kind;
  std::string_view data;
};

// One column of a Relation message.
struct ColumnDesc {
  std::string name;
  wal::Oid type_oid;
  int32_t type_modifier;
};

// Built-in type OIDs (pg_type.dat); fixed across PostgreSQL versions.
namespace pg_type {
inline constexpr wal::Oid kBytea = 17;
inline constexpr wal::Oid kName = 19;
inline constexpr wal::Oid kInt8 = 20;
inline constexpr wal::Oid kInt2 = 21;
inline constexpr wal::Oid kInt4 = 23;
inline constexpr wal::Oid kText = 25;
inline constexpr wal::Oid kJson = 114;
inline constexpr wal::Oid kBpchar = 1042;
inline constexpr wal::Oid kVarchar = 1043;
inline constexpr wal::Oid kUuid = 2950;
inline constexpr wal::Oid kJsonb = 3802;
}  // namespace pg_type

// The form a column is read in.
enum class ValueForm {
  kText,   // text, varchar, bpchar, name, json, jsonb, uuid, int2, int4, int8
  kBytes,  // bytea (raw), text, varchar, bpchar, name, json, jsonb (UTF-8 text)
  kInt32,  // int2, int4, int8 whose value fits in an int32
};

// "text", "as bytes", "as an int32": for messages.
std::string_view describe_form(ValueForm form);

// The SQL name of a supported type ("int4"), or "" for any other OID.
std::string_view type_name(wal::Oid type_oid);

// "int4 (OID 23)", or "OID 1184" for a type this module does not know.
std::string describe_type(wal::Oid type_oid);

// A value for an error message: in single quotes, bytes outside printable
// ASCII (and quotes, backslashes) as \xNN so that row data cannot forge log
// lines, cut after max_chars with the full size noted.
std::string quote_value(std::string_view text, size_t max_chars = 64);

// Whether values of the type can be read in the form. The router checks this
// when it binds a relation, so a mapping it cannot serve fails before the
// first row rather than at every row.
bool can_decode(wal::Oid type_oid, ValueForm form);

// The decoders take a kText or kBinary value; any other kind is an
// errc::protocol_violation, because null and unchanged have no value to read
// and the caller decides what null means for its role. A type the form cannot
// be read from is errc::unsupported_type. Errors name the column and its type.

// Appends the value's text form to `out`. Text-like types are passed through
// (validated for uuid and integers); binary uuids and integers are formatted
// the way PostgreSQL prints them. On error `out` may hold a partial value.
common::Result<void> append_text(const ColumnDesc& column, RawValue value, std::string& out);

// Appends the value's bytes to `out`: bytea decoded from either form, the
// text of text-like types as its UTF-8 bytes.
common::Result<void> append_bytes(const ColumnDesc& column, RawValue value, std::string& out);

// An int2, int4 or int8 in either form.
common::Result<int64_t> decode_integer(const ColumnDesc& column, RawValue value);

// decode_integer, then errc::out_of_range unless the value fits in an int32
// (Kafka's partition type).
common::Result<int32_t> decode_int32(const ColumnDesc& column, RawValue value);

}  // namespace relay
