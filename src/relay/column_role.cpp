#include "relay/column_role.h"

#include "relay/value_codec.h"

namespace relay {

namespace {

bool is_text_like(wal::Oid t) {
  return t == pg_type::kText || t == pg_type::kVarchar || t == pg_type::kBpchar ||
         t == pg_type::kName;
}

bool is_integer(wal::Oid t) {
  return t == pg_type::kInt2 || t == pg_type::kInt4 || t == pg_type::kInt8;
}

bool is_json(wal::Oid t) {
  return t == pg_type::kJson || t == pg_type::kJsonb;
}

}  // namespace

bool role_accepts(ColumnRole role, wal::Oid t) {
  switch (role) {
    case ColumnRole::kId:
    case ColumnRole::kPlaceholder:
      return is_text_like(t) || t == pg_type::kUuid || is_integer(t);
    case ColumnRole::kTopic:
      return is_text_like(t);
    case ColumnRole::kKey:
      return is_text_like(t) || t == pg_type::kUuid || is_integer(t) || t == pg_type::kBytea;
    case ColumnRole::kPartition:
      return is_integer(t);
    case ColumnRole::kHeaders:
      // text too: a hand-made outbox may keep its headers JSON in a text column.
      return is_json(t) || t == pg_type::kText || t == pg_type::kVarchar;
    case ColumnRole::kPayload:
      return t == pg_type::kBytea || t == pg_type::kText || t == pg_type::kVarchar || is_json(t);
    case ColumnRole::kHeaderColumn:
      return can_decode(t, ValueForm::kText);
  }
  return false;
}

std::string_view accepted_types(ColumnRole role) {
  switch (role) {
    case ColumnRole::kId:
    case ColumnRole::kPlaceholder:
      return "text, varchar, bpchar, name, uuid, int2, int4 or int8";
    case ColumnRole::kTopic:
      return "text, varchar, bpchar or name";
    case ColumnRole::kKey:
      return "text, varchar, bpchar, name, uuid, int2, int4, int8 or bytea";
    case ColumnRole::kPartition:
      return "int2, int4 or int8";
    case ColumnRole::kHeaders:
      return "json, jsonb, text or varchar";
    case ColumnRole::kPayload:
      return "bytea, text, varchar, json or jsonb";
    case ColumnRole::kHeaderColumn:
      return "text, varchar, bpchar, name, json, jsonb, uuid, int2, int4 or int8";
  }
  return "";
}

std::string_view role_name(ColumnRole role) {
  switch (role) {
    case ColumnRole::kId:
      return "id";
    case ColumnRole::kTopic:
      return "topic";
    case ColumnRole::kKey:
      return "key";
    case ColumnRole::kPartition:
      return "partition";
    case ColumnRole::kHeaders:
      return "headers";
    case ColumnRole::kPayload:
      return "payload";
    case ColumnRole::kHeaderColumn:
      return "header column";
    case ColumnRole::kPlaceholder:
      return "topic_template placeholder";
  }
  return "";
}

}  // namespace relay
