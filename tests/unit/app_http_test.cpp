#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
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

TEST(MetricsText, PassesPromtoolCheckMetrics) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  PipelineStats stats;
  stats.topics.get("orders").published = 7;
  stats.retained_wal_bytes = 0;
  stats.commit_to_ack.observe_micros(1500);
  char path[] = "/tmp/outbox-metrics-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << render_metrics(stats, "s1", BuildInfo{"0.1.0", "2.0.2", "150013"});
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  std::remove(path);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool reports lint problems";
}

}  // namespace
}  // namespace app
