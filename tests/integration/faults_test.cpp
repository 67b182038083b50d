// Faults under load: the broker restarted, the database restarted, the
// walsender terminated. For each: no row lost, duplicates counted, and the
// time until a row written right after the fault is confirmed.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {
namespace {

constexpr int kTxnRows = 500;
constexpr int kProbeBase = 10000000;

struct FaultOutcome {
  int rows = 0;
  int lost = 0;
  int duplicates = 0;
  double max_recovery_s = 0;
};

class FaultsTest : public RelayTest {
 protected:
  // Loads `rows` rows in transactions of kTxnRows while `inject` runs
  // `faults` times, spread over the load. `inject` runs with the loader
  // paused, so a database restart never fails an insert half way.
  FaultOutcome run(const char* scenario, int rows, int faults,
                   const std::function<void(const Scene&)>& inject) {
    Scene scene = new_scene(6);
    auto relay = start_relay(write_config(basic_config(scene.db, scene.slot)));
    EXPECT_TRUE(wait_streaming(*relay)) << relay->log_contents();

    std::mutex db_lock;
    std::atomic<int> loaded{0};
    std::thread loader([&] {
      for (int t = 0; t < rows / kTxnRows; ++t) {
        {
          std::lock_guard<std::mutex> hold(db_lock);
          pg().exec(insert_rows_sql(scene.topic, t * kTxnRows, kTxnRows), scene.db.name);
        }
        loaded.store((t + 1) * kTxnRows);
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });

    FaultOutcome out;
    out.rows = rows + faults;
    for (int k = 0; k < faults; ++k) {
      const int at = rows * (k + 1) / (faults + 1);
      harness::wait_until([&] { return loaded.load() >= at; }, 120s);
      const auto start = std::chrono::steady_clock::now();
      std::string probe_end;
      {
        std::lock_guard<std::mutex> hold(db_lock);
        inject(scene);
        pg().exec(insert_rows_sql(scene.topic, kProbeBase + k, 1), scene.db.name);
        probe_end = current_wal_lsn(scene.db);
      }
      const bool recovered = harness::wait_until(
          [&] { return slot_confirmed_at_least(scene.db, scene.slot, probe_end); }, 120s, 20ms);
      EXPECT_TRUE(recovered) << scenario << " fault " << k << " not recovered\n"
                             << relay->log_contents();
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      out.max_recovery_s = std::max(out.max_recovery_s, seconds);
    }
    loader.join();
    const std::string end = current_wal_lsn(scene.db);
    EXPECT_TRUE(harness::wait_until(
        [&] { return slot_confirmed_at_least(scene.db, scene.slot, end); }, 180s))
        << confirmed_flush(scene.db, scene.slot).value_or("?");

    std::map<std::string, int> count;
    for (const auto& r : kafka().consume_all_until_quiet(read_committed(), scene.topic, 3s, 300s)) {
      ++count[*header(r, "outbox-id").value_or(std::nullopt)];
    }
    auto check = [&](int i) {
      auto it = count.find(row_id(i));
      if (it == count.end()) {
        ++out.lost;
      } else {
        out.duplicates += it->second - 1;
      }
    };
    for (int i = 0; i < rows; ++i) check(i);
    for (int k = 0; k < faults; ++k) check(kProbeBase + k);
    std::printf("fault %-28s faults=%-3d rows=%-7d lost=%-3d duplicates=%-7d recovery<=%.1fs\n",
                scenario, faults, out.rows, out.lost, out.duplicates, out.max_recovery_s);
    EXPECT_TRUE(relay->running()) << relay->log_contents();
    expect_clean_stop(*relay);
    return out;
  }
};

// Under the soak label the broker restarts run over 500,000 rows.
TEST_F(FaultsTest, BrokerRestartedFiveTimesDuringTheLoad) {
  auto out = run("kafka restart", soak() ? 500000 : 200000, 5, [&](const Scene&) {
    kafka().stop();
    kafka().start_again();
  });
  EXPECT_EQ(out.lost, 0);
}

TEST_F(FaultsTest, DatabaseRestartedThreeTimesDuringTheLoad) {
  auto out = run("postgres restart (fast)", 100000, 3, [&](const Scene&) { pg().restart(); });
  EXPECT_EQ(out.lost, 0);
}

TEST_F(FaultsTest, WalsenderTerminatedTenTimesDuringTheLoad) {
  auto out = run("pg_terminate_backend", 100000, 10, [&](const Scene& s) {
    // The previous termination may still be reconnecting.
    harness::wait_until(
        [&] { return slot_active(s.db, s.slot) == std::optional<std::string>("true"); },
        30s);
    auto terminated = pg().query_scalar(
        "SELECT pg_terminate_backend(active_pid)::text FROM pg_replication_slots WHERE "
        "slot_name = '" + s.slot + "' AND active_pid IS NOT NULL",
        s.db.name);
    EXPECT_EQ(terminated, std::optional<std::string>("true"));
  });
  EXPECT_EQ(out.lost, 0);
}

TEST_F(FaultsTest, BrokerFrozenForAMinuteKeepsMemoryBoundedAndTheWalsenderConnected) {
  auto [db, slot, topic] = new_scene(6);
  auto relay = start_relay(write_config(basic_config(
      db, slot, "limits:\n  max_inflight_messages: 20000\n  max_inflight_bytes: 8388608\n")));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  const auto walsender = active_pid(db, slot);
  ASSERT_TRUE(walsender.has_value());

  kafka().freeze();
  for (int t = 0; t < 200; ++t) pg().exec(insert_rows_sql(topic, t * 500, 500, 256), db.name);
  const std::string end = current_wal_lsn(db);
  auto until = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_EQ(active_pid(db, slot), walsender) << relay->log_contents();
    ASSERT_TRUE(relay->running()) << relay->log_contents();
    std::this_thread::sleep_for(500ms);
  }
  kafka().thaw();

  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(db, slot, end); }, 180s))
      << confirmed_flush(db, slot).value_or("?");
  const long peak_kib = peak_rss_kib(relay->pid());
  std::map<std::string, int> count;
  for (const auto& r : kafka().consume_all_until_quiet(read_committed(), topic, 3s, 300s)) {
    ++count[*header(r, "outbox-id").value_or(std::nullopt)];
  }
  int lost = 0, duplicates = 0;
  for (int i = 0; i < 100000; ++i) {
    auto it = count.find(row_id(i));
    if (it == count.end()) {
      ++lost;
    } else {
      duplicates += it->second - 1;
    }
  }
  std::printf("fault %-28s faults=%-3d rows=%-7d lost=%-3d duplicates=%-7d peak RSS %ld MiB\n",
              "kafka frozen 60 s", 1, 100000, lost, duplicates, peak_kib / 1024);
  EXPECT_EQ(lost, 0);
  // 8 MiB of records in flight at most, against 25 MiB of backlog.
  if (memory_bounds_apply()) {
    EXPECT_LT(peak_kib, 96 * 1024);
  }
  expect_clean_stop(*relay);
}

// A network path that dies without a reset: the walsender stops answering
// (SIGSTOP) while the TCP connection stays up. The relay must notice within
// postgres.receive_timeout, drop the connection and, once the server answers
// again, stream what was committed meanwhile; an idle but healthy server must
// never trip the timeout.
TEST_F(FaultsTest, SilentServerIsDroppedAfterReceiveTimeoutAndStreamingResumes) {
  Scene scene = new_scene();
  std::string config = basic_config(scene.db, scene.slot);
  const std::string interval = "  status_interval: 200ms\n";
  config.replace(config.find(interval), interval.size(), interval + "  receive_timeout: 2s\n");
  auto relay = start_relay(write_config(config));
  ASSERT_TRUE(wait_streaming(*relay)) << relay->log_contents();
  pg().exec(insert_rows_sql(scene.topic, 0, 1), scene.db.name);
  std::string end = current_wal_lsn(scene.db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(scene.db, scene.slot, end); },
                                  30s));
  // Idle for longer than the timeout: the relay's request for a reply keeps
  // a healthy connection alive.
  std::this_thread::sleep_for(3s);
  ASSERT_EQ(relay->log_contents().find("receive_timeout"), std::string::npos)
      << relay->log_contents();

  const auto pid = active_pid(scene.db, scene.slot);
  ASSERT_TRUE(pid.has_value());
  const pid_t walsender = std::stoi(*pid);
  ASSERT_EQ(::kill(walsender, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{walsender};
  pg().exec(insert_rows_sql(scene.topic, 1, 10), scene.db.name);
  EXPECT_TRUE(harness::wait_until(
      [&] {
        return relay->log_contents().find("postgres.receive_timeout") != std::string::npos;
      },
      15s))
      << relay->log_contents();
  ::kill(walsender, SIGCONT);

  end = current_wal_lsn(scene.db);
  ASSERT_TRUE(harness::wait_until([&] { return slot_confirmed_at_least(scene.db, scene.slot, end); },
                                  60s))
      << relay->log_contents();
  std::set<int> ids;
  for (const auto& r : kafka().consume_all_until_quiet(read_committed(), scene.topic, 2s, 60s)) {
    ids.insert(row_number(*header(r, "outbox-id").value_or(std::nullopt)));
  }
  std::set<int> expected;
  for (int i = 0; i <= 10; ++i) expected.insert(i);
  EXPECT_EQ(ids, expected);
  expect_clean_stop(*relay);
}

}  // namespace
}  // namespace itest
