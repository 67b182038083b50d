// check-config's view of the effective configuration.
//
// The output is YAML that load_string accepts and that loads to the same
// Config, secrets aside: values that load_string would ${VAR}-expand are
// written with '${' escaped, durations and sizes in their shortest exact
// unit. A fuzz target holds describe(load(describe(c))) == describe(c).

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "config/config.h"
#include "config/env_expand.h"
#include "config/schema.h"
#include "config/units.h"

namespace config {
namespace {

constexpr std::string_view kMask = "****";

// The text with every byte that does not start a well-formed UTF-8 sequence
// (stray continuation bytes, overlong forms, surrogates, beyond U+10FFFF)
// replaced by U+FFFD. yaml-cpp's emitter decodes leniently: it would read
// C0 8C as a form feed and write that, and a DSN would load back with
// whitespace where the file had none.
std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const auto b = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
    const auto in = [](unsigned char c, unsigned char lo, unsigned char hi) {
      return c >= lo && c <= hi;
    };
    const unsigned char c = b(0);
    const size_t left = text.size() - i;
    size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if (in(c, 0xC2, 0xDF)) {
      if (left >= 2 && in(b(1), 0x80, 0xBF)) len = 2;
    } else if (in(c, 0xE0, 0xEF)) {
      const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
      if (left >= 3 && in(b(1), lo, hi) && in(b(2), 0x80, 0xBF)) len = 3;
    } else if (in(c, 0xF0, 0xF4)) {
      const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
      if (left >= 4 && in(b(1), lo, hi) && in(b(2), 0x80, 0xBF) && in(b(3), 0x80, 0xBF)) len = 4;
    }
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, len));
      i += len;
    }
  }
  return out;
}

// A string written double-quoted, with escapes, when it holds a control
// character or anything beyond ASCII: yaml-cpp writes "a\r" as a plain
// scalar, and a plain scalar loses its carriage return when read back.
struct Scalar {
  std::string text;
};

YAML::Emitter& operator<<(YAML::Emitter& out, const Scalar& scalar) {
  const bool plain_unsafe = std::any_of(scalar.text.begin(), scalar.text.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c < 0x20 || c >= 0x7f;
  });
  if (plain_unsafe) out << YAML::DoubleQuoted;
  return out << scalar.text;
}

// A value that load_string will expand: escape it so it reads back as is.
Scalar literal(std::string_view text) {
  return Scalar{escape_env(valid_utf8(text))};
}

void emit_postgres(YAML::Emitter& out, const PostgresConfig& pg) {
  out << YAML::Key << "postgres" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "dsn" << YAML::Value << literal(redact_dsn(pg.dsn));
  out << YAML::Key << "slot" << YAML::Value << literal(pg.slot);
  out << YAML::Key << "publication" << YAML::Value << literal(pg.publication);
  out << YAML::Key << "create_slot" << YAML::Value << pg.create_slot;
  out << YAML::Key << "create_publication" << YAML::Value << pg.create_publication;
  out << YAML::Key << "binary" << YAML::Value << pg.binary;
  out << YAML::Key << "on_slot_lost" << YAML::Value
      << std::string(kSlotLostPolicyNames[static_cast<size_t>(pg.on_slot_lost)]);
  out << YAML::Key << "status_interval" << YAML::Value << format_duration(pg.status_interval);
  out << YAML::Key << "receive_timeout" << YAML::Value << format_duration(pg.receive_timeout);
  out << YAML::Key << "reconnect_backoff" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "min" << YAML::Value << format_duration(pg.reconnect_backoff_min);
  out << YAML::Key << "max" << YAML::Value << format_duration(pg.reconnect_backoff_max);
  out << YAML::EndMap;
  out << YAML::Key << "publication_check_interval" << YAML::Value
      << format_duration(pg.publication_check_interval);
  out << YAML::Key << "failover_slot" << YAML::Value << pg.failover_slot;
  out << YAML::EndMap;
}

void emit_kafka(YAML::Emitter& out, const KafkaConfig& kafka) {
  out << YAML::Key << "kafka" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "brokers" << YAML::Value << literal(kafka.brokers);
  out << YAML::Key << "properties" << YAML::Value;
  if (kafka.properties.empty()) out << YAML::Flow;
  out << YAML::BeginMap;
  for (const auto& [key, value] : kafka.properties) {
    out << YAML::Key << Scalar{valid_utf8(key)} << YAML::Value;
    out << (is_secret_property(key) ? Scalar{std::string(kMask)} : literal(value));
  }
  out << YAML::EndMap;
  out << YAML::Key << "create_topics" << YAML::Value << kafka.create_topics;
  out << YAML::Key << "drain_timeout" << YAML::Value << format_duration(kafka.drain_timeout);
  out << YAML::Key << "delivery" << YAML::Value
      << std::string(kDeliveryNames[static_cast<size_t>(kafka.delivery)]);
  out << YAML::Key << "transaction_interval" << YAML::Value
      << format_duration(kafka.transaction_interval);
  out << YAML::Key << "transaction_min_interval" << YAML::Value
      << format_duration(kafka.transaction_min_interval);
  out << YAML::Key << "transaction_max_records" << YAML::Value << kafka.transaction_max_records;
  out << YAML::Key << "transaction_timeout" << YAML::Value
      << format_duration(kafka.transaction_timeout);
  out << YAML::Key << "transactional_id_prefix" << YAML::Value
      << literal(kafka.transactional_id_prefix);
  out << YAML::EndMap;
}

void emit_outbox(YAML::Emitter& out, const OutboxConfig& outbox) {
  out << YAML::Key << "outbox" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "table" << YAML::Value << literal(outbox.table);
  const OutboxColumns& c = outbox.columns;
  out << YAML::Key << "columns" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "id" << YAML::Value << literal(c.id);
  out << YAML::Key << "topic" << YAML::Value << literal(c.topic);
  out << YAML::Key << "key" << YAML::Value << literal(c.key);
  out << YAML::Key << "partition" << YAML::Value << literal(c.partition);
  out << YAML::Key << "headers" << YAML::Value << literal(c.headers);
  out << YAML::Key << "payload" << YAML::Value << literal(c.payload);
  out << YAML::EndMap;
  // Verbatim: topic_template is not expanded on load.
  out << YAML::Key << "topic_template" << YAML::Value;
  if (outbox.topic_template) {
    out << *outbox.topic_template;
  } else {
    out << YAML::Null;
  }
  // A list while every header is named after its column, as written.
  const bool renamed = std::any_of(outbox.header_columns.begin(), outbox.header_columns.end(),
                                   [](const HeaderColumn& c) { return c.header.has_value(); });
  out << YAML::Key << "header_columns" << YAML::Value << YAML::Flow;
  if (renamed) {
    out << YAML::BeginMap;
    for (const HeaderColumn& c : outbox.header_columns) {
      // Keys are read verbatim, never expanded.
      out << YAML::Key << valid_utf8(c.header.value_or(c.column)) << YAML::Value
          << literal(c.column);
    }
    out << YAML::EndMap;
  } else {
    out << YAML::BeginSeq;
    for (const HeaderColumn& c : outbox.header_columns) out << literal(c.column);
    out << YAML::EndSeq;
  }
  out << YAML::Key << "on_bad_row" << YAML::Value
      << std::string(kBadRowPolicyNames[static_cast<size_t>(outbox.on_bad_row)]);
  out << YAML::Key << "null_payload" << YAML::Value
      << std::string(kNullPayloadNames[static_cast<size_t>(outbox.null_payload)]);
  out << YAML::Key << "dead_letter_topic" << YAML::Value << literal(outbox.dead_letter_topic);
  out << YAML::Key << "ignore_relations" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& name : outbox.ignore_relations) out << literal(name);
  out << YAML::EndSeq;
  out << YAML::Key << "source" << YAML::Value
      << std::string(kOutboxSourceNames[static_cast<size_t>(outbox.source)]);
  out << YAML::Key << "message_prefix" << YAML::Value << literal(outbox.message_prefix);
  out << YAML::Key << "allow_non_transactional_messages" << YAML::Value
      << outbox.allow_non_transactional_messages;
  out << YAML::EndMap;
}

void emit_group(YAML::Emitter& out, const GroupConfig& group) {
  out << YAML::Key << "group" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "id" << YAML::Value << literal(group.id);
  out << YAML::Key << "session_timeout" << YAML::Value << format_duration(group.session_timeout);
  out << YAML::Key << "coordination_topic" << YAML::Value << literal(group.coordination_topic);
  out << YAML::Key << "takeover_after" << YAML::Value;
  if (group.takeover_after) {
    out << format_duration(*group.takeover_after);
  } else {
    out << YAML::Null;
  }
  out << YAML::Key << "yield_after" << YAML::Value;
  if (group.yield_after) {
    out << format_duration(*group.yield_after);
  } else {
    out << YAML::Null;
  }
  out << YAML::EndMap;
}

void emit_slots(YAML::Emitter& out, const std::vector<SlotConfig>& slots) {
  out << YAML::Key << "slots" << YAML::Value << YAML::BeginSeq;
  for (const SlotConfig& slot : slots) {
    out << YAML::BeginMap;
    emit_postgres(out, slot.postgres);
    emit_outbox(out, slot.outbox);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
}

void emit_rest(YAML::Emitter& out, const Config& cfg) {
  out << YAML::Key << "limits" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "max_inflight_messages" << YAML::Value << cfg.limits.max_inflight_messages;
  out << YAML::Key << "max_inflight_bytes" << YAML::Value
      << format_size(cfg.limits.max_inflight_bytes);
  out << YAML::EndMap;
  out << YAML::Key << "http" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "listen" << YAML::Value << literal(cfg.http.listen);
  out << YAML::Key << "ready_kafka_timeout" << YAML::Value
      << format_duration(cfg.http.ready_kafka_timeout);
  out << YAML::EndMap;
  out << YAML::Key << "log" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "level" << YAML::Value << literal(cfg.log.level);
  out << YAML::Key << "format" << YAML::Value
      << std::string(kLogFormatNames[static_cast<size_t>(cfg.log.format)]);
  out << YAML::EndMap;
}

}  // namespace

std::string describe(const Config& cfg) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (cfg.group) emit_group(out, *cfg.group);
  if (cfg.slots.empty()) {
    emit_postgres(out, cfg.postgres);
    emit_kafka(out, cfg.kafka);
    emit_outbox(out, cfg.outbox);
  } else {
    emit_slots(out, cfg.slots);
    emit_kafka(out, cfg.kafka);
  }
  emit_rest(out, cfg);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace config
