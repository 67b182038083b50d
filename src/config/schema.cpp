#include "config/schema.h"

#include <algorithm>
#include <cctype>

#include "config/errc.h"
#include "config/names.h"
#include "config/topic_template.h"
#include "config/units.h"

namespace config {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kRootKeys[] = {"postgres", "kafka", "outbox", "limits",
                                          "http",     "log",   "group",  "slots"};
constexpr std::string_view kGroupKeys[] = {"id", "session_timeout", "coordination_topic",
                                           "takeover_after", "yield_after"};
constexpr std::string_view kSlotKeys[] = {"postgres", "outbox"};
constexpr std::string_view kPostgresKeys[] = {"dsn",
                                              "slot",
                                              "publication",
                                              "create_slot",
                                              "create_publication",
                                              "binary",
                                              "on_slot_lost",
                                              "status_interval",
                                              "receive_timeout",
                                              "reconnect_backoff",
                                              "publication_check_interval",
                                              "failover_slot"};
constexpr std::string_view kBackoffKeys[] = {"min", "max"};
constexpr std::string_view kKafkaKeys[] = {"brokers",
                                           "properties",
                                           "create_topics",
                                           "drain_timeout",
                                           "delivery",
                                           "transaction_interval",
                                           "transaction_min_interval",
                                           "transaction_max_records",
                                           "transaction_timeout",
                                           "transactional_id_prefix"};
constexpr std::string_view kOutboxKeys[] = {"table",
                                            "columns",
                                            "topic_template",
                                            "header_columns",
                                            "on_bad_row",
                                            "null_payload",
                                            "dead_letter_topic",
                                            "ignore_relations",
                                            "source",
                                            "message_prefix",
                                            "allow_non_transactional_messages"};
constexpr std::string_view kColumnKeys[] = {"id",        "topic",   "key",
                                            "partition", "headers", "payload"};
constexpr std::string_view kLimitsKeys[] = {"max_inflight_messages", "max_inflight_bytes"};
constexpr std::string_view kHttpKeys[] = {"listen", "ready_kafka_timeout"};
constexpr std::string_view kLogKeys[] = {"level", "format"};

// Same order as kColumnKeys.
constexpr std::array kColumnMembers = {&OutboxColumns::id,      &OutboxColumns::topic,
                                       &OutboxColumns::key,     &OutboxColumns::partition,
                                       &OutboxColumns::headers, &OutboxColumns::payload};
static_assert(std::size(kColumnKeys) == kColumnMembers.size());

template <typename T, typename U>
void assign(T& out, std::optional<U> value) {
  if (value) out = std::move(*value);
}

// Reads `key` of `m`, when present, with `reader` into `out`; an invalid
// value has been reported and leaves the default in place.
template <typename T, typename Reader>
void read_key(const Mapping& m, std::string_view key, T& out, Reader reader) {
  if (const Field* field = m.find(key)) assign(out, reader(m.context(), *field));
}

auto checked(common::Result<void> (*check)(std::string_view)) {
  return [check](Context& ctx, const Field& field) { return read_checked(ctx, field, check); };
}

common::Result<void> check_not_empty(std::string_view text) {
  if (text.empty()) return common::make_error(errc::malformed, "must not be empty");
  return {};
}

// pgoutput sends a message's prefix as a NUL-terminated string, so a prefix
// with a NUL could never match; an empty one would claim every message whose
// writer did not bother to name itself.
common::Result<void> check_message_prefix(std::string_view text) {
  if (text.empty()) return common::make_error(errc::malformed, "must not be empty");
  if (text.find('\0') != std::string_view::npos) {
    return common::make_error(errc::malformed, "must not contain a NUL byte");
  }
  return {};
}

common::Result<void> check_template(std::string_view text) {
  auto parts = parse_topic_template(text);
  if (!parts) return parts.error();
  return {};
}

std::string lower_bound_message(int64_t lo, const std::string& formatted) {
  return lo == 1 ? "must be greater than 0" : "must be at least " + formatted;
}

auto duration_within(milliseconds lo, milliseconds hi) {
  return [lo, hi](Context& ctx, const Field& field) -> std::optional<milliseconds> {
    auto d = read_duration(ctx, field);
    if (!d) return std::nullopt;
    if (*d < lo || *d > hi) {
      const std::string bound = *d < lo ? lower_bound_message(lo.count(), format_duration(lo))
                                        : "must be at most " + format_duration(hi);
      report_value(ctx, field, bound, format_duration(*d));
      return std::nullopt;
    }
    return d;
  };
}

auto count_within(int64_t lo, int64_t hi) {
  return [lo, hi](Context& ctx, const Field& field) -> std::optional<uint64_t> {
    auto n = read_integer(ctx, field);
    if (!n) return std::nullopt;
    if (*n < lo || *n > hi) {
      const std::string bound = *n < lo ? lower_bound_message(lo, std::to_string(lo))
                                        : "must be at most " + std::to_string(hi);
      report_value(ctx, field, bound, std::to_string(*n));
      return std::nullopt;
    }
    return static_cast<uint64_t>(*n);
  };
}

std::optional<uint64_t> read_positive_size(Context& ctx, const Field& field) {
  auto bytes = read_size(ctx, field);
  if (bytes && *bytes == 0) {
    report_value(ctx, field, "must be greater than 0", "0");
    return std::nullopt;
  }
  return bytes;
}

// The DSN may hold a password, so it is never quoted back in a message.
std::optional<std::string> read_dsn(Context& ctx, const Field& field) {
  auto dsn = read_string(ctx, field);
  if (dsn && dsn->empty()) {
    report(ctx, field, "must not be empty; expected a libpq connection string or URI");
    return std::nullopt;
  }
  // libpq reads the DSN as a C string: it would end at the NUL, silently.
  if (dsn && dsn->find('\0') != std::string::npos) {
    report(ctx, field, "must not contain a NUL byte");
    return std::nullopt;
  }
  return dsn;
}

void read_backoff(Context& ctx, const Field& field, PostgresConfig& pg) {
  Mapping m(ctx, field, kBackoffKeys);
  if (!m.valid()) return;
  const auto within = duration_within(milliseconds(1), kMaxDuration);
  read_key(m, "min", pg.reconnect_backoff_min, within);
  read_key(m, "max", pg.reconnect_backoff_max, within);
  if (pg.reconnect_backoff_min <= pg.reconnect_backoff_max) return;
  // Blame the key that was written; both cannot be defaults.
  if (const Field* max = m.find("max")) {
    report_value(ctx, *max,
                 "must be at least " + field.path + ".min (" +
                     format_duration(pg.reconnect_backoff_min) + ")",
                 format_duration(pg.reconnect_backoff_max));
  } else if (const Field* min = m.find("min")) {
    report_value(ctx, *min,
                 "must be at most " + field.path + ".max (" +
                     format_duration(pg.reconnect_backoff_max) + ")",
                 format_duration(pg.reconnect_backoff_min));
  }
}

void read_postgres(const Mapping& root, PostgresConfig& pg) {
  Context& ctx = root.context();
  const Field* section = root.find("postgres");
  if (section == nullptr) {
    root.report_missing("postgres", " (postgres.dsn is required)");
    return;
  }
  Mapping m(ctx, *section, kPostgresKeys);
  if (!m.valid()) return;
  if (const Field* dsn = m.find("dsn")) {
    assign(pg.dsn, read_dsn(ctx, *dsn));
  } else {
    m.report_missing("dsn");
  }
  read_key(m, "slot", pg.slot, checked(check_slot_name));
  read_key(m, "publication", pg.publication, checked(check_publication_name));
  read_key(m, "create_slot", pg.create_slot, read_bool);
  read_key(m, "create_publication", pg.create_publication, read_bool);
  read_key(m, "binary", pg.binary, read_bool);
  if (const Field* policy = m.find("on_slot_lost")) {
    if (auto name = read_choice(ctx, *policy, kSlotLostPolicyNames)) {
      pg.on_slot_lost =
          *name == kSlotLostPolicyNames[1] ? SlotLostPolicy::kRecreate : SlotLostPolicy::kFail;
    }
  }
  read_key(m, "status_interval", pg.status_interval,
           duration_within(milliseconds(1), kMaxDuration));
  read_key(m, "receive_timeout", pg.receive_timeout,
           duration_within(milliseconds(100), kMaxDuration));
  if (const Field* backoff = m.find("reconnect_backoff")) read_backoff(ctx, *backoff, pg);
  // Each check is a catalog query on its own connection; more often than
  // this is load on the server that finds nothing sooner.
  read_key(m, "publication_check_interval", pg.publication_check_interval,
           duration_within(milliseconds(100), kMaxDuration));
  read_key(m, "failover_slot", pg.failover_slot, read_bool);
}

// Property values are passed to librdkafka as strings and may be secrets,
// so they are never quoted back.
// librdkafka's property names are short dotted words; anything else is a
// typo or garbage, and would not survive describe() as a YAML key.
constexpr size_t kMaxPropertyName = 128;
bool is_property_name(const std::string& name) {
  if (name.size() > kMaxPropertyName) return false;
  return std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

void read_properties(Context& ctx, const Field& field, std::map<std::string, std::string>& out) {
  Mapping m(ctx, field);
  for (const Field& property : m.fields()) {
    if (property.key.empty()) {
      report(ctx, property, "a property name must not be empty");
    } else if (!is_property_name(property.key)) {
      report(ctx, property,
             "a property name is letters, digits, '.', '_' and '-', at most " +
                 std::to_string(kMaxPropertyName) + " characters");
    } else if (property.key == "bootstrap.servers") {
      // Two spellings of one setting, one silently winning, is a trap.
      report(ctx, property, "set the brokers with kafka.brokers instead");
    } else if (!property.value.IsScalar()) {
      report(ctx, property,
             "expected a scalar (a string, number or boolean), got " + kind_of(property.value));
    } else if (auto value = read_string(ctx, property)) {
      out[property.key] = std::move(*value);
    }
  }
}

void read_kafka(const Mapping& root, KafkaConfig& kafka) {
  const Field* section = root.find("kafka");
  if (section == nullptr) return;
  Context& ctx = root.context();
  Mapping m(ctx, *section, kKafkaKeys);
  if (!m.valid()) return;
  read_key(m, "brokers", kafka.brokers, checked(check_not_empty));
  if (const Field* properties = m.find("properties")) {
    read_properties(ctx, *properties, kafka.properties);
  }
  read_key(m, "create_topics", kafka.create_topics, read_bool);
  read_key(m, "drain_timeout", kafka.drain_timeout, duration_within(milliseconds(0), kMaxDuration));
  if (const Field* delivery = m.find("delivery")) {
    if (auto name = read_choice(ctx, *delivery, kDeliveryNames)) {
      kafka.delivery = *name == kDeliveryNames[1] ? DeliveryGuarantee::kAtLeastOnce
                                                  : DeliveryGuarantee::kExactlyOnce;
    }
  }
  read_key(m, "transaction_interval", kafka.transaction_interval,
           duration_within(milliseconds(1), std::chrono::minutes(10)));
  read_key(m, "transaction_min_interval", kafka.transaction_min_interval,
           duration_within(milliseconds(0), std::chrono::minutes(10)));
  read_key(m, "transaction_max_records", kafka.transaction_max_records,
           count_within(1, kMaxInflightMessages));
  read_key(m, "transaction_timeout", kafka.transaction_timeout,
           duration_within(milliseconds(1000), std::chrono::minutes(15)));
  read_key(m, "transactional_id_prefix", kafka.transactional_id_prefix, checked(check_not_empty));
}

// Two roles on one column would make, say, the key and the payload the same
// bytes; that is always a mistake in the mapping.
void check_columns_distinct(Context& ctx, const Mapping& m, const OutboxColumns& columns) {
  for (size_t i = 0; i < kColumnMembers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      const std::string& name = columns.*kColumnMembers[i];
      if (name != columns.*kColumnMembers[j]) continue;
      const Field* written = m.find(kColumnKeys[i]);
      size_t other = j;
      if (written == nullptr) {
        written = m.find(kColumnKeys[j]);
        other = i;
      }
      if (written == nullptr) continue;
      const bool other_default = m.find(kColumnKeys[other]) == nullptr;
      report(ctx, *written,
             "column '" + name + "' is mapped twice, also as columns." +
                 std::string(kColumnKeys[other]) + (other_default ? " (its default)" : ""));
      break;
    }
  }
}

void read_columns(Context& ctx, const Field& field, OutboxColumns& columns) {
  Mapping m(ctx, field, kColumnKeys);
  if (!m.valid()) return;
  for (size_t i = 0; i < kColumnMembers.size(); ++i) {
    read_key(m, kColumnKeys[i], columns.*kColumnMembers[i], checked(check_column_name));
  }
  check_columns_distinct(ctx, m, columns);
}

// The relay's own headers (outbox-id, outbox-lsn, ...) start with this; a
// row header under one of those names would shadow what consumers
// deduplicate on.
constexpr std::string_view kReservedHeaderPrefix = "outbox-";

// Printable ASCII, spaces included: what header names are in practice, and
// text that check-config prints back unchanged.
bool is_header_name(std::string_view name) {
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
}

// A list of columns, each copied under its own name, or a mapping of header
// name to column: {eventType: type}.
void read_header_columns(Context& ctx, const Field& field, std::vector<HeaderColumn>& out) {
  std::vector<HeaderColumn> columns;
  if (field.value.IsMap()) {
    Mapping m(ctx, field);
    if (!m.valid()) return;
    for (const Field& entry : m.fields()) {
      // The name is the key: reported there.
      if (entry.key.empty()) {
        ctx.error(entry.key_at, entry.path + ": a header name must not be empty");
        continue;
      }
      if (!is_header_name(entry.key)) {
        ctx.error(entry.key_at, entry.path + ": a header name is printable ASCII characters");
        continue;
      }
      if (entry.key.starts_with(kReservedHeaderPrefix)) {
        ctx.error(entry.key_at,
                  entry.path + ": header names starting with '" +
                      std::string(kReservedHeaderPrefix) +
                      "' are the relay's own (outbox-id, outbox-lsn, outbox-xid, ...)");
        continue;
      }
      auto name = read_checked(ctx, entry, check_column_name);
      if (!name) continue;
      columns.push_back(HeaderColumn{std::move(*name), entry.key});
    }
    out = std::move(columns);
    return;
  }
  if (field.value.IsScalar()) {
    report(ctx, field,
           "expected a sequence of columns or a mapping of header name to column, got " +
               kind_of(field.value));
    return;
  }
  auto items = read_sequence(ctx, field);
  if (!items) return;
  for (const Field& item : *items) {
    auto name = read_checked(ctx, item, check_column_name);
    if (!name) continue;
    if (std::find_if(columns.begin(), columns.end(),
                     [&](const HeaderColumn& c) { return c.column == *name; }) != columns.end()) {
      report(ctx, item, "column '" + *name + "' is listed twice");
      continue;
    }
    columns.push_back(HeaderColumn{std::move(*name), std::nullopt});
  }
  out = std::move(columns);
}

// Listed explicitly, schema included: skipping a table's changes is a
// decision, and a name that resolves by search_path could skip another one.
void read_ignore_relations(Context& ctx, const Field& field, const std::string& outbox_table,
                           std::vector<std::string>& out) {
  auto items = read_sequence(ctx, field);
  if (!items) return;
  std::vector<std::string> names;
  for (const Field& item : *items) {
    auto name = read_checked(ctx, item, check_table_name);
    if (!name) continue;
    if (name->find('.') == std::string::npos) {
      report_value(ctx, item, "must be schema-qualified (schema.table)", *name);
    } else if (*name == outbox_table) {
      report_value(ctx, item, "is the outbox table itself", *name);
    } else if (std::find(names.begin(), names.end(), *name) != names.end()) {
      report_value(ctx, item, "is listed twice", *name);
    } else {
      names.push_back(std::move(*name));
    }
  }
  out = std::move(names);
}

// The template's ${column} placeholders name columns of the outbox row, not
// environment variables, so the value is read verbatim.
void read_topic_template(Context& ctx, const Field& field, std::optional<std::string>& out) {
  if (field.value.IsNull()) {
    out.reset();
    return;
  }
  if (auto text = read_checked(ctx, field, check_template, Expand::kVerbatim)) out = *text;
}

void read_outbox(const Mapping& root, OutboxConfig& outbox) {
  const Field* section = root.find("outbox");
  if (section == nullptr) return;
  Context& ctx = root.context();
  Mapping m(ctx, *section, kOutboxKeys);
  if (!m.valid()) return;
  read_key(m, "table", outbox.table, checked(check_table_name));
  if (const Field* columns = m.find("columns")) read_columns(ctx, *columns, outbox.columns);
  if (const Field* tmpl = m.find("topic_template")) {
    read_topic_template(ctx, *tmpl, outbox.topic_template);
  }
  if (const Field* headers = m.find("header_columns")) {
    read_header_columns(ctx, *headers, outbox.header_columns);
  }
  if (const Field* policy = m.find("on_bad_row")) {
    if (auto name = read_choice(ctx, *policy, kBadRowPolicyNames)) {
      outbox.on_bad_row =
          *name == kBadRowPolicyNames[1] ? BadRowPolicy::kHalt : BadRowPolicy::kDeadLetter;
    }
  }
  if (const Field* policy = m.find("null_payload")) {
    if (auto name = read_choice(ctx, *policy, kNullPayloadNames)) {
      outbox.null_payload = *name == kNullPayloadNames[1] ? NullPayloadPolicy::kTombstone
                                                          : NullPayloadPolicy::kDeadLetter;
    }
  }
  read_key(m, "dead_letter_topic", outbox.dead_letter_topic, checked(check_topic_name));
  if (const Field* ignore = m.find("ignore_relations")) {
    read_ignore_relations(ctx, *ignore, outbox.table, outbox.ignore_relations);
  }
  if (const Field* source = m.find("source")) {
    if (auto name = read_choice(ctx, *source, kOutboxSourceNames)) {
      const auto* at = std::find(kOutboxSourceNames.begin(), kOutboxSourceNames.end(), *name);
      outbox.source = static_cast<OutboxSource>(at - kOutboxSourceNames.begin());
    }
  }
  read_key(m, "message_prefix", outbox.message_prefix, checked(check_message_prefix));
  read_key(m, "allow_non_transactional_messages", outbox.allow_non_transactional_messages,
           read_bool);
}

void read_limits(const Mapping& root, LimitsConfig& limits) {
  const Field* section = root.find("limits");
  if (section == nullptr) return;
  Mapping m(root.context(), *section, kLimitsKeys);
  if (!m.valid()) return;
  read_key(m, "max_inflight_messages", limits.max_inflight_messages,
           count_within(1, kMaxInflightMessages));
  read_key(m, "max_inflight_bytes", limits.max_inflight_bytes, read_positive_size);
}

void read_http(const Mapping& root, HttpConfig& http) {
  const Field* section = root.find("http");
  if (section == nullptr) return;
  Mapping m(root.context(), *section, kHttpKeys);
  if (!m.valid()) return;
  read_key(m, "listen", http.listen, checked(check_listen_address));
  read_key(m, "ready_kafka_timeout", http.ready_kafka_timeout,
           duration_within(milliseconds(0), kMaxDuration));
}

void read_log(const Mapping& root, LogConfig& log) {
  const Field* section = root.find("log");
  if (section == nullptr) return;
  Context& ctx = root.context();
  Mapping m(ctx, *section, kLogKeys);
  if (!m.valid()) return;
  if (const Field* level = m.find("level")) assign(log.level, read_choice(ctx, *level, kLogLevels));
  if (const Field* format = m.find("format")) {
    if (auto name = read_choice(ctx, *format, kLogFormatNames)) {
      log.format = *name == kLogFormatNames[1] ? LogFormat::kJson : LogFormat::kText;
    }
  }
}

// The coordination topic's name is derived from the group id unless written,
// so an id that cannot be part of a topic name is reported at the id.
void read_coordination_topic(Context& ctx, const Mapping& m, GroupConfig& group) {
  if (const Field* topic = m.find("coordination_topic")) {
    assign(group.coordination_topic, read_checked(ctx, *topic, check_topic_name));
    return;
  }
  if (group.id.empty()) return;
  group.coordination_topic = group.id + ".slots";
  if (auto ok = check_topic_name(group.coordination_topic); !ok) {
    report_value(ctx, *m.find("id"),
                 "cannot name the coordination topic '" + group.coordination_topic +
                     "' (" + ok.error().message + "); set group.coordination_topic",
                 group.id);
  }
}

// A duration of the group that is off when null and never shorter than the
// session timeout: a holder is terminated (takeover_after) only after it had
// the whole session timeout to notice it lost the group and stop by itself;
// an instance that yielded its slots earlier (yield_after) would give them up
// before a rebalance could even have handed them over.
void read_at_least_session(Context& ctx, const Field& field, const GroupConfig& group,
                           const char* null_means,
                           std::optional<milliseconds>& out) {
  if (field.value.IsNull()) {
    out.reset();
    return;
  }
  auto d = duration_within(milliseconds(1), kMaxDuration)(ctx, field);
  if (!d) return;
  if (*d < group.session_timeout) {
    report_value(ctx, field,
                 "must be at least group.session_timeout (" +
                     format_duration(group.session_timeout) + ")" + null_means,
                 format_duration(*d));
    return;
  }
  out = d;
}

void read_group(const Mapping& root, std::optional<GroupConfig>& out) {
  const Field* section = root.find("group");
  if (section == nullptr) return;
  Context& ctx = root.context();
  Mapping m(ctx, *section, kGroupKeys);
  if (!m.valid()) return;
  GroupConfig group;
  if (const Field* id = m.find("id")) {
    assign(group.id, read_checked(ctx, *id, check_not_empty));
  } else {
    m.report_missing("id");
  }
  read_key(m, "session_timeout", group.session_timeout,
           duration_within(kMinSessionTimeout, kMaxSessionTimeout));
  read_coordination_topic(ctx, m, group);
  if (const Field* takeover = m.find("takeover_after")) {
    read_at_least_session(ctx, *takeover, group, "", group.takeover_after);
  }
  if (const Field* yield = m.find("yield_after")) {
    read_at_least_session(ctx, *yield, group, ", or null to turn it off", group.yield_after);
  } else {
    group.yield_after = std::max(*group.yield_after, group.session_timeout);
  }
  out = std::move(group);
}

void read_slot(Context& ctx, const Field& item, SlotConfig& slot) {
  Mapping m(ctx, item, kSlotKeys);
  if (!m.valid()) return;
  read_postgres(m, slot.postgres);
  read_outbox(m, slot.outbox);
}

// Two entries for one slot of one database would stream it twice.
void check_slots_distinct(Context& ctx, const std::vector<Field>& items,
                          const std::vector<SlotConfig>& slots) {
  for (size_t i = 0; i < slots.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (slots[i].postgres.slot != slots[j].postgres.slot ||
          slots[i].postgres.dsn != slots[j].postgres.dsn) {
        continue;
      }
      report(ctx, items[i],
             "slot '" + slots[i].postgres.slot + "' of the same database is already " +
                 items[j].path + " (line " + std::to_string(items[j].at().line) + ")");
      break;
    }
  }
}

void read_slots(const Mapping& root, const std::optional<GroupConfig>& group,
                std::vector<SlotConfig>& out) {
  const Field* section = root.find("slots");
  if (section == nullptr) return;
  Context& ctx = root.context();
  auto items = read_sequence(ctx, *section);
  if (!items) return;
  if (items->empty()) {
    report(ctx, *section, "must list at least one slot");
    return;
  }
  if (!group) {
    report(ctx, *section,
           "needs a group section: several slots are shared out by a Kafka consumer group");
  }
  for (const char* single : {"postgres", "outbox"}) {
    if (const Field* f = root.find(single)) {
      ctx.error(f->key_at, "'" + std::string(single) +
                               "' cannot be used with 'slots'; write it under each slot");
    }
  }
  std::vector<SlotConfig> slots(items->size());
  for (size_t i = 0; i < items->size(); ++i) read_slot(ctx, (*items)[i], slots[i]);
  check_slots_distinct(ctx, *items, slots);
  out = std::move(slots);
}

}  // namespace

Config read_config(Context& ctx, const YAML::Node& root) {
  Config cfg;
  const Mapping top(ctx, Field{"", "", position_of(root.Mark()), root}, kRootKeys);
  if (!top.valid()) return cfg;
  read_group(top, cfg.group);
  if (top.find("slots") != nullptr) {
    read_slots(top, cfg.group, cfg.slots);
  } else {
    read_postgres(top, cfg.postgres);
    read_outbox(top, cfg.outbox);
  }
  read_kafka(top, cfg.kafka);
  read_limits(top, cfg.limits);
  read_http(top, cfg.http);
  read_log(top, cfg.log);
  return cfg;
}

}  // namespace config
