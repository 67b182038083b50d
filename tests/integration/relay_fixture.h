#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/harness.h"

namespace itest {

using namespace std::chrono_literals;

// OUTBOX_RELAY_SANITIZED_BIN, a relay built with ASan and UBSan, takes
// precedence over OUTBOX_RELAY_BIN (which ctest sets to the plain build).
inline const char* sanitized_relay() { return std::getenv("OUTBOX_RELAY_SANITIZED_BIN"); }

inline std::string relay_binary() {
  if (const char* bin = sanitized_relay()) return bin;
  const char* bin = std::getenv("OUTBOX_RELAY_BIN");
  return bin ? bin : "outbox-relay";
}

// Memory bounds hold for the production build; the sanitizers' shadow memory
// and quarantine are not what users run.
inline bool memory_bounds_apply() { return sanitized_relay() == nullptr; }

// OUTBOX_SOAK=1 (the soak label) runs scenarios at production scale.
inline bool soak() {
  const char* v = std::getenv("OUTBOX_SOAK");
  return v && std::string(v) == "1";
}

// Peak resident set of a running process, in KiB (VmHWM); -1 if unknown.
inline long peak_rss_kib(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// An LSN's text form "X/Y" (two hex numbers) as one 64-bit position, so
// that tests compare thousands of them without asking the server each time.
inline uint64_t lsn_position(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) {
    throw std::invalid_argument("not an LSN: " + text);
  }
  const uint64_t hi = std::stoull(text.substr(0, slash), nullptr, 16);
  const uint64_t lo = std::stoull(text.substr(slash + 1), nullptr, 16);
  return (hi << 32) | lo;
}

// The value of the sample whose name and labels are exactly `series` in a
// /metrics page.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return std::nullopt;
}

// What `promtool check metrics` finds wrong with a /metrics page; "" when
// it passes without lint findings.
inline std::string promtool_findings(const std::string& text) {
  harness::TempDir dir;
  const std::string scrape = dir.path() + "/scrape.txt";
  std::ofstream(scrape) << text;
  auto check = harness::run_command({"sh", "-c", "promtool check metrics < " + scrape});
  std::string findings = check.out + check.err;
  if (check.exit_code != 0 && findings.empty()) {
    findings = "promtool exited with " + std::to_string(check.exit_code);
  }
  return findings;
}

struct OutboxDb {
  std::string name;
  std::string dsn;
};

// One PostgreSQL and one Kafka per test binary; each test gets its own
// database, slot and topics so tests cannot see each other's rows.
class RelayTest : public ::testing::Test {
 protected:
  harness::PostgresServer& pg() { return harness::Servers::postgres(); }
  harness::KafkaBroker& kafka() { return harness::Servers::kafka(); }

  std::string unique(const std::string& prefix) {
    static int counter = 0;
    return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  }

  // A fresh database with the schema from sql/ applied.
  OutboxDb make_outbox_db() { return make_outbox_db(pg()); }
  OutboxDb make_outbox_db(harness::PostgresServer& server) {
    OutboxDb db;
    db.name = unique("db");
    server.create_database(db.name);
    for (const char* f : {"/sql/01-outbox-table.sql", "/sql/02-relay-role.sql"}) {
      std::ifstream in(std::string(OUTBOX_SOURCE_DIR) + f);
      std::string sql((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      server.exec(sql, db.name);
    }
    db.dsn = server.dsn(db.name);
    return db;
  }

  // A new database with the outbox schema, a slot name and a topic with
  // `partitions` partitions, none of them seen by another test.
  struct Scene {
    OutboxDb db;
    std::string slot;
    std::string topic;
  };
  Scene new_scene(int partitions = 1) {
    Scene s{make_outbox_db(), unique("slot"), unique("events")};
    kafka().create_topic(s.topic, partitions);
    return s;
  }

  // SIGTERM, then a clean drain: exit code 0.
  static void expect_clean_stop(harness::Process& relay) {
    EXPECT_EQ(relay.terminate(30s), std::optional<int>(0)) << relay.log_contents();
  }

  // What a consumer of the relay's topics uses: with exactly once (the
  // default) records of aborted Kafka transactions are in the log but never
  // read. Without transactions it reads what read_uncommitted reads.
  harness::ClientSettings read_committed() {
    return harness::ClientSettings{kafka().bootstrap(), {{"isolation.level", "read_committed"}}};
  }

  std::string write_config(const std::string& body) {
    dirs_.push_back(std::make_unique<harness::TempDir>());
    std::string path = dirs_.back()->path() + "/relay.yaml";
    std::ofstream(path) << body;
    return path;
  }

  std::string basic_config(const OutboxDb& db, const std::string& slot,
                           const std::string& extra = "") {
    return "postgres:\n"
           "  dsn: \"" + db.dsn + "\"\n"
           "  slot: " + slot + "\n"
           "  publication: outbox_pub\n"
           "  status_interval: 200ms\n"
           "  reconnect_backoff: {min: 100ms, max: 1s}\n"
           "kafka:\n"
           "  brokers: \"" + kafka().bootstrap() + "\"\n"
           "  create_topics: true\n"
           "  drain_timeout: 10s\n"
           "http:\n"
           "  listen: \"\"\n"
           "log:\n"
           "  level: info\n" +
           extra;
  }

  // `env` adds to the test's environment (passwords for ${VAR} in the config).
  std::unique_ptr<harness::Process> start_relay(const std::string& config_path,
                                                std::map<std::string, std::string> env = {}) {
    dirs_.push_back(std::make_unique<harness::TempDir>());
    auto p = std::make_unique<harness::Process>(
        std::vector<std::string>{relay_binary(), "run", "--config", config_path}, std::move(env),
        dirs_.back()->path() + "/relay.log");
    return p;
  }

  bool wait_streaming(harness::Process& relay, std::chrono::milliseconds deadline = 30s) {
    return harness::wait_until(
        [&] { return relay.log_contents().find("streaming from") != std::string::npos ||
                     !relay.running(); },
        deadline) &&
           relay.running();
  }

  std::optional<std::string> confirmed_flush(const OutboxDb& db, const std::string& slot) {
    return pg().query_scalar(
        "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '" + slot +
            "'",
        db.name);
  }

  // PostgreSQL compares LSNs for us: true when the slot confirmed at least `lsn`.
  bool slot_confirmed_at_least(const OutboxDb& db, const std::string& slot,
                               const std::string& lsn) {
    auto v = pg().query_scalar("SELECT confirmed_flush_lsn >= '" + lsn +
                                   "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" +
                                   slot + "'",
                               db.name);
    return v && *v == "t";
  }

  // Whether the slot confirmed a position past `lsn`; nullopt without the slot.
  std::optional<bool> slot_confirmed_past(const OutboxDb& db, const std::string& slot,
                                          const std::string& lsn) {
    auto v = pg().query_scalar("SELECT confirmed_flush_lsn > '" + lsn +
                                   "'::pg_lsn FROM pg_replication_slots WHERE slot_name = '" +
                                   slot + "'",
                               db.name);
    if (!v) return std::nullopt;
    return *v == "t";
  }

  // The walsender holding the slot; nullopt while none does.
  std::optional<std::string> active_pid(const OutboxDb& db, const std::string& slot) {
    return pg().query_scalar(
        "SELECT active_pid::text FROM pg_replication_slots WHERE slot_name = '" + slot + "'",
        db.name);
  }

  // "true" or "false"; nullopt when there is no such slot.
  std::optional<std::string> slot_active(const OutboxDb& db, const std::string& slot) {
    return pg().query_scalar(
        "SELECT active::text FROM pg_replication_slots WHERE slot_name = '" + slot + "'",
        db.name);
  }

  std::string current_wal_lsn(const OutboxDb& db) {
    return *pg().query_scalar("SELECT pg_current_wal_lsn()::text", db.name);
  }

  // Outer nullopt: no such header; inner nullopt: the header has a null value.
  static std::optional<std::optional<std::string>> header(const harness::ConsumedRecord& r,
                                                          const std::string& key) {
    for (const auto& [k, v] : r.headers) {
      if (k == key) return std::optional<std::optional<std::string>>(v);
    }
    return std::optional<std::optional<std::string>>();
  }

  std::vector<std::unique_ptr<harness::TempDir>> dirs_;
};

}  // namespace itest
