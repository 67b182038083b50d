#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace config {

enum class BadRowPolicy { kDeadLetter, kHalt };
enum class LogFormat { kText, kJson };

struct PostgresConfig {
  std::string dsn;  // libpq conninfo or URI; may carry a password, never logged
  std::string slot = "outbox_relay";
  std::string publication = "outbox_pub";
  bool create_slot = true;
  bool create_publication = true;
  bool binary = true;  // request binary tuple data where the server supports it
  std::chrono::milliseconds status_interval{1000};
  std::chrono::milliseconds reconnect_backoff_min{200};
  std::chrono::milliseconds reconnect_backoff_max{10000};
};

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";
  // librdkafka properties, passed through verbatim after our defaults.
  std::map<std::string, std::string> properties;
  bool create_topics = false;
  std::chrono::milliseconds drain_timeout{30000};
};

struct OutboxColumns {
  std::string id = "id";
  std::string topic = "topic";
  std::string key = "key";
  std::string partition = "partition";
  std::string headers = "headers";
  std::string payload = "payload";
};

struct OutboxConfig {
  std::string table = "public.outbox";  // schema-qualified; unqualified means public
  OutboxColumns columns;
  std::optional<std::string> topic_template;  // e.g. "events.${topic}"
  std::vector<std::string> header_columns;    // extra columns copied into headers
  BadRowPolicy on_bad_row = BadRowPolicy::kDeadLetter;
  std::string dead_letter_topic = "outbox.dead-letter";
};

struct LimitsConfig {
  uint64_t max_inflight_messages = 100000;
  uint64_t max_inflight_bytes = 268435456;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:9187";  // empty disables the endpoints
};

struct LogConfig {
  std::string level = "info";  // trace, debug, info, warn, error
  LogFormat format = LogFormat::kText;
};

struct Config {
  std::string source_file;
  PostgresConfig postgres;
  KafkaConfig kafka;
  OutboxConfig outbox;
  LimitsConfig limits;
  HttpConfig http;
  LogConfig log;
};

// One problem found while loading, located in the source file.
struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when not tied to a position
  int column = 0;  // 1-based
  std::string message;

  std::string format() const;  // "file:line:column: message"
};

struct LoadFailure {
  std::vector<Diagnostic> diagnostics;
};

// Reads, expands ${VAR} / ${VAR:-default} from the environment, validates and
// returns an immutable Config, or every problem found.
std::variant<Config, LoadFailure> load_file(const std::string& path);
std::variant<Config, LoadFailure> load_string(const std::string& yaml, const std::string& name);

}  // namespace config
