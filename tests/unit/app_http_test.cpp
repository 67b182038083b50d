#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>

#include "app/http_server.h"
#include "app/metrics_text.h"

namespace app {
namespace {

using relay::PipelineState;
using relay::PipelineStats;

int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(stats_, "slot_a", BuildInfo{"1.2.3", "2.0.2", "150000"});
    ASSERT_TRUE(server_->start("127.0.0.1:0").ok());
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_connection_timeout(5);
    client_->set_read_timeout(5);
  }
  int status(const char* path) {
    auto res = client_->Get(path);
    return res ? res->status : -1;
  }

  PipelineStats stats_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_F(HttpServerTest, ReadyzIs503UntilStreamingAnd200WhileStreaming) {
  for (auto s : {PipelineState::kStarting, PipelineState::kConnecting,
                 PipelineState::kWaitingForSlot}) {
    stats_.state = static_cast<int>(s);
    EXPECT_EQ(status("/readyz"), 503) << static_cast<int>(s);
  }
  stats_.state = static_cast<int>(PipelineState::kStreaming);
  EXPECT_EQ(status("/readyz"), 200);
  stats_.state = static_cast<int>(PipelineState::kStopped);
  EXPECT_EQ(status("/readyz"), 503);
}

TEST_F(HttpServerTest, ReadyzWithStandbyAlsoAcceptsWaitingForTheSlot) {
  stats_.state = static_cast<int>(PipelineState::kWaitingForSlot);
  EXPECT_EQ(status("/readyz"), 503);
  EXPECT_EQ(status("/readyz?standby=1"), 200);
  stats_.state = static_cast<int>(PipelineState::kConnecting);
  EXPECT_EQ(status("/readyz?standby=1"), 503);
  stats_.state = static_cast<int>(PipelineState::kStreaming);
  EXPECT_EQ(status("/readyz?standby=1"), 200);
}

TEST_F(HttpServerTest, HealthzIs200WhileLoopTurnsAnd503OnceItStalls) {
  EXPECT_EQ(status("/healthz"), 200) << "before the first turn the relay is starting, not stuck";
  stats_.mark_loop_alive();
  EXPECT_EQ(status("/healthz"), 200);
  auto stalled_since = std::chrono::system_clock::now() - PipelineStats::kLoopStallTimeout -
                       std::chrono::seconds(1);
  stats_.last_loop_unix_ms = unix_ms(stalled_since);
  EXPECT_EQ(status("/healthz"), 503);
  stats_.mark_loop_alive();
  EXPECT_EQ(status("/healthz"), 200);
}

// With a Kafka bound, streaming is not enough: a broker must have answered
// the probe within it.
TEST(HttpServerKafkaReadiness, ReadyzNeedsABrokerAnswerWithinTheBound) {
  PipelineStats stats;
  HttpServer server(stats, "slot_a", BuildInfo{});
  server.set_ready_kafka_timeout(std::chrono::milliseconds(2000));
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto get = [&](const char* path) {
    auto res = client.Get(path);
    return res ? std::make_pair(res->status, res->body) : std::make_pair(-1, std::string());
  };
  stats.state = static_cast<int>(PipelineState::kStreaming);
  EXPECT_EQ(get("/readyz"), std::make_pair(503, std::string("kafka_unreachable no broker has "
                                                            "answered yet\n")));
  stats.kafka_answered_unix_ms = unix_ms(std::chrono::system_clock::now());
  EXPECT_EQ(get("/readyz"), std::make_pair(200, std::string("streaming\n")));
  stats.kafka_answered_unix_ms =
      unix_ms(std::chrono::system_clock::now() - std::chrono::seconds(5));
  const auto [status, body] = get("/readyz");
  EXPECT_EQ(status, 503);
  EXPECT_EQ(body.rfind("kafka_unreachable no broker answered for ", 0), 0u) << body;
  EXPECT_NE(body.find("(http.ready_kafka_timeout 2000 ms)"), std::string::npos) << body;
  // Not ready for its own reason first: the state says more.
  stats.state = static_cast<int>(PipelineState::kConnecting);
  EXPECT_EQ(get("/readyz"), std::make_pair(503, std::string("connecting\n")));
  // Liveness never looks at Kafka.
  EXPECT_EQ(get("/healthz").first, 200);
}

TEST_F(HttpServerTest, StatusIsJsonWithTheSlotsStateAndLastError) {
  stats_.state = static_cast<int>(PipelineState::kConnecting);
  stats_.confirmed_lsn = 0x16B374D848ull;
  auto res = client_->Get("/status");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  EXPECT_NE(res->body.find("\"slots\":[{\"slot\":\"slot_a\",\"assigned\":true,"
                           "\"state\":\"connecting\",\"confirmed_lsn\":\"16/B374D848\","
                           "\"last_error\":null}]"),
            std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("\"ready\":false,\"readiness\":\"connecting\""), std::string::npos)
      << res->body;
  stats_.last_error.set("connection to \"db\" refused");
  res = client_->Get("/status");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("\"last_error\":{\"message\":\"connection to \\\"db\\\" "
                           "refused\",\"at\":\"20"),
            std::string::npos)
      << res->body;
}

// Group mode: a stalled slot loop is a stuck process too.
TEST(HttpServerOwnership, HealthzLooksAtEveryAssignedSlotsLoop) {
  PipelineStats group_loop;
  PipelineStats a;
  PipelineStats b;
  HttpServer server(group_loop, "grp", BuildInfo{});
  HttpServer::Ownership o;
  o.slots = [&] {
    return std::vector<HttpServer::SlotOwnership>{{"a", true, true, &a}, {"b", false, false, &b}};
  };
  server.set_ownership(o);
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  const auto stalled = unix_ms(std::chrono::system_clock::now() -
                               PipelineStats::kLoopStallTimeout - std::chrono::seconds(1));
  b.last_loop_unix_ms = stalled;  // not assigned: not this instance's loop
  auto res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  a.last_loop_unix_ms = stalled;
  res = client.Get("/healthz");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  EXPECT_EQ(res->body, "loop stalled slot=a\n");
}

TEST_F(HttpServerTest, MetricsAreServedAsPrometheusText) {
  stats_.state = static_cast<int>(PipelineState::kStreaming);
  ++stats_.topics.get("orders").published;
  auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  EXPECT_NE(res->body.find("outbox_relay_records_published_total{slot=\"slot_a\",topic=\"orders\"} 1\n"),
            std::string::npos)
      << res->body;
}

TEST(MetricsText, RendersEveryFamilyWithSlotAndTopicLabels) {
  PipelineStats stats;
  stats.state = static_cast<int>(PipelineState::kStreaming);
  stats.topics.get("orders").published = 7;
  stats.topics.get("orders").failed = 1;
  stats.topics.get("weird\"topic").published = 2;
  stats.records_dead_lettered = 3;
  stats.in_flight_records = 4;
  stats.in_flight_bytes = 512;
  stats.received_lsn = 0x1000;
  stats.confirmed_lsn = 0x800;
  stats.retained_wal_bytes = 4096;
  stats.reconnects = 2;
  stats.last_loop_unix_ms = 1700000000123;
  stats.commit_to_ack.observe_micros(20000);
  const std::string text = render_metrics(stats, "s1", BuildInfo{"0.1.0", "2.0.2", "150013"});
  for (const char* line : {
           "outbox_relay_build_info{version=\"0.1.0\",librdkafka_version=\"2.0.2\",libpq_version=\"150013\"} 1\n",
           "outbox_relay_records_published_total{slot=\"s1\",topic=\"orders\"} 7\n",
           "outbox_relay_records_published_total{slot=\"s1\",topic=\"weird\\\"topic\"} 2\n",
           "outbox_relay_records_failed_total{slot=\"s1\",topic=\"orders\"} 1\n",
           "outbox_relay_records_dead_lettered_total{slot=\"s1\"} 3\n",
           "outbox_relay_in_flight_records{slot=\"s1\"} 4\n",
           "outbox_relay_in_flight_bytes{slot=\"s1\"} 512\n",
           "outbox_relay_received_lsn{slot=\"s1\"} 4096\n",
           "outbox_relay_confirmed_lsn{slot=\"s1\"} 2048\n",
           "outbox_relay_slot_retained_wal_bytes{slot=\"s1\"} 4096\n",
           "outbox_relay_reconnects_total{slot=\"s1\"} 2\n",
           "outbox_relay_commit_to_ack_seconds_bucket{slot=\"s1\",le=\"0.01\"} 0\n",
           "outbox_relay_commit_to_ack_seconds_bucket{slot=\"s1\",le=\"0.025\"} 1\n",
           "outbox_relay_commit_to_ack_seconds_bucket{slot=\"s1\",le=\"+Inf\"} 1\n",
           "outbox_relay_commit_to_ack_seconds_count{slot=\"s1\"} 1\n",
           "outbox_relay_slots_owned 1\n",
           "outbox_relay_last_loop_timestamp_seconds{slot=\"s1\"} 1700000000.123\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(MetricsText, RetainedWalIsLeftOutUntilKnown) {
  PipelineStats stats;
  const std::string text = render_metrics(stats, "s1", BuildInfo{});
  EXPECT_EQ(text.find("outbox_relay_slot_retained_wal_bytes"), std::string::npos);
  EXPECT_NE(text.find("outbox_relay_slots_owned 0\n"), std::string::npos);
}

TEST(MetricsText, RendersTheExactlyOnceFamilies) {
  PipelineStats stats;
  stats.kafka_transactions_committed = 12;
  stats.kafka_transactions_aborted = 2;
  stats.fenced = 3;
  stats.lease_lost = 2;
  stats.checkpoint_lsn = 0x16B374D848ull;
  stats.checkpoint_known = true;
  stats.kafka_commit.observe_micros(30000);
  stats.kafka_commit.observe_micros(120000);
  const std::string text = render_metrics(stats, "s1", BuildInfo{});
  for (const char* line : {
           "# TYPE outbox_relay_kafka_transactions_committed_total counter\n"
           "outbox_relay_kafka_transactions_committed_total{slot=\"s1\"} 12\n",
           "# TYPE outbox_relay_kafka_transactions_aborted_total counter\n"
           "outbox_relay_kafka_transactions_aborted_total{slot=\"s1\"} 2\n",
           "# TYPE outbox_relay_fenced_total counter\n"
           "outbox_relay_fenced_total{slot=\"s1\"} 3\n",
           "# TYPE outbox_relay_lease_lost_total counter\n"
           "outbox_relay_lease_lost_total{slot=\"s1\"} 2\n",
           "# TYPE outbox_relay_checkpoint_lsn gauge\n"
           "outbox_relay_checkpoint_lsn{slot=\"s1\"} 97500059720\n",
           "# TYPE outbox_relay_kafka_commit_seconds histogram\n",
           "outbox_relay_kafka_commit_seconds_bucket{slot=\"s1\",le=\"0.025\"} 0\n",
           "outbox_relay_kafka_commit_seconds_bucket{slot=\"s1\",le=\"0.05\"} 1\n",
           "outbox_relay_kafka_commit_seconds_bucket{slot=\"s1\",le=\"0.25\"} 2\n",
           "outbox_relay_kafka_commit_seconds_bucket{slot=\"s1\",le=\"+Inf\"} 2\n",
           "outbox_relay_kafka_commit_seconds_sum{slot=\"s1\"} 0.150000\n",
           "outbox_relay_kafka_commit_seconds_count{slot=\"s1\"} 2\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

// At least once, or before the checkpoint is read: no checkpoint to show,
// and the counters stay at zero.
TEST(MetricsText, TheCheckpointIsLeftOutUntilKnownAndTheCountersStartAtZero) {
  PipelineStats stats;
  const std::string text = render_metrics(stats, "s1", BuildInfo{});
  EXPECT_EQ(text.find("outbox_relay_checkpoint_lsn"), std::string::npos) << text;
  for (const char* line : {"outbox_relay_kafka_transactions_committed_total{slot=\"s1\"} 0\n",
                           "outbox_relay_kafka_transactions_aborted_total{slot=\"s1\"} 0\n",
                           "outbox_relay_fenced_total{slot=\"s1\"} 0\n",
                           "outbox_relay_lease_lost_total{slot=\"s1\"} 0\n",
                           "outbox_relay_kafka_commit_seconds_count{slot=\"s1\"} 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in:\n" << text;
  }
}

TEST(MetricsText, WalStatusIsOneSamplePerValueWithTheCurrentOneAtOne) {
  PipelineStats stats;
  stats.wal_status = static_cast<int>(relay::SlotWalStatus::kUnreserved);
  stats.safe_wal_bytes = -8192;
  const std::string text = render_metrics(stats, "s1", BuildInfo{});
  EXPECT_NE(text.find("# TYPE outbox_relay_slot_wal_status gauge\n"
                      "outbox_relay_slot_wal_status{slot=\"s1\",wal_status=\"reserved\"} 0\n"
                      "outbox_relay_slot_wal_status{slot=\"s1\",wal_status=\"extended\"} 0\n"
                      "outbox_relay_slot_wal_status{slot=\"s1\",wal_status=\"unreserved\"} 1\n"
                      "outbox_relay_slot_wal_status{slot=\"s1\",wal_status=\"lost\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE outbox_relay_slot_safe_wal_bytes gauge\n"
                      "outbox_relay_slot_safe_wal_bytes{slot=\"s1\"} -8192\n"),
            std::string::npos)
      << text;
}

// Unknown until the monitor's first answer; safe_wal_size is NULL while
// max_slot_wal_keep_size = -1 (and for a lost slot).
TEST(MetricsText, WalStatusAndSafeWalAreLeftOutUntilKnown) {
  PipelineStats stats;
  std::string text = render_metrics(stats, "s1", BuildInfo{});
  EXPECT_EQ(text.find("outbox_relay_slot_wal_status"), std::string::npos) << text;
  EXPECT_EQ(text.find("outbox_relay_slot_safe_wal_bytes"), std::string::npos) << text;
  stats.wal_status = static_cast<int>(relay::SlotWalStatus::kReserved);
  text = render_metrics(stats, "s1", BuildInfo{});
  EXPECT_NE(text.find("outbox_relay_slot_wal_status{slot=\"s1\",wal_status=\"reserved\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("outbox_relay_slot_safe_wal_bytes"), std::string::npos) << text;
}

// promtool's findings on `text`; nullopt when promtool is not installed.
std::optional<std::string> promtool_findings(const std::string& text) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) return std::nullopt;
  char path[] = "/tmp/outbox-metrics-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "mkstemp failed";
  close(fd);
  std::ofstream(path) << text;
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return "popen failed";
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  std::remove(path);
  if (rc != 0 && out.empty()) out = "promtool exited with " + std::to_string(rc);
  return out;
}

TEST(MetricsText, PassesPromtoolCheckMetrics) {
  PipelineStats stats;
  stats.topics.get("orders").published = 7;
  stats.retained_wal_bytes = 0;
  stats.wal_status = static_cast<int>(relay::SlotWalStatus::kReserved);
  stats.safe_wal_bytes = 1 << 20;
  stats.checkpoint_known = true;
  stats.checkpoint_lsn = 4096;
  stats.kafka_commit.observe_micros(40000);
  stats.commit_to_ack.observe_micros(1500);
  auto findings =
      promtool_findings(render_metrics(stats, "s1", BuildInfo{"0.1.0", "2.0.2", "150013"}));
  if (!findings) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  EXPECT_EQ(*findings, "") << "promtool reports problems";
}

// Number of times `needle` occurs in `text`.
size_t occurrences(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class MultiSlotMetrics : public ::testing::Test {
 protected:
  void SetUp() override {
    a_.state = static_cast<int>(PipelineState::kStreaming);
    a_.topics.get("orders").published = 7;
    a_.topics.get("orders").failed = 1;
    a_.transactions = 3;
    a_.retained_wal_bytes = 4096;
    a_.last_loop_unix_ms = 1700000000123;
    a_.commit_to_ack.observe_micros(20000);
    a_.kafka_transactions_committed = 9;
    a_.checkpoint_known = true;
    a_.checkpoint_lsn = 8192;
    a_.wal_status = static_cast<int>(relay::SlotWalStatus::kExtended);
    a_.safe_wal_bytes = 65536;
    // Revoked: counters kept, no retained WAL or loop any more.
    b_.state = static_cast<int>(PipelineState::kStopped);
    b_.topics.get("orders").published = 5;
    b_.topics.get("pay\"ments").published = 2;
    b_.transactions = 4;
    b_.reconnects = 1;
  }
  std::string render() {
    return render_metrics({SlotStats{"slot_a", &a_}, SlotStats{"b\\\"\nb", &b_}},
                          BuildInfo{"0.1.0", "2.0.2", "150013"});
  }

  PipelineStats a_;
  PipelineStats b_;
};

TEST_F(MultiSlotMetrics, EveryFamilyAppearsOnceWithBothSlotsSamplesUnderIt) {
  const std::string text = render();
  std::istringstream lines(text);
  std::string line;
  std::map<std::string, int> helps;
  std::map<std::string, int> types;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string hash, kind, name;
    words >> hash >> kind >> name;
    if (hash != "#") continue;
    if (kind == "HELP") ++helps[name];
    if (kind == "TYPE") ++types[name];
  }
  EXPECT_EQ(helps.size(), 25u) << text;
  for (const auto& [name, n] : helps) EXPECT_EQ(n, 1) << name << " in:\n" << text;
  EXPECT_EQ(helps.size(), types.size());
  for (const auto& [name, n] : types) EXPECT_EQ(n, 1) << name << " in:\n" << text;

  const std::string b = "slot=\"b\\\\\\\"\\nb\"";  // slot="b\\\"\nb"
  for (const std::string& sample : {
           std::string(
               "outbox_relay_records_published_total{slot=\"slot_a\",topic=\"orders\"} 7\n"),
           "outbox_relay_records_published_total{" + b + ",topic=\"orders\"} 5\n",
           "outbox_relay_records_published_total{" + b + ",topic=\"pay\\\"ments\"} 2\n",
           std::string("outbox_relay_records_failed_total{slot=\"slot_a\",topic=\"orders\"} 1\n"),
           "outbox_relay_records_failed_total{" + b + ",topic=\"orders\"} 0\n",
           std::string("outbox_relay_transactions_total{slot=\"slot_a\"} 3\n"),
           "outbox_relay_transactions_total{" + b + "} 4\n",
           std::string("outbox_relay_reconnects_total{slot=\"slot_a\"} 0\n"),
           "outbox_relay_reconnects_total{" + b + "} 1\n",
           std::string("outbox_relay_commit_to_ack_seconds_count{slot=\"slot_a\"} 1\n"),
           "outbox_relay_commit_to_ack_seconds_count{" + b + "} 0\n",
           "outbox_relay_commit_to_ack_seconds_bucket{" + b + ",le=\"+Inf\"} 0\n",
           std::string("outbox_relay_streaming{slot=\"slot_a\"} 1\n"),
           "outbox_relay_streaming{" + b + "} 0\n",
           std::string("outbox_relay_slot_retained_wal_bytes{slot=\"slot_a\"} 4096\n"),
           std::string(
               "outbox_relay_last_loop_timestamp_seconds{slot=\"slot_a\"} 1700000000.123\n"),
           std::string("outbox_relay_slots_owned 1\n"),
           std::string("outbox_relay_kafka_transactions_committed_total{slot=\"slot_a\"} 9\n"),
           "outbox_relay_kafka_transactions_committed_total{" + b + "} 0\n",
           std::string("outbox_relay_checkpoint_lsn{slot=\"slot_a\"} 8192\n"),
           std::string(
               "outbox_relay_slot_wal_status{slot=\"slot_a\",wal_status=\"extended\"} 1\n"),
           std::string("outbox_relay_slot_safe_wal_bytes{slot=\"slot_a\"} 65536\n"),
       }) {
    EXPECT_EQ(occurrences(text, sample), 1u) << "missing: " << sample << "in:\n" << text;
  }
  EXPECT_EQ(occurrences(text, "outbox_relay_slot_retained_wal_bytes{" + b), 0u) << text;
  EXPECT_EQ(occurrences(text, "outbox_relay_checkpoint_lsn{" + b), 0u) << text;
  EXPECT_EQ(occurrences(text, "outbox_relay_slot_wal_status{" + b), 0u) << text;
  EXPECT_EQ(occurrences(text, "outbox_relay_slot_safe_wal_bytes{" + b), 0u) << text;
  EXPECT_EQ(occurrences(text, "outbox_relay_last_loop_timestamp_seconds{" + b), 0u) << text;
  EXPECT_EQ(occurrences(text, "outbox_relay_build_info{"), 1u) << text;
}

TEST_F(MultiSlotMetrics, SamplesOfAFamilyFollowItsHeaderBeforeTheNextFamily) {
  const std::string text = render();
  const size_t header = text.find("# TYPE outbox_relay_transactions_total counter\n");
  const size_t next = text.find("# HELP", header);
  ASSERT_NE(header, std::string::npos);
  const std::string block = text.substr(header, next - header);
  EXPECT_EQ(occurrences(block, "outbox_relay_transactions_total{"), 2u) << block;
}

TEST_F(MultiSlotMetrics, PassesPromtoolCheckMetrics) {
  auto findings = promtool_findings(render());
  if (!findings) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  EXPECT_EQ(*findings, "") << "promtool reports problems";
}

TEST(MetricsText, NoSlotsLeavesFamilyHeadersAndNoSamples) {
  const std::string text = render_metrics(std::vector<SlotStats>{}, BuildInfo{});
  EXPECT_NE(text.find("# TYPE outbox_relay_records_published_total counter\n"), std::string::npos);
  EXPECT_EQ(text.find("{slot="), std::string::npos) << text;
  EXPECT_NE(text.find("outbox_relay_slots_owned 0\n"), std::string::npos) << text;
  EXPECT_EQ(promtool_findings(text).value_or(""), "");
}

// Group mode: /metrics renders the slots the ownership lists, not the
// constructor's stats (those of the group's own loop).
TEST(HttpServerOwnership, MetricsRenderTheListedSlots) {
  PipelineStats group_loop;
  PipelineStats a;
  PipelineStats b;
  a.topics.get("orders").published = 3;
  b.topics.get("orders").published = 4;
  HttpServer server(group_loop, "grp", BuildInfo{});
  HttpServer::Ownership o;
  o.slots = [] {
    return std::vector<HttpServer::SlotOwnership>{{"a", true, true}, {"b", false, false}};
  };
  o.stats = [&] { return std::vector<SlotStats>{{"a", &a}, {"b", &b}}; };
  server.set_ownership(o);
  ASSERT_TRUE(server.start("127.0.0.1:0").ok());
  httplib::Client client("127.0.0.1", server.port());
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  for (const char* line : {
           "outbox_relay_records_published_total{slot=\"a\",topic=\"orders\"} 3\n",
           "outbox_relay_records_published_total{slot=\"b\",topic=\"orders\"} 4\n",
           "outbox_relay_slot_leader{slot=\"a\"} 1\n",
           "outbox_relay_slot_leader{slot=\"b\"} 0\n",
       }) {
    EXPECT_NE(res->body.find(line), std::string::npos) << "missing: " << line << res->body;
  }
  EXPECT_EQ(res->body.find("slot=\"grp\""), std::string::npos) << res->body;
  EXPECT_EQ(promtool_findings(res->body).value_or(""), "") << res->body;
}

}  // namespace
}  // namespace app
