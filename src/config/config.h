#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/result.h"

namespace config {

enum class BadRowPolicy { kDeadLetter, kHalt };
// Where events come from: rows inserted into the outbox table, transactional
// logical decoding messages (pg_logical_emit_message) with the configured
// prefix, or both, in commit order.
enum class OutboxSource { kTable, kMessages, kBoth };
// A row whose payload column is NULL: a bad row (dead_letter), or a record
// with a null value (tombstone), as Debezium's route.tombstone.on.empty.payload.
enum class NullPayloadPolicy { kDeadLetter, kTombstone };
enum class DeliveryGuarantee { kExactlyOnce, kAtLeastOnce };
enum class SlotLostPolicy { kFail, kRecreate };
enum class LogFormat { kText, kJson };

struct PostgresConfig {
  std::string dsn;  // libpq conninfo or URI; may carry a password, never logged
  std::string slot = "outbox_relay";
  std::string publication = "outbox_pub";
  bool create_slot = true;
  bool create_publication = true;
  bool binary = true;  // request binary tuple data where the server supports it
  // A slot invalidated because the WAL it needed was removed: stop (fail),
  // or drop it and start again from the server's current position
  // (recreate), which skips whatever was committed in between.
  SlotLostPolicy on_slot_lost = SlotLostPolicy::kFail;
  std::chrono::milliseconds status_interval{1000};
  // Silence from the server this long means the network path is dead: the
  // relay asks for a reply at half of it and reconnects at all of it.
  std::chrono::milliseconds receive_timeout{60000};
  std::chrono::milliseconds reconnect_backoff_min{200};
  std::chrono::milliseconds reconnect_backoff_max{10000};
  // How often, while streaming, a separate connection checks that the outbox
  // is still in the publication and the publication still publishes
  // inserts: ALTER PUBLICATION ... DROP TABLE leaves no trace in the stream.
  std::chrono::milliseconds publication_check_interval{30000};
  // Create the slot as a failover slot (PostgreSQL 17+), and turn an
  // existing one into one.
  bool failover_slot = true;

  bool operator==(const PostgresConfig&) const = default;
};

// Exactly once's default commit cadence (bench/RESULTS-eos-vs-alo.md);
// also the slot core's default.
inline constexpr std::chrono::milliseconds kDefaultTransactionInterval{250};
// Each Kafka commit costs the broker a transaction-log write and a marker
// per partition: commits as fast as single-row transactions arrive saturated
// a 2-core host's broker at 1,000 rows/s (bench/PROFILE.md, round five).
inline constexpr std::chrono::milliseconds kDefaultTransactionMinInterval{20};
inline constexpr uint64_t kDefaultTransactionMaxRecords = 50000;

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";
  // librdkafka properties, passed through verbatim after our defaults.
  std::map<std::string, std::string> properties;
  bool create_topics = false;
  std::chrono::milliseconds drain_timeout{30000};
  // exactly_once: one transactional producer per slot; records and the
  // position they reach commit together as soon as the stream is caught up,
  // at the latest after transaction_interval or at transaction_max_records.
  DeliveryGuarantee delivery = DeliveryGuarantee::kExactlyOnce;
  std::chrono::milliseconds transaction_interval = kDefaultTransactionInterval;
  // A caught-up commit waits until this long after the last one began.
  std::chrono::milliseconds transaction_min_interval = kDefaultTransactionMinInterval;
  uint64_t transaction_max_records = kDefaultTransactionMaxRecords;
  std::chrono::milliseconds transaction_timeout{300000};
  std::string transactional_id_prefix = "outbox-relay-";

  bool operator==(const KafkaConfig&) const = default;
};

struct OutboxColumns {
  std::string id = "id";
  std::string topic = "topic";
  std::string key = "key";
  std::string partition = "partition";
  std::string headers = "headers";
  std::string payload = "payload";

  bool operator==(const OutboxColumns&) const = default;
};

// A column copied into a header of every record.
struct HeaderColumn {
  std::string column;
  // The header's name; nullopt: the column's name as the catalog spells it.
  std::optional<std::string> header;

  bool operator==(const HeaderColumn&) const = default;
};

struct OutboxConfig {
  std::string table = "public.outbox";  // schema-qualified; unqualified means public
  OutboxColumns columns;
  std::optional<std::string> topic_template;  // e.g. "events.${topic}"
  std::vector<HeaderColumn> header_columns;   // extra columns copied into headers
  BadRowPolicy on_bad_row = BadRowPolicy::kDeadLetter;
  NullPayloadPolicy null_payload = NullPayloadPolicy::kDeadLetter;
  std::string dead_letter_topic = "outbox.dead-letter";
  // Schema-qualified tables that share the publication with the outbox and
  // whose changes the relay skips; any other relation in the stream stops it.
  std::vector<std::string> ignore_relations;
  OutboxSource source = OutboxSource::kTable;
  // Messages with this prefix are the relay's (source messages or both);
  // messages with any other prefix belong to someone else and are skipped.
  std::string message_prefix = "outbox";
  // A non-transactional message is written even when its transaction rolls
  // back; unless allowed, it is a bad row (dead-lettered or halting).
  bool allow_non_transactional_messages = false;

  bool reads_table() const { return source != OutboxSource::kMessages; }
  bool reads_messages() const { return source != OutboxSource::kTable; }

  bool operator==(const OutboxConfig&) const = default;
};

struct LimitsConfig {
  uint64_t max_inflight_messages = 20000;
  uint64_t max_inflight_bytes = 4194304;

  bool operator==(const LimitsConfig&) const = default;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9187";  // empty disables the endpoints
  // /readyz answers 503 once no Kafka broker has answered the relay's probe
  // for this long; 0 leaves Kafka out of readiness.
  std::chrono::milliseconds ready_kafka_timeout{15000};

  bool operator==(const HttpConfig&) const = default;
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error
  LogFormat format = LogFormat::kText;

  bool operator==(const LogConfig&) const = default;
};

// Slot ownership through a Kafka consumer group: each slot maps to one
// partition of the coordination topic, and an instance streams the slots whose
// partitions the group assigns to it.
struct GroupConfig {
  std::string id;
  std::chrono::milliseconds session_timeout{10000};
  std::string coordination_topic;  // "<id>.slots" when not written
  // Terminate a relay that still holds an assigned slot after this long; off
  // when empty.
  std::optional<std::chrono::milliseconds> takeover_after;
  // Leave the group (giving up every assigned slot) when an assigned slot
  // has not streamed for this long, so that another instance can try; off
  // when empty.
  std::optional<std::chrono::milliseconds> yield_after = std::chrono::milliseconds(60000);

  bool operator==(const GroupConfig&) const = default;
};

// One replication slot and the outbox it carries.
struct SlotConfig {
  PostgresConfig postgres;
  OutboxConfig outbox;

  bool operator==(const SlotConfig&) const = default;
};

struct Config {
  std::string source_file;
  PostgresConfig postgres;  // the single slot, when `slots` is not written
  KafkaConfig kafka;
  OutboxConfig outbox;
  LimitsConfig limits;
  HttpConfig http;
  LogConfig log;
  std::optional<GroupConfig> group;
  std::vector<SlotConfig> slots;  // empty: the top-level postgres/outbox

  bool operator==(const Config&) const = default;
};

// The slots this configuration serves, in coordination-partition order: the
// `slots` list, or the top-level postgres/outbox as the only one.
std::vector<SlotConfig> slots_of(const Config& cfg);
// `cfg` narrowed to one slot: its postgres and outbox in the top-level keys.
Config for_slot(const Config& cfg, const SlotConfig& slot);

// One problem found while loading, located in the source file.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a position
  int column = 0;  // 1-based
  std::string message;

  // "file:line:column: message", or "file: message" without a position.
  std::string format() const;
};

struct LoadFailure {
  std::vector<Diagnostic> diagnostics;
};

// Looks up an environment variable; nullopt when it is not set.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

// Reads, expands ${VAR} / ${VAR:-default} from the environment, validates and
// returns an immutable Config, or every problem found.
std::variant<Config, LoadFailure> load_file(const std::string& path);
std::variant<Config, LoadFailure> load_string(const std::string& yaml, const std::string& name);
// Same, with the environment supplied by the caller (tests, fuzzing).
std::variant<Config, LoadFailure> load_string(const std::string& yaml, const std::string& name,
                                              const EnvLookup& env);

// The DSN with its passwords replaced by "****": conninfo `password=` and
// `sslpassword=` values (quoted or not), a URI's `user:password@` and
// password query parameters, and a dbname that is itself a connection
// string. Safe to log.
std::string redact_dsn(std::string_view dsn);

// A libpq error message about `dsn` with every quoted piece of the DSN that
// redact_dsn would hide replaced by "****"; libpq quotes the offending token,
// or the whole URI, when it cannot parse a connection string.
std::string redact_libpq_message(std::string_view message, std::string_view dsn);

// Whether a librdkafka property holds a secret and must not be shown: its
// name contains "password", "secret" or "sasl.oauthbearer", or it is an
// inline private key (ssl.key.pem).
bool is_secret_property(std::string_view key);

// The effective configuration, defaults included, as YAML that load_string
// accepts again; secrets are replaced by "****". Printed by check-config.
std::string describe(const Config& cfg);

}  // namespace config
