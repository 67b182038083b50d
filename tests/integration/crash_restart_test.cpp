// The relay killed with SIGKILL at random points of a backlog, restarted each
// time: no row lost, and a row delivered twice only if its transaction had
// not been confirmed when the relay died.
#include <atomic>
#include <random>
#include <thread>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

class CrashRestartTest : public RelayTest {};

// Under the soak label: 20 kills over 1,000,000 rows.
TEST_F(CrashRestartTest, KillNineAtRandomPointsOfALoadLosesNothing) {
  auto [db, slot, topic] = new_scene(6);
  const int kRows = soak() ? 1000000 : 100000;
  const int kKills = soak() ? 20 : 5;
  // A long status interval widens the window between acknowledgement and
  // confirmation, where a kill must lead to redelivery, never to loss.
  std::string body = basic_config(db, slot);
  body.replace(body.find("status_interval: 200ms"), 22, "status_interval: 500ms");
  const std::string config = write_config(body);

  // Create the slot before the load so the whole load is streamed.
  {
    auto relay = start_relay(config);
    ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
    relay->signal(SIGTERM);
    ASSERT_EQ(relay->wait_exit(30s), std::optional<int>(0));
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
  std::vector<std::string> confirmed_at_kill;
  std::vector<int> txns_at_kill;
  for (int k = 0; k < kKills; ++k) {
    auto relay = start_relay(config);
    if (!wait_streaming(*relay)) {
      loader.join();
      FAIL() << relay->log_contents();
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
      FAIL() << "slot still active 30 s after kill -9";
    }
    confirmed_at_kill.push_back(confirmed_flush(db, slot).value_or("0/0"));
  }
  loader.join();
  const std::string end = current_wal_lsn(db);
  std::string points;
  for (int t : txns_at_kill) points += std::to_string(t) + " ";
  std::printf("kills after %sof %d transactions inserted\n", points.c_str(), kRows / 500);

  auto relay = start_relay(config);
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 120s))
      << confirmed_flush(db, slot).value_or("?");

  auto got = kafka().consume_all_until_quiet(topic, 3s, 120s);
  std::map<std::string, int> count;
  std::map<std::string, std::string> lsn_of;
  for (const auto& r : got) {
    auto id = *header(r, "outbox-id").value_or(std::nullopt);
    ++count[id];
    lsn_of[id] = *header(r, "outbox-lsn").value_or(std::nullopt);
  }
  int duplicates = 0;
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(count.count(row_id(i))) << row_id(i) << " lost";
  }
  for (const auto& [id, n] : count) {
    if (n == 1) continue;
    duplicates += n - 1;
    // Delivered again only after kills that happened before its transaction
    // was confirmed: commit LSN at or beyond the position confirmed then.
    int eligible_kills = 0;
    for (const auto& c : confirmed_at_kill) {
      if (lsn_position(lsn_of[id]) >= lsn_position(c)) ++eligible_kills;
    }
    EXPECT_LE(n, 1 + eligible_kills) << id << " duplicated although confirmed";
  }
  std::printf("kill -9 x%d over %d rows: %zu delivered, %d duplicates\n", kKills, kRows, got.size(),
              duplicates);
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
