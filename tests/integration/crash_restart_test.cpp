// The relay killed with SIGKILL at random points of a backlog, restarted each
// time: no row lost. At least once, a row is delivered twice only if its
// transaction had not been confirmed when the relay died; exactly once, a
// read_committed consumer sees every row exactly once.
#include <atomic>
#include <random>
#include <thread>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

struct KillOutcome {
  int rows = 0;
  int kills = 0;
  std::map<std::string, int> count;  // outbox-id -> copies read
  std::map<std::string, std::string> lsn_of;
  std::vector<std::string> confirmed_at_kill;
};

class CrashRestartTest : public RelayTest {
 protected:
  // Loads the outbox while the relay, run with kafka.delivery = `delivery`,
  // is killed with SIGKILL at random points and restarted; then reads the
  // topic with `isolation`. Under the soak label: 20 kills over 1,000,000 rows.
  KillOutcome kill_during_load(const std::string& delivery, const char* isolation);
};

KillOutcome CrashRestartTest::kill_during_load(const std::string& delivery,
                                               const char* isolation) {
  KillOutcome out;
  auto [db, slot, topic] = new_scene(6);
  const int kRows = soak() ? 1000000 : 100000;
  const int kKills = soak() ? 20 : 5;
  out.rows = kRows;
  out.kills = kKills;
  // A long status interval widens the window between acknowledgement and
  // confirmation, where a kill must lead to redelivery, never to loss.
  std::string body = basic_config(db, slot);
  body.replace(body.find("status_interval: 200ms"), 22, "status_interval: 500ms");
  body.replace(body.find("  drain_timeout: 10s\n"), 20,
               "  drain_timeout: 10s\n  delivery: " + delivery + "\n");
  const std::string config = write_config(body);

  // Create the slot before the load so the whole load is streamed.
  {
    auto relay = start_relay(config);
    EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    relay->signal(SIGTERM);
    EXPECT_EQ(relay->wait_exit(30s), std::optional<int>(0));
    if (::testing::Test::HasFailure()) return out;
  }
  // The load runs while the relay is killed and restarted: kill points fall
  // among transactions being inserted, streamed, produced and confirmed.
  std::atomic<int> inserted_txns{0};
  std::thread loader([&] {
    for (int t = 0; t < kRows / 500; ++t) {
      pg().exec(insert_rows_sql(topic, t * 500, 500), db.name);
      inserted_txns.store(t + 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(15));
    }
  });

  std::mt19937 rng(7);
  std::vector<int> txns_at_kill;
  for (int k = 0; k < kKills; ++k) {
    auto relay = start_relay(config);
    if (!wait_streaming(*relay)) {
      loader.join();
      ADD_FAILURE() << relay->log_contents();
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 2200));
    relay->signal(SIGKILL);
    relay->wait_exit(10s);
    txns_at_kill.push_back(inserted_txns.load());
    // A killed walsender connection lingers until the server notices.
    const bool released = harness::wait_until(
        [&] { return slot_active(db, slot) == std::optional<std::string>("false"); },
        30s);
    if (!released) {
      loader.join();
      ADD_FAILURE() << "slot still active 30 s after kill -9";
      return out;
    }
    out.confirmed_at_kill.push_back(confirmed_flush(db, slot).value_or("0/0"));
  }
  loader.join();
  const std::string end = current_wal_lsn(db);
  std::string points;
  for (int t : txns_at_kill) points += std::to_string(t) + " ";
  std::printf("kills after %sof %d transactions inserted\n", points.c_str(), kRows / 500);

  auto relay = start_relay(config);
  EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  EXPECT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 120s))
      << confirmed_flush(db, slot).value_or("?");
  const harness::ClientSettings reader{kafka().bootstrap(), {{"isolation.level", isolation}}};
  for (const auto& r : kafka().consume_all_until_quiet(reader, topic, 3s, 120s)) {
    auto id = *header(r, "outbox-id").value_or(std::nullopt);
    ++out.count[id];
    out.lsn_of[id] = *header(r, "outbox-lsn").value_or(std::nullopt);
  }
  expect_clean_stop(*relay);
  return out;
}

TEST_F(CrashRestartTest, KillNineAtRandomPointsOfALoadLosesNothingAtLeastOnce) {
  const KillOutcome out = kill_during_load("at_least_once", "read_uncommitted");
  ASSERT_FALSE(HasFailure());
  int duplicates = 0;
  size_t delivered = 0;
  for (int i = 0; i < out.rows; ++i) {
    ASSERT_TRUE(out.count.count(row_id(i))) << row_id(i) << " lost";
  }
  for (const auto& [id, n] : out.count) {
    delivered += n;
    if (n == 1) continue;
    duplicates += n - 1;
    // Delivered again only after kills that happened before its transaction
    // was confirmed: commit LSN at or beyond the position confirmed then.
    int eligible_kills = 0;
    for (const auto& c : out.confirmed_at_kill) {
      if (lsn_position(out.lsn_of.at(id)) >= lsn_position(c)) ++eligible_kills;
    }
    EXPECT_LE(n, 1 + eligible_kills) << id << " duplicated although confirmed";
  }
  std::printf("at_least_once: kill -9 x%d over %d rows: %zu delivered, %d duplicates\n", out.kills,
              out.rows, delivered, duplicates);
}

TEST_F(CrashRestartTest, KillNineAtRandomPointsOfALoadDeliversEachRowOnceExactlyOnce) {
  const KillOutcome out = kill_during_load("exactly_once", "read_committed");
  ASSERT_FALSE(HasFailure());
  int lost = 0, duplicates = 0;
  size_t delivered = 0;
  for (int i = 0; i < out.rows; ++i) {
    auto it = out.count.find(row_id(i));
    if (it == out.count.end()) {
      ++lost;
      continue;
    }
    delivered += it->second;
    duplicates += it->second - 1;
  }
  std::printf("exactly_once: kill -9 x%d over %d rows: %zu read (read_committed), %d lost, %d "
              "duplicates\n",
              out.kills, out.rows, delivered, lost, duplicates);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(out.count.size(), static_cast<size_t>(out.rows));
}

// One PostgreSQL transaction far larger than one Kafka transaction may
// carry: it is committed to Kafka in slices (transaction_max_records), each
// with a checkpoint naming the last row it includes, so part of it becomes
// visible before the rest is even read, and a relay killed in the middle
// resumes after the last row committed. A read_committed consumer reads
// every row once, in order per key; the relay's memory stays bounded.
TEST_F(CrashRestartTest, OneHugeTransactionIsCommittedInSlicesAndResumedAfterKillsExactlyOnce) {
  auto [db, slot, topic] = new_scene(3);
  const int kRows = soak() ? 1000000 : 200000;
  std::string body = basic_config(db, slot);
  body.replace(body.find("  drain_timeout: 10s\n"), 20,
               "  drain_timeout: 10s\n  delivery: exactly_once\n  transaction_max_records: 10000\n"
               "  transaction_timeout: 10s\n");
  const std::string config = write_config(body);
  {
    auto relay = start_relay(config);
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    relay->signal(SIGTERM);
    ASSERT_EQ(relay->wait_exit(30s), std::optional<int>(0));
  }
  pg().exec(insert_rows_sql(topic, 0, kRows), db.name);
  const std::string end = current_wal_lsn(db);
  const harness::ClientSettings reader{kafka().bootstrap(), {{"isolation.level", "read_committed"}}};

  long peak_kib = 0;
  for (int visible : {kRows / 10, kRows / 2}) {
    auto relay = start_relay(config);
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    const size_t seen = kafka().consume(reader, topic, visible, 120s).size();
    peak_kib = std::max(peak_kib, peak_rss_kib(relay->pid()));
    relay->signal(SIGKILL);
    relay->wait_exit(10s);
    ASSERT_GE(seen, static_cast<size_t>(visible)) << relay->log_contents();
    // Visible before the PostgreSQL transaction was confirmed: committed in
    // slices, not as one Kafka transaction.
    EXPECT_FALSE(slot_confirmed_at_least(db, slot, end));
    ASSERT_TRUE(harness::wait_until(
        [&] { return slot_active(db, slot) == std::optional<std::string>("false"); }, 30s));
  }

  auto relay = start_relay(config);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 300s))
      << confirmed_flush(db, slot).value_or("?");
  peak_kib = std::max(peak_kib, peak_rss_kib(relay->pid()));
  std::map<std::string, int> count;
  std::map<std::string, int> last_of_key;
  int out_of_order = 0;
  for (const auto& r : kafka().consume_all_until_quiet(reader, topic, 3s, 300s)) {
    const std::string id = *header(r, "outbox-id").value_or(std::nullopt);
    const int n = row_number(id);
    ++count[id];
    auto [it, fresh] = last_of_key.emplace(r.key.value_or(""), n);
    if (!fresh) {
      if (n <= it->second) ++out_of_order;
      it->second = n;
    }
  }
  expect_clean_stop(*relay);
  int lost = 0, duplicates = 0;
  for (int i = 0; i < kRows; ++i) {
    auto it = count.find(row_id(i));
    if (it == count.end()) {
      ++lost;
    } else {
      duplicates += it->second - 1;
    }
  }
  std::printf("one transaction of %d rows, killed at %d and %d rows visible: %d lost, %d "
              "duplicates, %d out of order per key, relay peak RSS %ld MiB\n",
              kRows, kRows / 10, kRows / 2, lost, duplicates, out_of_order, peak_kib / 1024);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(count.size(), static_cast<size_t>(kRows));
  EXPECT_GT(peak_kib, 0);
  if (memory_bounds_apply()) {
    EXPECT_LT(peak_kib, 256 * 1024);
  }
}

}  // namespace
}  // namespace itest
