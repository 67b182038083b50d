// The harness itself against real servers: a PostgreSQL that decodes
// pgoutput and survives restarts, a Kafka broker that returns what a real
// producer wrote byte for byte across stop, kill and freeze, and child
// processes whose exits are reported as a shell would.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "harness/harness.h"

namespace {

using namespace std::chrono_literals;
using harness::ConsumedRecord;
using Headers = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct OutRecord {
  std::optional<std::string> key;
  std::string value;
  Headers headers;
  int64_t timestamp_ms;
};

std::string unique(const std::string& prefix) {
  static int counter = 0;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

// Produces with the Java client's partitioner for keyed records, waits for
// every delivery report, and fails the test on any delivery error.
void produce(const std::string& bootstrap, const std::string& topic,
             const std::vector<OutRecord>& records) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  std::map<std::string, std::string> props{{"bootstrap.servers", bootstrap},
                                           {"acks", "all"},
                                           {"partitioner", "murmur2_random"},
                                           {"log_level", "3"}};
  for (const auto& [k, v] : props) {
    ASSERT_EQ(rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err), RD_KAFKA_CONF_OK)
        << k << ": " << err;
  }
  static int failed_deliveries;
  failed_deliveries = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err) ++failed_deliveries;
  });
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  ASSERT_TRUE(rk) << err;
  for (const auto& r : records) {
    rd_kafka_headers_t* hdrs = rd_kafka_headers_new(r.headers.size());
    for (const auto& [name, value] : r.headers) {
      rd_kafka_header_add(hdrs, name.data(), static_cast<ssize_t>(name.size()),
                          value ? value->data() : nullptr,
                          value ? static_cast<ssize_t>(value->size()) : 0);
    }
    // The RD_KAFKA_V_* macros cast their arguments unparenthesized.
    const void* key = r.key ? r.key->data() : nullptr;
    const size_t key_len = r.key ? r.key->size() : 0;
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_KEY(key, key_len),
                          RD_KAFKA_V_VALUE(const_cast<char*>(r.value.data()), r.value.size()),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                          RD_KAFKA_V_TIMESTAMP(r.timestamp_ms), RD_KAFKA_V_END);
    if (e) rd_kafka_headers_destroy(hdrs);
    ASSERT_EQ(e, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(e);
  }
  ASSERT_EQ(rd_kafka_flush(rk.get(), 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_EQ(rd_kafka_outq_len(rk.get()), 0);
  ASSERT_EQ(failed_deliveries, 0);
}

std::vector<OutRecord> three_records() {
  return {
      {"order-1", "plain payload", {{"type", "OrderPlaced"}, {"trace", "abc"}}, 1700000000001},
      // Bytes a text API would mangle: NUL, high bytes, a null header value
      // and a repeated header name.
      {"order-2",
       std::string("\0\x01\xff\xfe binary", 11),
       {{"dup", "1"}, {"nothing", std::nullopt}, {"dup", std::string("\0\x80", 2)}},
       1700000000002},
      {std::nullopt, "", {}, 1700000000003},
  };
}

void expect_same(const OutRecord& want, const ConsumedRecord& got, int partitions) {
  EXPECT_EQ(got.key, want.key);
  EXPECT_EQ(got.value, want.value);
  EXPECT_EQ(got.headers, want.headers);
  EXPECT_EQ(got.timestamp_ms, want.timestamp_ms);
  EXPECT_EQ(got.timestamp_type, RD_KAFKA_TIMESTAMP_CREATE_TIME);
  if (want.key) {
    EXPECT_EQ(got.partition, harness::murmur2_partition(*want.key, partitions)) << *want.key;
  }
}

// Matches consumed records to produced ones by value; each value is unique.
void expect_all_arrived(const std::vector<OutRecord>& want, const std::vector<ConsumedRecord>& got,
                        int partitions) {
  ASSERT_EQ(got.size(), want.size());
  for (const auto& w : want) {
    int matches = 0;
    for (const auto& g : got) {
      if (g.value != w.value) continue;
      ++matches;
      expect_same(w, g, partitions);
    }
    EXPECT_EQ(matches, 1) << "value of size " << w.value.size();
  }
}

TEST(HarnessPostgres, ClusterHasLogicalWalAndDecodesPgoutput) {
  auto& pg = harness::Servers::postgres();
  const std::string db = unique("smoke");
  pg.create_database(db);
  EXPECT_EQ(pg.query_scalar("SHOW wal_level", db), std::optional<std::string>("logical"));
  EXPECT_EQ(pg.query_scalar("SHOW synchronous_commit", db), std::optional<std::string>("on"));
  EXPECT_GE(pg.major_version(), 15);
  std::printf("PostgreSQL %d at %s\n", pg.major_version(), pg.bin_dir().c_str());

  pg.exec(
      "CREATE TABLE outbox (id bigint PRIMARY KEY, payload bytea);"
      "CREATE PUBLICATION smoke_pub FOR TABLE outbox",
      db);
  pg.exec("SELECT pg_create_logical_replication_slot('smoke_slot', 'pgoutput')", db);
  pg.exec("BEGIN; INSERT INTO outbox VALUES (1, '\\x00ff'), (2, NULL); COMMIT", db);
  // Begin, Relation, two Inserts, Commit.
  auto changes = pg.query(
      "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('smoke_slot', NULL, NULL, "
      "'proto_version', '1', 'publication_names', 'smoke_pub')",
      db);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0][0], std::optional<std::string>("5"));

  auto rows = pg.query("SELECT id, payload FROM outbox ORDER BY id", db);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1], std::optional<std::string>("\\x00ff"));
  EXPECT_EQ(rows[1][1], std::nullopt);
  EXPECT_EQ(pg.query_scalar("SELECT 1 WHERE false", db), std::nullopt);
}

TEST(HarnessPostgres, ErrorsCarryTheServerMessageAndLeaveTheConnectionUsable) {
  auto& pg = harness::Servers::postgres();
  try {
    pg.exec("BEGIN; SELECT 1/0; COMMIT");
    FAIL() << "division by zero succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("division by zero"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pg.query_scalar("SELECT 42"), std::optional<std::string>("42"));
}

TEST(HarnessPostgres, RestartAndStopStartAgainKeepPortDataAndSlot) {
  auto& pg = harness::Servers::postgres();
  const std::string db = unique("restart");
  pg.create_database(db);
  pg.exec("CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')", db);
  // A slot cannot be created in the implicit transaction of a multi-statement
  // string that wrote.
  pg.exec("SELECT pg_create_logical_replication_slot('restart_slot', 'pgoutput')", db);
  const int port = pg.port();

  pg.restart();
  EXPECT_EQ(pg.query_scalar("SELECT v FROM t", db), std::optional<std::string>("kept"));

  pg.stop(harness::StopMode::kImmediate);
  EXPECT_THROW(pg.query_scalar("SELECT 1", db), std::runtime_error);
  pg.start_again();
  EXPECT_EQ(pg.port(), port);
  EXPECT_EQ(pg.query_scalar("SELECT v FROM t", db), std::optional<std::string>("kept"));
  EXPECT_EQ(pg.query_scalar(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'restart_slot'", db),
            std::optional<std::string>("1"));
  pg.exec("SELECT pg_drop_replication_slot('restart_slot')", db);
  pg.drop_database(db);
}

TEST(HarnessKafka, RecordsWithHeadersReadBackByteForByte) {
  auto& kafka = harness::Servers::kafka();
  const std::string topic = unique("smoke");
  kafka.create_topic(topic, 3);
  EXPECT_EQ(kafka.partition_count(topic), std::optional<int>(3));
  EXPECT_THROW(kafka.create_topic(topic, 3), std::runtime_error);

  const auto records = three_records();
  produce(kafka.bootstrap(), topic, records);
  auto got = kafka.consume(topic, 3, 30s);
  expect_all_arrived(records, got, 3);
  for (const auto& g : got) EXPECT_EQ(g.topic, topic);

  // Nothing more arrives, and a quiet read returns the same three.
  auto again = kafka.consume_all_until_quiet(topic, 500ms, 30s);
  expect_all_arrived(records, again, 3);
}

TEST(HarnessKafka, ConsumeReturnsWhatItHasAtTheDeadline) {
  auto& kafka = harness::Servers::kafka();
  const std::string topic = unique("short");
  kafka.create_topic(topic, 1);
  produce(kafka.bootstrap(), topic, {{"k", "only", {}, 1700000000000}});
  const auto start = std::chrono::steady_clock::now();
  auto got = kafka.consume(topic, 2, 2s);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1900ms);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].value, "only");
}

TEST(HarnessKafka, StopStartAgainKillAndFreezeKeepRecordsAndAddress) {
  auto& kafka = harness::Servers::kafka();
  const std::string topic = unique("restart");
  kafka.create_topic(topic, 3);
  const auto records = three_records();
  produce(kafka.bootstrap(), topic, records);
  const std::string bootstrap = kafka.bootstrap();

  kafka.stop();
  EXPECT_TRUE(kafka.consume(topic, 1, 1s).empty());
  kafka.start_again();
  EXPECT_EQ(kafka.bootstrap(), bootstrap);
  expect_all_arrived(records, kafka.consume(topic, 3, 30s), 3);

  kafka.kill();
  kafka.start_again();
  std::vector<OutRecord> more{{"order-9", "after kill", {{"h", "v"}}, 1700000000009}};
  produce(kafka.bootstrap(), topic, more);
  auto all = records;
  all.insert(all.end(), more.begin(), more.end());
  expect_all_arrived(all, kafka.consume(topic, 4, 30s), 3);

  kafka.freeze();
  EXPECT_TRUE(kafka.consume(topic, 1, 1s).empty());
  kafka.thaw();
  expect_all_arrived(all, kafka.consume(topic, 4, 30s), 3);
}

TEST(HarnessProcess, ExitCodesSignalsAndLogs) {
  harness::TempDir dir;
  harness::Process ok({"sh", "-c", "echo out; echo err >&2; echo \"$SMOKE_VAR\"; exit 3"},
                      {{"SMOKE_VAR", "from-env"}}, dir.path() + "/ok.log");
  EXPECT_EQ(ok.wait_exit(10s), std::optional<int>(3));
  EXPECT_FALSE(ok.running());
  EXPECT_EQ(ok.log_contents(), "out\nerr\nfrom-env\n");

  harness::Process sleeper({"sleep", "60"}, {}, dir.path() + "/sleep.log");
  EXPECT_TRUE(sleeper.running());
  EXPECT_EQ(sleeper.wait_exit(100ms), std::nullopt);
  sleeper.signal(SIGTERM);
  EXPECT_EQ(sleeper.wait_exit(10s), std::optional<int>(128 + SIGTERM));

  EXPECT_THROW(harness::Process({"/nonexistent/binary"}, {}, dir.path() + "/x.log"),
               std::runtime_error);
}

TEST(HarnessWait, WaitUntilReportsTimeoutAndSuccess) {
  int calls = 0;
  EXPECT_TRUE(harness::wait_until([&] { return ++calls == 3; }, 5s, 1ms));
  EXPECT_FALSE(harness::wait_until([] { return false; }, 50ms));
}

TEST(HarnessTempDir, RemovedWithItsContents) {
  std::string path;
  {
    harness::TempDir dir;
    path = dir.path();
    std::filesystem::create_directories(path + "/a/b");
    EXPECT_TRUE(std::filesystem::is_directory(path + "/a/b"));
  }
  if (!harness::TempDir::keep_requested()) {
    EXPECT_FALSE(std::filesystem::exists(path));
  }
}

}  // namespace
