// Scenarios of what operators watch: /metrics counts what reached Kafka and
// passes promtool, /readyz follows the stream, /healthz the loop, and JSON
// log lines carry fields and no payloads.
#include <httplib.h>

#include <regex>
#include <sstream>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class ObservabilityTest : public RelayTest {
 protected:
  static std::string http_and_json_logs() {
    return "http:\n  listen: \"127.0.0.1:0\"\nlog:\n  level: info\n  format: json\n";
  }

  // The relay names the port the kernel gave it.
  int wait_http_port(harness::Process& relay) {
    static const std::regex re(R"(http listening on 127\.0\.0\.1:([0-9]+))");
    std::smatch m;
    std::string log;
    harness::wait_until(
        [&] {
          log = relay.log_contents();
          return std::regex_search(log, m, re) || !relay.running();
        },
        30s);
    return m.empty() ? -1 : std::stoi(m[1].str());
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
