// Scenarios of what operators watch: /metrics counts what reached Kafka and
// passes promtool, /readyz follows the stream, /healthz the loop, and JSON
// log lines carry fields and no payloads.
#include <httplib.h>

#include <sstream>

#include "relay_fixture.h"
#include "relay_http.h"
#include "test_rows.h"

namespace itest {
namespace {

class ObservabilityTest : public RelayTest {
 protected:
  static std::string http_and_json_logs() {
    return "http:\n  listen: \"127.0.0.1:0\"\nlog:\n  level: info\n  format: json\n";
  }

  static httplib::Result get(int port, const char* path) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(5);
    return c.Get(path);
  }

  static int status(int port, const char* path) {
    auto r = get(port, path);
    return r ? r->status : -1;
  }

  static std::string metrics(int port) {
    auto r = get(port, "/metrics");
    return r && r->status == 200 ? r->body : std::string();
  }

  // The default options are replaced for the DSN-less config below.
  std::string config_without_db(const std::string& dsn, const std::string& slot) {
    return "postgres:\n"
           "  dsn: \"" + dsn + "\"\n"
           "  slot: " + slot + "\n"
           "  reconnect_backoff: {min: 100ms, max: 500ms}\n"
           "kafka:\n"
           "  brokers: \"" + kafka().bootstrap() + "\"\n"
           "  create_topics: true\n" +
           http_and_json_logs();
  }
};

TEST_F(ObservabilityTest, MetricsCountPublishedRowsPerTopicAndPassPromtool) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  const std::string t1 = unique("orders");
  const std::string t2 = unique("payments");
  kafka().create_topic(t1, 3);
  kafka().create_topic(t2, 1);
  std::string cfg = basic_config(db, slot);
  cfg = cfg.substr(0, cfg.find("http:\n")) + http_and_json_logs();
  auto relay = start_relay(write_config(cfg));
  const int port = wait_http_port(*relay);
  ASSERT_GT(port, 0) << relay->log_contents();
  ASSERT_TRUE(harness::wait_until([&] { return status(port, "/readyz") == 200; }, 30s))
      << relay->log_contents();
  EXPECT_EQ(status(port, "/healthz"), 200);

  const std::string marker = "PAYLOAD-MUST-NOT-BE-LOGGED";
  pg().exec("BEGIN;" + insert_rows_sql(t1, 1, 150) + insert_rows_sql(t2, 151, 50) + "COMMIT;",
            db.name);
  pg().exec("INSERT INTO outbox (id, topic, payload) VALUES ('" + row_id(201) + "', '" + t2 +
                "', '" + marker + "')",
            db.name);
  const std::string end_lsn = current_wal_lsn(db);

  const std::string l1 = "{slot=\"" + slot + "\",topic=\"" + t1 + "\"}";
  const std::string l2 = "{slot=\"" + slot + "\",topic=\"" + t2 + "\"}";
  const std::string ls = "{slot=\"" + slot + "\"}";
  std::string text;
  ASSERT_TRUE(harness::wait_until(
      [&] {
        text = metrics(port);
        return sample(text, "outbox_relay_records_published_total" + l1) == 150.0 &&
               sample(text, "outbox_relay_records_published_total" + l2) == 51.0;
      },
      60s))
      << text;
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end_lsn); }, 30s));
  // The retained WAL is read every 10 s on its own connection.
  ASSERT_TRUE(harness::wait_until(
      [&] {
        text = metrics(port);
        return sample(text, "outbox_relay_slot_retained_wal_bytes" + ls).has_value() &&
               sample(text, "outbox_relay_confirmed_lsn" + ls) > 0.0;
      },
      30s))
      << text;

  EXPECT_EQ(sample(text, "outbox_relay_records_failed_total" + l1), 0.0);
  EXPECT_EQ(sample(text, "outbox_relay_records_dead_lettered_total" + ls), 0.0);
  EXPECT_EQ(sample(text, "outbox_relay_in_flight_records" + ls), 0.0);
  EXPECT_EQ(sample(text, "outbox_relay_in_flight_bytes" + ls), 0.0);
  EXPECT_EQ(sample(text, "outbox_relay_commit_to_ack_seconds_count" + ls), 201.0);
  EXPECT_EQ(sample(text, "outbox_relay_commit_to_ack_seconds_bucket{slot=\"" + slot +
                             "\",le=\"+Inf\"}"),
            201.0);
  EXPECT_GE(*sample(text, "outbox_relay_received_lsn" + ls),
            *sample(text, "outbox_relay_confirmed_lsn" + ls));
  EXPECT_GE(*sample(text, "outbox_relay_slot_retained_wal_bytes" + ls), 0.0);
  EXPECT_EQ(sample(text, "outbox_relay_slots_owned"), 1.0);
  EXPECT_EQ(sample(text, "outbox_relay_reconnects_total" + ls), 0.0);
  EXPECT_NE(text.find("outbox_relay_build_info{version=\""), std::string::npos);
  // The harness's server keeps max_slot_wal_keep_size = -1: the slot is
  // reserved, safe_wal_size is NULL, and nothing is worth a warning.
  EXPECT_EQ(sample(text, "outbox_relay_slot_wal_status{slot=\"" + slot +
                             "\",wal_status=\"reserved\"}"),
            1.0)
      << text;
  EXPECT_EQ(sample(text, "outbox_relay_slot_wal_status{slot=\"" + slot + "\",wal_status=\"lost\"}"),
            0.0);
  EXPECT_EQ(text.find("outbox_relay_slot_safe_wal_bytes"), std::string::npos) << text;
  EXPECT_EQ(relay->log_contents().find("max_slot_wal_keep_size"), std::string::npos)
      << relay->log_contents();

  EXPECT_EQ(promtool_findings(text), "") << text;

  expect_clean_stop(*relay);

  const std::string log = relay->log_contents();
  EXPECT_EQ(log.find(marker), std::string::npos) << "a payload reached the log";
  std::istringstream lines(log);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_EQ(line.rfind("{\"time\":\"", 0), 0u) << line;
    EXPECT_EQ(line.back(), '}') << line;
    EXPECT_NE(line.find("\"level\":\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"msg\":\""), std::string::npos) << line;
  }
  EXPECT_GT(n, 3);
  EXPECT_NE(log.find("\"slot\":\"" + slot + "\",\"lsn\":\""), std::string::npos) << log;
}

// An LSN as PostgreSQL and the relay's logs write it.
std::string lsn_text(uint64_t position) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(position >> 32),
                static_cast<unsigned>(position & 0xFFFFFFFFu));
  return buf;
}

// Exactly once: commits and aborts are counted, every commit is timed, and
// the checkpoint metric is what Kafka holds, as the next start reads it back.
TEST_F(ObservabilityTest, ExactlyOnceMetricsCountCommitsAndAbortsAndShowTheCommittedCheckpoint) {
  auto db = make_outbox_db();
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  const std::string small = unique("small");
  const std::string dlq = unique("dlq");
  kafka().create_topic(topic, 1);
  kafka().create_topic(dlq, 1);
  // Only the broker can refuse the record below: under the producer's
  // message.max.bytes, over the topic's, and incompressible.
  harness::create_topic(kafka().bootstrap(), small, 1, 30s, {{"max.message.bytes", "2000"}});
  std::string body = basic_config(
      db, slot, "outbox:\n  on_bad_row: dead_letter\n  dead_letter_topic: " + dlq + "\n");
  body.replace(body.find("  drain_timeout: 10s\n"), 20,
               "  drain_timeout: 10s\n  delivery: exactly_once\n");
  body.replace(body.find("listen: \"\""), 10, "listen: \"127.0.0.1:0\"");
  const std::string config = write_config(body);
  auto relay = start_relay(config);
  const int port = wait_http_port(*relay);
  ASSERT_GT(port, 0) << relay->log_contents();
  ASSERT_TRUE(harness::wait_until([&] { return status(port, "/readyz") == 200; }, 30s))
      << relay->log_contents();
  const std::string ls = "{slot=\"" + slot + "\"}";
  std::string text = metrics(port);
  // A first start: no checkpoint yet, nothing committed.
  EXPECT_EQ(sample(text, "outbox_relay_checkpoint_lsn" + ls), std::nullopt) << text;
  EXPECT_EQ(sample(text, "outbox_relay_kafka_transactions_committed_total" + ls), 0.0) << text;

  pg().exec(insert_rows_sql(topic, 0, 100), db.name);
  ASSERT_EQ(kafka().consume(read_committed(), topic, 100, 60s).size(), 100u);
  pg().exec("INSERT INTO outbox (id, topic, payload) SELECT '" + row_id(100) + "', '" + small +
                "', decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), 'hex') "
                "FROM generate_series(1, 20000)",
            db.name);
  // The refusal aborts the Kafka transaction; the replay carries the dead letter.
  auto dead = kafka().consume(read_committed(), dlq, 1, 60s);
  ASSERT_EQ(dead.size(), 1u) << relay->log_contents();
  EXPECT_EQ(header(dead[0], "outbox-id"), std::optional<std::optional<std::string>>(row_id(100)));
  const std::string before_last = current_wal_lsn(db);
  pg().exec(insert_rows_sql(topic, 101, 10), db.name);
  const std::string end = current_wal_lsn(db);
  ASSERT_EQ(kafka().consume(read_committed(), topic, 110, 60s).size(), 110u);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 30s))
      << confirmed_flush(db, slot).value_or("?");

  text = metrics(port);
  const auto committed = sample(text, "outbox_relay_kafka_transactions_committed_total" + ls);
  ASSERT_TRUE(committed.has_value()) << text;
  // The 100 rows, the replay with the dead letter, the 10 rows: each waited for.
  EXPECT_GE(*committed, 3.0) << text;
  EXPECT_EQ(sample(text, "outbox_relay_kafka_transactions_aborted_total" + ls), 1.0) << text;
  EXPECT_EQ(sample(text, "outbox_relay_fenced_total" + ls), 0.0) << text;
  EXPECT_EQ(sample(text, "outbox_relay_kafka_commit_seconds_count" + ls), committed) << text;
  EXPECT_EQ(sample(text, "outbox_relay_kafka_commit_seconds_bucket{slot=\"" + slot +
                             "\",le=\"+Inf\"}"),
            committed)
      << text;
  const auto checkpoint = sample(text, "outbox_relay_checkpoint_lsn" + ls);
  ASSERT_TRUE(checkpoint.has_value()) << text;
  const auto checkpoint_lsn = static_cast<uint64_t>(*checkpoint);
  // The last commit's end: past the WAL position before its rows, and not
  // past where the server inserts WAL now (pg_current_wal_lsn() is where it
  // has written to, which a commit record's end may still be ahead of).
  const std::string inserted_to =
      *pg().query_scalar("SELECT pg_current_wal_insert_lsn()::text", db.name);
  EXPECT_GT(checkpoint_lsn, lsn_position(before_last)) << text;
  EXPECT_LE(checkpoint_lsn, lsn_position(inserted_to)) << text;
  EXPECT_EQ(promtool_findings(text), "") << text;

  // Nothing is open: a clean stop commits nothing more.
  expect_clean_stop(*relay);
  EXPECT_TRUE(slot_confirmed_at_least(db, slot, lsn_text(checkpoint_lsn)))
      << confirmed_flush(db, slot).value_or("?");

  // Read back from Kafka by the next start: the same checkpoint.
  auto again = start_relay(config);
  const int port2 = wait_http_port(*again);
  ASSERT_GT(port2, 0) << again->log_contents();
  ASSERT_TRUE(wait_streaming(*again)) << again->log_contents();
  const std::string read_back = "(exactly once); checkpoint lsn=" + lsn_text(checkpoint_lsn) + "\n";
  EXPECT_NE(again->log_contents().find(read_back), std::string::npos)
      << "checkpoint metric " << lsn_text(checkpoint_lsn) << "\n"
      << again->log_contents();
  text = metrics(port2);
  EXPECT_EQ(sample(text, "outbox_relay_checkpoint_lsn" + ls), *checkpoint) << text;
  EXPECT_EQ(sample(text, "outbox_relay_kafka_transactions_aborted_total" + ls), 0.0) << text;
  expect_clean_stop(*again);
}

// A server that may invalidate the slot on its own: the relay says so at
// start, naming the setting, and exports the slot's wal_status and
// safe_wal_size as pg_replication_slots reports them.
TEST_F(ObservabilityTest, MaxSlotWalKeepSizeIsWarnedOfAndTheSlotsWalSafetyExported) {
  harness::PostgresServer::Options options;
  options.extra_conf = {"max_slot_wal_keep_size = 64MB"};
  auto server = harness::PostgresServer::start(options);
  // PostgreSQL 18 also invalidates a slot left idle this long.
  const bool has_idle_timeout = server->major_version() >= 18;
  if (has_idle_timeout) {
    server->exec("ALTER SYSTEM SET idle_replication_slot_timeout = '1d'");
    server->exec("SELECT pg_reload_conf()");
    ASSERT_TRUE(harness::wait_until(
        [&] {
          return server->query_scalar("SHOW idle_replication_slot_timeout") ==
                 std::optional<std::string>("1d");
        },
        10s));
  }
  auto db = make_outbox_db(*server);
  const std::string slot = unique("slot");
  std::string body = basic_config(db, slot);
  body.replace(body.find("listen: \"\""), 10, "listen: \"127.0.0.1:0\"");
  auto relay = start_relay(write_config(body));
  const int port = wait_http_port(*relay);
  ASSERT_GT(port, 0) << relay->log_contents();
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();

  const std::string ls = "{slot=\"" + slot + "\"}";
  const std::string status = "outbox_relay_slot_wal_status{slot=\"" + slot + "\",wal_status=";
  std::string text;
  std::optional<std::string> safe;
  // The monitor reads the slot every 10 s; an idle server's WAL stands still.
  ASSERT_TRUE(harness::wait_until(
      [&] {
        text = metrics(port);
        safe = server->query_scalar(
            "SELECT safe_wal_size::text FROM pg_replication_slots WHERE slot_name = '" + slot +
                "'",
            db.name);
        const auto exported = sample(text, "outbox_relay_slot_safe_wal_bytes" + ls);
        return safe && exported && *exported == std::stod(*safe);
      },
      45s))
      << "safe_wal_size=" << safe.value_or("NULL") << "\n"
      << text;
  EXPECT_GT(std::stod(*safe), 0.0);
  EXPECT_LE(std::stod(*safe), 64.0 * 1024 * 1024 + 16.0 * 1024 * 1024);
  EXPECT_EQ(server->query_scalar(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'",
                db.name),
            std::optional<std::string>("reserved"));
  EXPECT_EQ(sample(text, status + "\"reserved\"}"), 1.0) << text;
  EXPECT_EQ(sample(text, status + "\"extended\"}"), 0.0) << text;
  EXPECT_EQ(sample(text, status + "\"unreserved\"}"), 0.0) << text;
  EXPECT_EQ(sample(text, status + "\"lost\"}"), 0.0) << text;
  EXPECT_EQ(promtool_findings(text), "") << text;

  const std::string log = relay->log_contents();
  const std::string warning = "slot=" + slot + " max_slot_wal_keep_size=64MB: ";
  const size_t at = log.find(warning);
  ASSERT_NE(at, std::string::npos) << log;
  EXPECT_EQ(log.find(warning, at + 1), std::string::npos) << "warned more than once:\n" << log;
  const size_t newline = log.rfind('\n', at);
  const size_t line_start = newline == std::string::npos ? 0 : newline + 1;
  const std::string line = log.substr(line_start, log.find('\n', at) - line_start);
  EXPECT_NE(line.find("Z warning " + warning), std::string::npos) << line;
  EXPECT_NE(line.find("wal_status=lost"), std::string::npos) << line;
  EXPECT_NE(line.find("set max_slot_wal_keep_size = -1"), std::string::npos) << line;
  const std::string idle = "slot=" + slot + " idle_replication_slot_timeout=1d: ";
  if (has_idle_timeout) {
    EXPECT_NE(log.find("Z warning " + idle), std::string::npos) << log;
    EXPECT_NE(log.find("set idle_replication_slot_timeout = 0"), std::string::npos) << log;
  } else {
    EXPECT_EQ(log.find("idle_replication_slot_timeout"), std::string::npos) << log;
  }
  expect_clean_stop(*relay);
}

TEST_F(ObservabilityTest, ReadyzIs503AndHealthzIs200WhileDatabaseIsUnreachable) {
  const std::string dsn = "host=127.0.0.1 port=" + std::to_string(harness::free_port()) +
                          " dbname=app connect_timeout=2";
  auto relay = start_relay(write_config(config_without_db(dsn, unique("slot"))));
  const int port = wait_http_port(*relay);
  ASSERT_GT(port, 0) << relay->log_contents();
  const std::string reconnects = "outbox_relay_reconnects_total{slot=\"";
  std::string text;
  ASSERT_TRUE(harness::wait_until(
      [&] {
        text = metrics(port);
        auto p = text.find(reconnects);
        return p != std::string::npos && text.compare(text.find(' ', p) + 1, 2, "0\n") != 0;
      },
      30s))
      << text << relay->log_contents();
  EXPECT_EQ(status(port, "/readyz"), 503);
  EXPECT_EQ(status(port, "/healthz"), 200) << "reconnecting is not being stuck";
  EXPECT_NE(text.find("outbox_relay_slots_owned 0\n"), std::string::npos) << text;
  auto r = get(port, "/readyz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "connecting\n");
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
