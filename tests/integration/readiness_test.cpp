// What the probes say while a dependency is away. /readyz: 200 only while
// the slot streams and a Kafka broker answered within
// http.ready_kafka_timeout; /healthz: liveness only, 200 while the loops
// turn, whatever PostgreSQL or Kafka are doing (a restart would not bring
// them back).
#include <httplib.h>

#include "group_fixture.h"

namespace itest {
namespace {

class ReadinessTest : public RelayTest {
 protected:
  // A relay on `db` with its endpoints on a port of its own, a Kafka
  // readiness bound of 3 s.
  std::string config(const OutboxDb& db, const std::string& slot, int http_port) {
    std::string body = basic_config(db, slot);
    body.replace(body.find("listen: \"\""), 10,
                 "listen: \"127.0.0.1:" + std::to_string(http_port) +
                     "\"\n  ready_kafka_timeout: 3s");
    return write_config(body);
  }

  static std::string get(int port, const std::string& path) {
    return http_get(port, path).value_or("(no answer)");
  }
  static int status_of(int port, const std::string& path) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(2);
    c.set_read_timeout(2);
    auto r = c.Get(path);
    return r ? r->status : -1;
  }

  // /healthz answers 200 at every sample for `how_long`.
  void expect_live_for(int port, std::chrono::milliseconds how_long, harness::Process& relay) {
    const auto end = std::chrono::steady_clock::now() + how_long;
    while (std::chrono::steady_clock::now() < end) {
      ASSERT_EQ(status_of(port, "/healthz"), 200)
          << get(port, "/healthz") << relay.log_contents();
      std::this_thread::sleep_for(1s);
    }
  }
};

// Exactly once (the default), Kafka away for longer than the loop-stall
// bound: the pipeline retries taking the slot's output meanwhile, and that
// is not a stuck process.
TEST_F(ReadinessTest, KafkaDownMakesReadyz503WithinTheBoundWhileHealthzStays200) {
  auto [db, slot, topic] = new_scene(1);
  const int port = harness::free_port();
  auto relay = start_relay(config(db, slot, port));
  ASSERT_TRUE(harness::wait_until([&] { return status_of(port, "/readyz") == 200; }, 30s))
      << get(port, "/readyz") << relay->log_contents();
  EXPECT_EQ(get(port, "/readyz"), "streaming\n");
  pg().exec(insert_rows_sql(topic, 0, 5), db.name);
  ASSERT_EQ(kafka().consume(read_committed(), topic, 5, 30s).size(), 5u);

  kafka().stop();
  const auto stopped = std::chrono::steady_clock::now();
  // Rows keep arriving: the pipeline has something to send, and keeps
  // streaming from PostgreSQL for a while.
  pg().exec(insert_rows_sql(topic, 5, 5), db.name);
  bool unready = harness::wait_until(
      [&] { return get(port, "/readyz").rfind("kafka_unreachable", 0) == 0 ||
                   status_of(port, "/readyz") == 503; },
      20s, 100ms);
  const auto took = std::chrono::steady_clock::now() - stopped;
  if (!unready) kafka().start_again();
  ASSERT_TRUE(unready) << get(port, "/readyz") << relay->log_contents();
  // The bound (3 s) plus one probe's wait (1 s) and the probe interval.
  EXPECT_LT(took, 8s) << get(port, "/readyz");
  const std::string status = get(port, "/status");
  EXPECT_NE(status.find("\"ready\":false"), std::string::npos) << status;
  EXPECT_NE(status.find("\"last_error\":{\"message\":"), std::string::npos) << status;

  expect_live_for(port, 35s, *relay);
  EXPECT_EQ(status_of(port, "/readyz"), 503) << get(port, "/readyz");
  kafka().start_again();
  ASSERT_TRUE(relay->running()) << relay->log_contents();
  EXPECT_TRUE(harness::wait_until([&] { return status_of(port, "/readyz") == 200; }, 60s))
      << get(port, "/readyz") << relay->log_contents();
  EXPECT_EQ(kafka().consume(read_committed(), topic, 10, 60s).size(), 10u);
  expect_clean_stop(*relay);
}

TEST_F(ReadinessTest, PostgresDownMakesReadyz503WhileHealthzStays200) {
  auto server = harness::PostgresServer::start();
  auto db = make_outbox_db(*server);
  const std::string slot = unique("slot");
  const int port = harness::free_port();
  auto relay = start_relay(config(db, slot, port));
  ASSERT_TRUE(harness::wait_until([&] { return status_of(port, "/readyz") == 200; }, 30s))
      << get(port, "/readyz") << relay->log_contents();

  server->stop();
  ASSERT_TRUE(harness::wait_until([&] { return status_of(port, "/readyz") == 503; }, 30s))
      << get(port, "/readyz");
  EXPECT_EQ(get(port, "/readyz").rfind("connecting", 0), 0u) << get(port, "/readyz");
  expect_live_for(port, 10s, *relay);
  const std::string status = get(port, "/status");
  EXPECT_NE(status.find("\"last_error\":{\"message\":"), std::string::npos) << status;

  server->start_again();
  EXPECT_TRUE(harness::wait_until([&] { return status_of(port, "/readyz") == 200; }, 60s))
      << get(port, "/readyz") << relay->log_contents();
  expect_clean_stop(*relay);
}

// A second relay on the same slot waits for it: not ready, except to
// ?standby=1 (rolling updates), and alive.
TEST_F(ReadinessTest, SlotHeldByAnotherInstanceIsNotReadyButStandbyAndAlive) {
  auto [db, slot, topic] = new_scene(1);
  const int port_a = harness::free_port();
  auto a = start_relay(config(db, slot, port_a));
  ASSERT_TRUE(harness::wait_until([&] { return status_of(port_a, "/readyz") == 200; }, 30s))
      << get(port_a, "/readyz") << a->log_contents();
  const int port_b = harness::free_port();
  auto b = start_relay(config(db, slot, port_b));
  ASSERT_TRUE(harness::wait_until(
      [&] { return get(port_b, "/readyz") == "waiting_for_slot\n"; }, 30s))
      << get(port_b, "/readyz") << b->log_contents();
  EXPECT_EQ(status_of(port_b, "/readyz"), 503);
  EXPECT_EQ(status_of(port_b, "/readyz?standby=1"), 200);
  EXPECT_EQ(status_of(port_b, "/healthz"), 200);
  EXPECT_EQ(status_of(port_a, "/readyz"), 200);
  const std::string status = get(port_b, "/status");
  EXPECT_NE(status.find("\"state\":\"waiting_for_slot\""), std::string::npos) << status;
  EXPECT_NE(status.find("\"last_error\":{\"message\":"), std::string::npos) << status;
  expect_clean_stop(*b);
  expect_clean_stop(*a);
}

}  // namespace
}  // namespace itest
