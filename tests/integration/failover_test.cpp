// A relay streaming from a primary whose streaming standby is promoted. The
// relay's DSN names both servers with target_session_attrs=read-write, so it
// follows whichever accepts writes.
//
// From PostgreSQL 17 on the relay's slot is a failover slot, which the
// standby copies (sync_replication_slots, hot_standby_feedback, a physical
// slot); the primary names that physical slot in synchronized_standby_slots,
// so logical decoding never runs ahead of the standby. Under load, three
// promotions in a row: the relay resumes from the synced slot each time.
// Commits are synchronous (synchronous_standby_names), so every INSERT that
// returned success is on the standby when it is promoted; an INSERT cut off
// by the primary's death is in doubt and counts as written only if the final
// primary has it. The test asserts that Kafka holds exactly the final
// primary's rows, in commit order, and counts duplicates.
//
// Before 17, or with failover_slot: false, the promoted standby has no slot:
// the relay refuses, naming the gap, and creates nothing.
#include <libpq-fe.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "relay_fixture.h"
#include "relay_http.h"
#include "test_rows.h"

namespace itest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kStandbySlot = "outbox_standby";

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Inserts batches of rows, one transaction each, through a multi-host DSN
// that finds the primary; reconnects when it dies. A batch whose COMMIT
// returned success is acknowledged; one cut off is in doubt.
class Loader {
 public:
  static constexpr int kBatch = 5;

  Loader(std::string dsn, std::string topic) : dsn_(std::move(dsn)), topic_(std::move(topic)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Loader() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int acknowledged_count() const { return acknowledged_count_.load(); }
  std::vector<int> acknowledged() const {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }
  std::set<int> in_doubt() const {
    std::lock_guard lock(mu_);
    return in_doubt_;
  }

 private:
  void run() {
    PGconn* conn = nullptr;
    int next = 0;
    while (!stop_) {
      if (!conn || PQstatus(conn) != CONNECTION_OK) {
        if (conn) PQfinish(conn);
        conn = PQconnectdb(dsn_.c_str());
        if (PQstatus(conn) != CONNECTION_OK) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
      }
      PGresult* r = PQexec(conn, insert_rows_sql(topic_, next, kBatch).c_str());
      const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
      {
        std::lock_guard lock(mu_);
        for (int i = next; i < next + kBatch; ++i) {
          if (ok) {
            acknowledged_.push_back(i);
          } else {
            in_doubt_.insert(i);
          }
        }
      }
      if (ok) acknowledged_count_ += kBatch;
      if (!ok) {
        PQfinish(conn);
        conn = nullptr;
      }
      next += kBatch;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (conn) PQfinish(conn);
  }

  std::string dsn_;
  std::string topic_;
  std::atomic<bool> stop_{false};
  std::atomic<int> acknowledged_count_{0};
  mutable std::mutex mu_;
  std::vector<int> acknowledged_;
  std::set<int> in_doubt_;
  std::thread thread_;
};

class FailoverTest : public RelayTest {
 protected:
  void SetUp() override {
    servers_[0] = harness::PostgresServer::start();
    major_ = servers_[0]->major_version();
    servers_[1] = harness::PostgresServer::start_standby(*servers_[0], kStandbySlot);
    arm(*servers_[0]);
  }

  harness::PostgresServer& primary() { return *servers_[primary_]; }
  harness::PostgresServer& standby() { return *servers_[1 - primary_]; }

  // Commits wait for the standby, and from 17 on logical decoding waits for
  // its physical slot. Set after the standby was cloned, so that a standby
  // never inherits them: promoted, it must not wait for a standby of its own.
  void arm(harness::PostgresServer& server) {
    server.exec(std::string("ALTER SYSTEM SET synchronous_standby_names = '") + kStandbySlot +
                "'");
    if (major_ >= 17) {
      server.exec(std::string("ALTER SYSTEM SET synchronized_standby_slots = '") + kStandbySlot +
                  "'");
    }
    server.exec("SELECT pg_reload_conf()");
  }

  // Both servers, whichever is the primary; libpq tries them in order.
  std::string multi_host_dsn(const std::string& db) const {
    return "host=127.0.0.1,127.0.0.1 port=" + std::to_string(servers_[0]->port()) + "," +
           std::to_string(servers_[1]->port()) + " dbname=" + db +
           " user=postgres target_session_attrs=read-write connect_timeout=5";
  }

  std::string relay_config(const OutboxDb& db, const std::string& slot,
                           const std::string& delivery, bool failover_slot) {
    std::string body = basic_config(db, slot);
    body.replace(body.find("  drain_timeout: 10s\n"), 20,
                 "  drain_timeout: 10s\n  delivery: " + delivery + "\n");
    if (!failover_slot) {
      body.replace(body.find("  status_interval"), 0, "  failover_slot: false\n");
    }
    body.replace(body.find("  listen: \"\""), 12, "  listen: \"127.0.0.1:0\"");
    return body;
  }

  static std::string metrics(int port) { return http_body(port, "/metrics"); }

  static std::string readyz(int port) { return http_body(port, "/readyz"); }

  std::optional<std::string> slot_query(harness::PostgresServer& server, const std::string& db,
                                        const std::string& slot, const std::string& column) {
    return server.query_scalar(
        "SELECT " + column + " FROM pg_replication_slots WHERE slot_name = '" + slot + "'", db);
  }

  // The standby holds a persistent synced copy of the slot that has caught
  // up with `lsn` (a position the primary's slot had confirmed).
  bool standby_synced_past(const std::string& db, const std::string& slot,
                           const std::string& lsn) {
    return slot_query(standby(), db, slot,
                      "(synced AND NOT temporary AND confirmed_flush_lsn >= '" + lsn +
                          "'::pg_lsn)::text") == std::optional<std::string>("true");
  }

  bool confirmed_at_least(harness::PostgresServer& server, const std::string& db,
                          const std::string& slot, const std::string& lsn) {
    return slot_query(server, db, slot,
                      "(active AND confirmed_flush_lsn >= '" + lsn + "'::pg_lsn)::text") ==
           std::optional<std::string>("true");
  }

  // Stops the primary the hard way and promotes its standby.
  void fail_over() {
    primary().stop(harness::StopMode::kImmediate);
    standby().promote();
    primary_ = 1 - primary_;
  }

  struct Promotion {
    double promoted_s;   // the primary stopped -> the standby promoted
    double recovered_s;  // the primary stopped -> the relay confirmed on the new one
  };
  void promote_under_load(const OutboxDb& db, const std::string& slot, Loader& loader);
  void refuse_after_promotion(const std::string& delivery);

  std::unique_ptr<harness::PostgresServer> servers_[2];
  int primary_ = 0;
  int major_ = 0;
  std::vector<Promotion> promotions_;
};

void FailoverTest::promote_under_load(const OutboxDb& db, const std::string& slot,
                                      Loader& loader) {
  // Rows flow on this primary, and the standby's copy of the slot has
  // caught up with what the relay confirmed here.
  const int before = loader.acknowledged_count();
  ASSERT_TRUE(harness::wait_until([&] { return loader.acknowledged_count() >= before + 200; },
                                  60s));
  const std::string current = *primary().query_scalar("SELECT pg_current_wal_lsn()::text", db.name);
  ASSERT_TRUE(harness::wait_until([&] { return confirmed_at_least(primary(), db.name, slot, current); },
                                  60s))
      << slot_query(primary(), db.name, slot, "confirmed_flush_lsn::text").value_or("(no slot)");
  const std::string confirmed =
      *slot_query(primary(), db.name, slot, "confirmed_flush_lsn::text");
  ASSERT_TRUE(harness::wait_until([&] { return standby_synced_past(db.name, slot, confirmed); },
                                  60s))
      << "standby's copy: "
      << slot_query(standby(), db.name, slot,
                    "format('synced=%s temporary=%s confirmed=%s', synced, temporary, "
                    "confirmed_flush_lsn)")
             .value_or("(none)");

  const auto stopped = Clock::now();
  fail_over();
  const auto promoted = Clock::now();
  const std::string after = *primary().query_scalar("SELECT pg_current_wal_lsn()::text", db.name);
  ASSERT_TRUE(harness::wait_until([&] { return confirmed_at_least(primary(), db.name, slot, after); },
                                  120s))
      << slot_query(primary(), db.name, slot, "format('active=%s confirmed=%s', active, "
                                              "confirmed_flush_lsn)")
             .value_or("(no slot on the new primary)");
  const auto recovered = Clock::now();
  promotions_.push_back({seconds_between(stopped, promoted), seconds_between(stopped, recovered)});
  std::printf("promotion %zu: server on port %d promoted in %.2f s; relay confirmed on it %.2f s "
              "after the primary stopped\n",
              promotions_.size(), primary().port(), promotions_.back().promoted_s,
              promotions_.back().recovered_s);

  // The old primary becomes the new standby, on its old port.
  standby().rebuild_as_standby(primary(), kStandbySlot);
  arm(primary());
}

struct Delivered {
  std::vector<int> first_seen;  // ids in the order they were first read
  std::map<int, int> copies;
  size_t records = 0;
};

Delivered read_topic(harness::KafkaBroker& kafka, const harness::ClientSettings& reader,
                     const std::string& topic) {
  Delivered d;
  for (const auto& r : kafka.consume_all_until_quiet(reader, topic, 3s, 120s)) {
    std::optional<std::string> id;
    for (const auto& [k, v] : r.headers) {
      if (k == "outbox-id") id = v;
    }
    if (!id) {
      ADD_FAILURE() << "a record without outbox-id at offset " << r.offset;
      continue;
    }
    const int n = row_number(*id);
    if (d.copies[n]++ == 0) d.first_seen.push_back(n);
    ++d.records;
  }
  return d;
}

// Three promotions under load, then every row of the final primary is read
// back from Kafka and compared, row by row.
class FailoverUnderLoad : public FailoverTest {
 protected:
  void run(const std::string& delivery) {
    if (major_ < 17) GTEST_SKIP() << "PostgreSQL " << major_ << " has no failover slots";
    OutboxDb db = make_outbox_db(primary());
    db.dsn = multi_host_dsn(db.name);
    const std::string slot = unique("slot");
    const std::string topic = unique("events");
    kafka().create_topic(topic, 1);
    auto relay = start_relay(write_config(relay_config(db, slot, delivery, true)));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    ASSERT_EQ(slot_query(primary(), db.name, slot, "failover::text"),
              std::optional<std::string>("true"));
    const int http = wait_http_port(*relay);
    ASSERT_GT(http, 0) << relay->log_contents();

    Loader loader(multi_host_dsn(db.name), topic);
    // The primary holds decoding back for the standby's physical slot: the
    // relay reports one standby ready to carry the slot.
    std::string text;
    ASSERT_TRUE(harness::wait_until(
        [&] {
          text = metrics(http);
          return sample(text, "outbox_relay_slot_failover{slot=\"" + slot + "\"}") == 1.0 &&
                 sample(text, "outbox_relay_slot_failover_ready_standbys{slot=\"" + slot +
                                  "\"}") == 1.0;
        },
        60s))
        << text;
    EXPECT_EQ(readyz(http), "streaming failover_slot=1 failover_ready_standbys=1\n");

    for (int i = 0; i < 3 && !HasFatalFailure(); ++i) {
      promote_under_load(db, slot, loader);
      if (!relay->running()) break;
    }
    loader.stop();
    ASSERT_FALSE(HasFatalFailure()) << relay->log_contents();
    ASSERT_TRUE(relay->running()) << relay->log_contents();

    const std::string end = *primary().query_scalar("SELECT pg_current_wal_lsn()::text", db.name);
    ASSERT_TRUE(harness::wait_until([&] { return confirmed_at_least(primary(), db.name, slot, end); },
                                    120s))
        << relay->log_contents();
    std::set<int> in_table;
    for (const auto& row : primary().query("SELECT id::text FROM outbox", db.name)) {
      in_table.insert(row_number(*row[0]));
    }
    const std::vector<int> acknowledged = loader.acknowledged();
    const std::set<int> in_doubt = loader.in_doubt();
    int acknowledged_missing = 0;
    for (int id : acknowledged) acknowledged_missing += in_table.count(id) ? 0 : 1;
    int in_doubt_kept = 0;
    for (int id : in_doubt) in_doubt_kept += in_table.count(id) ? 1 : 0;

    const harness::ClientSettings reader{
        kafka().bootstrap(),
        {{"isolation.level", delivery == "exactly_once" ? "read_committed" : "read_uncommitted"}}};
    const Delivered got = read_topic(kafka(), reader, topic);
    int lost = 0, phantoms = 0, duplicates = 0, out_of_order = 0;
    for (int id : in_table) {
      if (!got.copies.count(id)) {
        if (lost++ < 10) ADD_FAILURE() << row_id(id) << " is in the outbox but not in Kafka";
      }
    }
    for (const auto& [id, n] : got.copies) {
      if (!in_table.count(id)) ++phantoms;
      duplicates += n - 1;
    }
    for (size_t i = 1; i < got.first_seen.size(); ++i) {
      if (got.first_seen[i] < got.first_seen[i - 1]) ++out_of_order;
    }
    std::printf("%s, PostgreSQL %d, 3 promotions: %zu rows acknowledged by PostgreSQL, %zu in "
                "doubt (%d of them committed), %zu in the final outbox; %zu records read, %d "
                "lost, %d duplicates, %d not in the outbox, %d out of order\n",
                delivery.c_str(), major_, acknowledged.size(), in_doubt.size(), in_doubt_kept,
                in_table.size(), got.records, lost, duplicates, phantoms, out_of_order);
    for (size_t i = 0; i < promotions_.size(); ++i) {
      std::printf("  promotion %zu: promoted %.2f s, relay recovered %.2f s after the primary "
                  "stopped\n",
                  i + 1, promotions_[i].promoted_s, promotions_[i].recovered_s);
    }
    EXPECT_EQ(acknowledged_missing, 0) << "synchronous commit lost acknowledged rows";
    EXPECT_EQ(lost, 0);
    EXPECT_EQ(phantoms, 0);
    EXPECT_EQ(out_of_order, 0);
    if (delivery == "exactly_once") {
      EXPECT_EQ(duplicates, 0);
    }
    EXPECT_EQ(promotions_.size(), 3u);
    const std::string log = relay->log_contents();
    EXPECT_EQ(log.find("created replication slot"), log.rfind("created replication slot"))
        << "the slot was created more than once:\n"
        << log;
    expect_clean_stop(*relay);
  }
};

TEST_F(FailoverUnderLoad, ThreePromotionsResumeFromTheSyncedSlotLosingNothingExactlyOnce) {
  run("exactly_once");
}

TEST_F(FailoverUnderLoad, ThreePromotionsResumeFromTheSyncedSlotLosingNothingAtLeastOnce) {
  run("at_least_once");
}

// The standby had no copy of the slot (PostgreSQL before 17, or a slot that
// is not a failover slot): the promoted server has none. The relay must not
// create one there, which would skip every row committed since its last
// position; it stops and names that position.
void FailoverTest::refuse_after_promotion(const std::string& delivery) {
  OutboxDb db = make_outbox_db(primary());
  db.dsn = multi_host_dsn(db.name);
  const std::string slot = unique("slot");
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  auto relay = start_relay(write_config(relay_config(db, slot, delivery, false)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  primary().exec(insert_rows_sql(topic, 0, 50), db.name);
  const std::string end = *primary().query_scalar("SELECT pg_current_wal_lsn()::text", db.name);
  ASSERT_TRUE(harness::wait_until([&] { return confirmed_at_least(primary(), db.name, slot, end); },
                                  60s))
      << relay->log_contents();
  ASSERT_TRUE(harness::wait_until(
      [&] {
        return standby().query_scalar("SELECT (pg_last_wal_replay_lsn() >= '" + end +
                                      "'::pg_lsn)::text") == std::optional<std::string>("true");
      },
      60s));

  fail_over();
  primary().exec(insert_rows_sql(topic, 50, 10), db.name);

  ASSERT_EQ(relay->wait_exit(60s), std::optional<int>(1)) << relay->log_contents();
  const std::string log = relay->log_contents();
  const std::string refusal = log.substr(log.find("does not exist, but") == std::string::npos
                                             ? 0
                                             : log.rfind('\n', log.find("does not exist, but")) + 1);
  EXPECT_NE(log.find("slot=" + slot + " does not exist, but " +
                     (delivery == "exactly_once" ? std::string("Kafka holds its checkpoint at lsn=")
                                                 : std::string("this process streamed it"))),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("the gap runs from lsn="), std::string::npos) << log;
  EXPECT_NE(log.find(major_ < 17 ? "has no failover slots" : "only if it synchronized it"),
            std::string::npos)
      << log;
  EXPECT_EQ(primary().query_scalar("SELECT count(*)::text FROM pg_replication_slots WHERE "
                                   "slot_name = '" + slot + "'",
                                   db.name),
            std::optional<std::string>("0"))
      << "the lost slot was created again on the promoted server";
  std::printf("%s, PostgreSQL %d: %s\n", delivery.c_str(), major_,
              refusal.substr(0, refusal.find('\n')).c_str());

  const harness::ClientSettings reader{
      kafka().bootstrap(),
      {{"isolation.level", delivery == "exactly_once" ? "read_committed" : "read_uncommitted"}}};
  const Delivered got = read_topic(kafka(), reader, topic);
  std::vector<int> expected(50);
  for (int i = 0; i < 50; ++i) expected[static_cast<size_t>(i)] = i;
  EXPECT_EQ(got.first_seen, expected);
}

TEST_F(FailoverTest, PromotedStandbyWithoutTheSlotIsRefusedAsALostSlotExactlyOnce) {
  refuse_after_promotion("exactly_once");
}

TEST_F(FailoverTest, PromotedStandbyWithoutTheSlotIsRefusedAsALostSlotAtLeastOnce) {
  refuse_after_promotion("at_least_once");
}

}  // namespace
}  // namespace itest
