// Whether the checkpoint an exactly-once relay reads back from Kafka may be
// resumed from as it says.
//
// Its positions are in one history of the system. A standby promoted before
// it had replayed them starts a new timeline at an earlier switch point, and
// writes other rows at positions the checkpoint names: the relay refuses it
// (a divergence), creates and confirms nothing, and with on_slot_lost:
// recreate streams the server's own slot. A standby that had replayed them
// is an ordinary failover: the relay streams on.
//
// Its last_row counts records under the outbox selection that wrote it. A
// relay restarted in the middle of a huge transaction with another
// outbox.source republishes that transaction whole rather than skip by an
// index that now names other records.
#include <fstream>
#include <set>

#include "relay_fixture.h"
#include "relay_http.h"
#include "test_rows.h"

namespace itest {
namespace {

constexpr const char* kStandbySlot = "resume_standby";

class TimelineTest : public RelayTest {
 protected:
  void SetUp() override {
    primary_ = harness::PostgresServer::start();
    db_ = make_outbox_db(*primary_);
    slot_ = unique("slot");
    topic_ = unique("events");
    kafka().create_topic(topic_, 1);
  }

  std::string config(const std::string& dsn, const std::string& extra_postgres = "") {
    OutboxDb db = db_;
    db.dsn = dsn;
    std::string body = basic_config(db, slot_);
    body.replace(body.find("  status_interval"), 0, extra_postgres);
    return write_config(body);
  }

  // Rows [first, first + count) streamed from the primary by an exactly-once
  // relay that stops cleanly once the slot is confirmed past them.
  void deliver_from_primary(int first, int count) {
    auto relay = start_relay(config(db_.dsn));
    EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    primary_->exec(insert_rows_sql(topic_, first, count), db_.name);
    const std::string end = *primary_->query_scalar("SELECT pg_current_wal_lsn()::text");
    EXPECT_TRUE(harness::wait_until(
        [&] {
          return slot_value(*primary_, "(confirmed_flush_lsn >= '" + end + "')::text") ==
                 std::optional<std::string>("true");
        },
        30s))
        << relay->log_contents();
    expect_clean_stop(*relay);
  }

  // The checkpoint a relay said it read back from Kafka when it started.
  static std::string checkpoint_read(const std::string& log) {
    const std::string taken = "; checkpoint lsn=";
    const size_t at = log.find(taken);
    if (at == std::string::npos) return "?";
    const size_t from = at + taken.size();
    return log.substr(from, log.find_first_of(" \n", from) - from);
  }

  std::optional<std::string> slot_value(harness::PostgresServer& server, const std::string& expr) {
    return server.query_scalar(
        "SELECT " + expr + " FROM pg_replication_slots WHERE slot_name = '" + slot_ + "'",
        db_.name);
  }

  // The promoted server's slot, as an operator would create it by hand (on
  // PostgreSQL 17 the standby may already hold a synchronized copy).
  void create_slot_by_hand(harness::PostgresServer& server) {
    server.exec("SELECT pg_create_logical_replication_slot('" + slot_ +
                    "', 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE "
                    "slot_name = '" + slot_ + "')",
                db_.name);
  }

  // Where timeline 1 ended in the promoted server's history.
  static std::string switch_point(harness::PostgresServer& server) {
    const std::string history =
        server.query_scalar("SELECT pg_read_file('pg_wal/00000002.history')").value_or("");
    const size_t tab = history.find('\t');
    return history.substr(tab + 1, history.find('\t', tab + 1) - tab - 1);
  }

  std::vector<int> ids_in_kafka() {
    std::vector<int> ids;
    for (const auto& r : kafka().consume_all_until_quiet(read_committed(), topic_, 3s, 60s)) {
      ids.push_back(row_number(*header(r, "outbox-id").value_or(std::nullopt)));
    }
    return ids;
  }

  static std::vector<int> range(int first, int count) {
    std::vector<int> v;
    for (int i = first; i < first + count; ++i) v.push_back(i);
    return v;
  }

  static std::vector<int> concat(std::vector<int> a, const std::vector<int>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  std::unique_ptr<harness::PostgresServer> primary_;
  std::unique_ptr<harness::PostgresServer> standby_;
  OutboxDb db_;
  std::string slot_;
  std::string topic_;
};

// The standby stops replicating before the relay's slot and rows A exist
// on the primary, so its timeline 2 begins before the checkpoint: the rows
// B written there sit at positions the checkpoint calls delivered.
TEST_F(TimelineTest, PromotedLaggingStandbyIsRefusedAsADivergenceAndRecreatedOnlyWhenConfigured) {
  standby_ = harness::PostgresServer::start_standby(*primary_, kStandbySlot);
  standby_->exec("ALTER SYSTEM SET primary_conninfo = ''");
  standby_->exec("SELECT pg_reload_conf()");
  ASSERT_TRUE(harness::wait_until(
      [&] {
        return standby_->query_scalar("SELECT count(*)::text FROM pg_stat_wal_receiver") ==
               std::optional<std::string>("0");
      },
      30s));

  deliver_from_primary(0, 5);
  ASSERT_FALSE(HasFailure());
  primary_->stop();
  standby_->promote();
  const std::string fork = switch_point(*standby_);
  create_slot_by_hand(*standby_);
  standby_->exec(insert_rows_sql(topic_, 100, 5), db_.name);
  const std::optional<std::string> slot_before = slot_value(*standby_, "confirmed_flush_lsn::text");
  ASSERT_TRUE(slot_before);

  auto failing = start_relay(config(standby_->dsn(db_.name)));
  ASSERT_EQ(failing->wait_exit(60s), std::optional<int>(1)) << failing->log_contents();
  const std::string refusal = failing->log_contents();
  const std::string checkpoint = checkpoint_read(refusal);
  ASSERT_NE(checkpoint, "?") << refusal;
  ASSERT_LT(lsn_position(fork), lsn_position(checkpoint)) << fork << " " << checkpoint;
  EXPECT_NE(refusal.find("slot=" + slot_ + ": Kafka holds the slot's checkpoint at lsn=" +
                         checkpoint),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("taken on timeline 1, and this server (system identifier"),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find(") is on timeline 2 with its WAL ending at lsn="), std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("its history left timeline 1 at lsn=" + fork + " (the switch point)"),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("rows this server committed between lsn=" + fork + " and lsn=" +
                         checkpoint + " would be skipped"),
            std::string::npos)
      << refusal;
  EXPECT_NE(refusal.find("on_slot_lost: recreate"), std::string::npos) << refusal;
  EXPECT_EQ(refusal.find("streaming from"), std::string::npos) << refusal;
  EXPECT_EQ(slot_value(*standby_, "confirmed_flush_lsn::text"), slot_before);
  EXPECT_EQ(ids_in_kafka(), range(0, 5)) << "rows B reached Kafka";

  auto relay = start_relay(config(standby_->dsn(db_.name), "  on_slot_lost: recreate\n"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_NE(relay->log_contents().find("forgetting the checkpoint and streaming timeline 2 from "
                                       "the slot's own position"),
            std::string::npos)
      << relay->log_contents();
  EXPECT_EQ(kafka().consume(read_committed(), topic_, 10, 60s).size(), 10u);
  expect_clean_stop(*relay);
  EXPECT_EQ(ids_in_kafka(), concat(range(0, 5), range(100, 5)));
}

// The standby had replayed everything the checkpoint names: timeline 1
// ends after it, and the relay streams on from the promoted server.
TEST_F(TimelineTest, PromotedStandbyThatReplayedTheCheckpointStreamsOn) {
  standby_ = harness::PostgresServer::start_standby(*primary_, kStandbySlot);
  deliver_from_primary(0, 5);
  ASSERT_FALSE(HasFailure());
  const std::string end = *primary_->query_scalar("SELECT pg_current_wal_lsn()::text");
  ASSERT_TRUE(harness::wait_until(
      [&] {
        return standby_->query_scalar("SELECT (pg_last_wal_replay_lsn() >= '" + end +
                                      "'::pg_lsn)::text") == std::optional<std::string>("true");
      },
      30s));
  primary_->stop();
  standby_->promote();
  const std::string fork = switch_point(*standby_);
  create_slot_by_hand(*standby_);

  auto relay = start_relay(config(standby_->dsn(db_.name)));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const std::string log = relay->log_contents();
  const std::string checkpoint = checkpoint_read(log);
  ASSERT_NE(checkpoint, "?") << log;
  EXPECT_GE(lsn_position(fork), lsn_position(checkpoint)) << fork << " " << checkpoint;
  EXPECT_NE(log.find("the checkpoint at lsn=" + checkpoint + " was taken on timeline 1; this "
                     "server is on timeline 2, whose history left timeline 1 at lsn=" + fork),
            std::string::npos)
      << log;
  standby_->exec(insert_rows_sql(topic_, 5, 5), db_.name);
  EXPECT_EQ(kafka().consume(read_committed(), topic_, 10, 60s).size(), 10u);
  expect_clean_stop(*relay);
  EXPECT_EQ(ids_in_kafka(), range(0, 10));
}

// One PostgreSQL transaction of rows with the relay's messages between
// them, committed to Kafka in slices under outbox.source: table (which
// counts rows only). Killed after a slice, the relay is restarted with
// source: both, which counts the messages too: the checkpoint's last_row
// would skip the wrong records, so the transaction is published whole.
class SelectionChangeTest : public RelayTest {};

TEST_F(SelectionChangeTest, ResumeWithAnotherSourceRepublishesThePartlyCommittedTransaction) {
  auto [db, slot, topic] = new_scene(1);
  std::ifstream in(std::string(OUTBOX_SOURCE_DIR) + "/sql/04-outbox-emit.sql");
  pg().exec(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()),
            db.name);
  const auto config = [&](const std::string& source, bool http = false) {
    std::string body = basic_config(db, slot, "outbox:\n  source: " + source + "\n");
    body.replace(body.find("  drain_timeout: 10s\n"), 20,
                 "  drain_timeout: 10s\n  transaction_max_records: 1000\n");
    if (http) body.replace(body.find("  listen: \"\""), 12, "  listen: \"127.0.0.1:0\"");
    return write_config(body);
  };
  constexpr int kChunks = 600;
  constexpr int kRowsPerChunk = 100;
  constexpr int kRows = kChunks * kRowsPerChunk;
  {
    auto relay = start_relay(config("table"));
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    pg().exec(insert_rows_sql(topic, 0, 10), db.name);
    ASSERT_EQ(kafka().consume(read_committed(), topic, 10, 60s).size(), 10u);
    relay->signal(SIGTERM);
    ASSERT_EQ(relay->wait_exit(30s), std::optional<int>(0)) << relay->log_contents();
  }
  // Rows 10.. in chunks, each followed by message m-<chunk>.
  pg().exec("DO $$ BEGIN FOR c IN 0.." + std::to_string(kChunks - 1) +
                " LOOP INSERT INTO outbox (id, topic, key, payload) SELECT "
                "('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, '" +
                topic + "', 'k' || (g % 17), convert_to(repeat('p', 64), 'UTF8') FROM "
                "generate_series(10 + c * " + std::to_string(kRowsPerChunk) + ", 10 + c * " +
                std::to_string(kRowsPerChunk) + " + " + std::to_string(kRowsPerChunk - 1) +
                ") g; PERFORM outbox.emit('" + topic +
                "', 'm', convert_to('message', 'UTF8'), NULL, NULL, 'm-' || c); END LOOP; END $$",
            db.name);
  const std::string end = current_wal_lsn(db);
  {
    // Killed once it has committed a few slices of the huge transaction
    // (of 1,000 records each, out of 60 and more), as its own counter says:
    // a reader started after the relay could see the first records only
    // once the whole transaction is through.
    auto relay = start_relay(config("table", true));
    const int port = wait_http_port(*relay);
    ASSERT_GT(port, 0) << relay->log_contents();
    const std::string series =
        "outbox_relay_kafka_transactions_committed_total{slot=\"" + slot + "\"}";
    ASSERT_TRUE(harness::wait_until(
        [&] { return sample(http_body(port, "/metrics"), series).value_or(0) >= 3; }, 120s, 2ms))
        << relay->log_contents();
    relay->signal(SIGKILL);
    relay->wait_exit(10s);
    ASSERT_FALSE(slot_confirmed_at_least(db, slot, end)) << "the whole transaction went through";
    ASSERT_GE(kafka().consume(read_committed(), topic, 10 + 1000, 120s).size(), 1010u);
    ASSERT_TRUE(harness::wait_until(
        [&] { return slot_active(db, slot) == std::optional<std::string>("false"); }, 30s));
  }

  auto relay = start_relay(config("both"));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 120s))
      << relay->log_contents();
  pg().exec(insert_rows_sql(topic, 10 + kRows, 10), db.name);
  const std::string after = current_wal_lsn(db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, after); }, 60s));
  const std::string log = relay->log_contents();
  EXPECT_NE(log.find("outbox.source, outbox.table or outbox.message_prefix changed since it was "
                     "written"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("republishing that whole transaction"), std::string::npos) << log;
  expect_clean_stop(*relay);

  std::map<std::string, int> copies;
  for (const auto& r : kafka().consume_all_until_quiet(read_committed(), topic, 3s, 120s)) {
    ++copies[*header(r, "outbox-id").value_or(std::nullopt)];
  }
  int missing = 0, duplicated_outside = 0, duplicates = 0;
  for (int i = 0; i < kRows + 20; ++i) {
    const auto it = copies.find(row_id(i));
    const bool in_huge = i >= 10 && i < 10 + kRows;
    if (it == copies.end()) {
      if (missing++ < 10) ADD_FAILURE() << row_id(i) << " missing";
      continue;
    }
    duplicates += it->second - 1;
    if (!in_huge && it->second != 1) ++duplicated_outside;
  }
  for (int c = 0; c < kChunks; ++c) {
    const auto it = copies.find("m-" + std::to_string(c));
    if (it == copies.end()) {
      if (missing++ < 10) ADD_FAILURE() << "message m-" << c << " missing";
    } else {
      EXPECT_EQ(it->second, 1) << "m-" << c << ": source table never published it";
    }
  }
  std::printf("source table -> both mid-transaction: %d missing, %d duplicates (all within the "
              "transaction: %s)\n",
              missing, duplicates, duplicated_outside == 0 ? "yes" : "no");
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated_outside, 0);
  EXPECT_GT(duplicates, 0) << "nothing republished: was a slice committed before the kill?";
  EXPECT_EQ(copies.size(), static_cast<size_t>(kRows + 20 + kChunks));
}

}  // namespace
}  // namespace itest
