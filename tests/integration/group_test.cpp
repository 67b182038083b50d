// Slot ownership through a consumer group, against a real PostgreSQL and a
// real Kafka broker: hot standby, handover on SIGTERM, failover on kill -9,
// self-fencing of a frozen instance, sharding over three instances and
// scaling during a load. Session timeout 6 s throughout.
#include <algorithm>
#include <fstream>
#include <functional>
#include <regex>

#include "group_fixture.h"

namespace itest {
namespace {

constexpr auto kSession = 6s;

// Samples every 100 ms, through the whole scenario, which slots each instance
// says it leads and which instance's walsender holds each slot according to
// pg_replication_slots.active_pid; flags a round in which two instances
// claim one slot, or an instance claims a slot PostgreSQL shows another
// instance holding.
class OwnershipSampler {
 public:
  using Holders = std::function<std::map<std::string, std::string>()>;  // slot → application_name

  OwnershipSampler(std::vector<const Instance*> instances, Holders holders)
      : instances_(std::move(instances)), holders_(std::move(holders)) {
    thread_ = std::thread([this] {
      while (!stop_.load()) {
        sample();
        std::this_thread::sleep_for(100ms);
      }
    });
  }
  ~OwnershipSampler() { stop(); }
  void add(const Instance* in) {
    std::lock_guard lock(mutex_);
    instances_.push_back(in);
  }
  void remove(const Instance* in) {
    std::lock_guard lock(mutex_);
    instances_.erase(std::remove(instances_.begin(), instances_.end(), in), instances_.end());
  }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> violations() {
    std::lock_guard lock(mutex_);
    return violations_;
  }
  int rounds() const { return rounds_.load(); }

 private:
  void sample() {
    const auto held = holders_();
    std::lock_guard lock(mutex_);
    std::map<std::string, int> claims;
    for (const Instance* in : instances_) {
      const std::string me = GroupTest::application_name(*in->process);
      for (const auto& slot : leading_slots(*in)) {
        ++claims[slot];
        auto h = held.find(slot);
        if (h != held.end() && h->second != me) {
          violations_.push_back(me + " claims " + slot + " held by " + h->second);
        }
      }
    }
    for (const auto& [slot, n] : claims) {
      if (n > 1) violations_.push_back(slot + " claimed by " + std::to_string(n) + " instances");
    }
    ++rounds_;
  }

  std::vector<const Instance*> instances_;
  Holders holders_;
  std::mutex mutex_;
  std::vector<std::string> violations_;
  std::atomic<bool> stop_{false};
  std::atomic<int> rounds_{0};
  std::thread thread_;
};

class GroupScenario : public GroupTest {
 protected:
  OwnershipSampler::Holders holders_of(const std::vector<GroupSlot>& slots) {
    return [this, slots] {
      std::map<std::string, std::string> out;
      for (const auto& s : slots) {
        if (auto h = holder(s)) out[s.slot] = *h;
      }
      return out;
    };
  }

  // The value of a series on an instance's /metrics once it reaches
  // `expected` (or, after 10 s, whatever it is then).
  static std::optional<double> wait_sample(const Instance& in, const std::string& series,
                                           double expected) {
    std::optional<double> value;
    harness::wait_until(
        [&] {
          value = sample(http_get(in.http_port, "/metrics").value_or(""), series);
          return value == expected;
        },
        10s);
    return value;
  }

  bool wait_leads(const Instance& in, const std::string& slot, std::chrono::milliseconds d) {
    return harness::wait_until(
               [&] { return leading(in).count(slot) > 0 || !in.process->running(); }, d, 50ms) &&
           leading(in).count(slot) > 0;
  }

  // `a` leads every slot, then `b` joins and stands by.
  void start_leader_and_standby(const std::string& group, const std::vector<GroupSlot>& slots,
                                Instance& a, Instance& b, const std::string& group_extra = "") {
    a = start_instance(group, slots, group_extra);
    for (const auto& slot : slots) {
      ASSERT_TRUE(wait_leads(a, slot.slot, 60s)) << a.process->log_contents();
    }
    b = start_instance(group, slots, group_extra);
    ASSERT_TRUE(harness::wait_until([&] { return readyz(b) == "standby\n"; }, 60s))
        << readyz(b) << b.process->log_contents();
  }

  // Two instances, one slot each, both streaming.
  void start_pair(const std::string& group, const std::vector<GroupSlot>& slots, Instance& a,
                  Instance& b) {
    a = start_instance(group, slots);
    ASSERT_TRUE(harness::wait_until([&] { return leading(a).size() == slots.size(); }, 60s))
        << a.process->log_contents();
    b = start_instance(group, slots);
    ASSERT_TRUE(
        harness::wait_until([&] { return leading(a).size() == 1 && leading(b).size() == 1; }, 60s))
        << readyz(a) << readyz(b) << b.process->log_contents();
  }
};

// (6) One slot, two instances: the first leads, the second stands by and
// says so; kill -9 of the leader hands the slot to the standby.
TEST_F(GroupScenario, OneSlotStandbyTakesOverOnLeaderDeathAndReadyzShowsTheLeader) {
  auto [slots, group, topic] = new_group_scene(1);
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(start_leader_and_standby(group, slots, a, b));
  EXPECT_EQ(readyz(a), "leader slots=" + slots[0].slot + "\n");
  EXPECT_TRUE(wait_held_by(slots[0], *a.process, 10s));
  const std::string gauge = "outbox_relay_slot_leader{slot=\"" + slots[0].slot + "\"} ";
  EXPECT_NE(http_get(a.http_port, "/metrics").value_or("").find(gauge + "1"), std::string::npos);
  EXPECT_NE(http_get(b.http_port, "/metrics").value_or("").find(gauge + "0"), std::string::npos);

  pg().exec(insert_rows_sql(topic, 0, 1000), slots[0].db.name);
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  // The leader counts what it delivered for the slot; the standby, which has
  // never streamed it, has no series for it.
  const std::string published = "outbox_relay_records_published_total{slot=\"" + slots[0].slot +
                                "\",topic=\"" + topic + "\"}";
  EXPECT_EQ(wait_sample(a, published, 1000), std::optional<double>(1000));
  const std::string standby_page = http_get(b.http_port, "/metrics").value_or("");
  EXPECT_EQ(standby_page.find("{slot=\"" + slots[0].slot + "\","), std::string::npos)
      << standby_page;
  EXPECT_EQ(promtool_findings(standby_page), "") << standby_page;

  const auto killed_at = std::chrono::steady_clock::now();
  a.process->signal(SIGKILL);
  a.process->wait_exit(10s);
  ASSERT_TRUE(wait_leads(b, slots[0].slot, kSession + 10s))
      << readyz(b) << b.process->log_contents();
  const auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LE(took, kSession + 5s);
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 5s));
  const std::string metrics = http_get(b.http_port, "/metrics").value_or("");
  const std::string counter = "\noutbox_relay_rebalances_total ";
  const size_t at = metrics.find(counter);
  ASSERT_NE(at, std::string::npos) << metrics;
  // Joined as a standby, then assigned the slot: two rebalances at least.
  EXPECT_GE(std::stoll(metrics.substr(at + counter.size())), 2) << metrics;
  std::printf(
      "standby took over %lld ms after kill -9 of the leader\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));

  pg().exec(insert_rows_sql(topic, 1000, 1000), slots[0].db.name);
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  // The new leader's series for the slot count only what it delivered.
  EXPECT_EQ(wait_sample(b, published, 1000), std::optional<double>(1000));
  const std::string page = http_get(b.http_port, "/metrics").value_or("");
  const std::string s = "{slot=\"" + slots[0].slot + "\"}";
  EXPECT_EQ(sample(page, "outbox_relay_commit_to_ack_seconds_count" + s), 1000.0) << page;
  EXPECT_EQ(sample(page, "outbox_relay_streaming" + s), 1.0) << page;
  EXPECT_EQ(sample(page, "outbox_relay_in_flight_records" + s), 0.0) << page;
  EXPECT_EQ(sample(page, "outbox_relay_slots_owned"), 1.0) << page;
  EXPECT_EQ(promtool_findings(page), "") << page;
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s);
  auto d = delivered(got);
  expect_nothing_lost(d, slots, {2000});
  for (const auto& r : got) {
    const int n = row_number(*header(r, "outbox-id").value_or(std::nullopt));
    const harness::Process& producer = n < 1000 ? *a.process : *b.process;
    EXPECT_TRUE(produced_by(r, producer)) << "row " << n << ": " << instance_header(r);
  }
  expect_clean_stop(*b.process);
}

// (2) SIGTERM under load: the instance drains, confirms, releases its slot
// and leaves the group; the slot streams from the other within 5 s.
TEST_F(GroupScenario, SigtermUnderLoadMovesItsSlotWithinFiveSecondsLosingNothing) {
  auto [slots, group, topic] = new_group_scene(2);
  Instance a, b;
  start_pair(group, slots, a, b);
  const std::string moving = *leading(a).begin();
  const GroupSlot& moving_slot = slots[0].slot == moving ? slots[0] : slots[1];

  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1500ms);
  const auto t0 = std::chrono::steady_clock::now();
  a.process->signal(SIGTERM);
  ASSERT_TRUE(wait_held_by(moving_slot, *b.process, 15s)) << b.process->log_contents();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LE(took, 5s);
  std::printf(
      "slot moved %lld ms after SIGTERM\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_EQ(a.process->wait_exit(30s), std::optional<int>(0)) << a.process->log_contents();
  std::this_thread::sleep_for(1000ms);
  loader.stop();

  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  auto d = delivered(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s));
  expect_nothing_lost(d, slots, loader.inserted());
  int duplicates = 0;
  for (const auto& [id, n] : d.count) duplicates += n - 1;
  // A clean handover confirms everything acknowledged before releasing.
  EXPECT_EQ(duplicates, 0);
  expect_clean_stop(*b.process);
}

// (3) kill -9 under load: the slot moves once the coordinator expels the
// dead member; rows are redelivered only from the position it had confirmed.
TEST_F(GroupScenario, KillNineUnderLoadMovesItsSlotWithinSessionTimeoutPlusFive) {
  auto [slots, group, topic] = new_group_scene(2);
  Instance a, b;
  start_pair(group, slots, a, b);
  const std::string moving = *leading(a).begin();
  const size_t moving_index = slots[0].slot == moving ? 0 : 1;
  const GroupSlot& moving_slot = slots[moving_index];

  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1500ms);
  const auto t0 = std::chrono::steady_clock::now();
  a.process->signal(SIGKILL);
  a.process->wait_exit(10s);
  ASSERT_TRUE(harness::wait_until(
      [&] { return holder(moving_slot) != application_name(*a.process); }, 30s, 10ms));
  const std::string confirmed_at_kill = confirmed_flush(moving_slot.db, moving_slot.slot).value();
  ASSERT_TRUE(wait_held_by(moving_slot, *b.process, kSession + 15s)) << b.process->log_contents();
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LE(took, kSession + 5s);
  std::printf(
      "slot moved %lld ms after kill -9\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  std::this_thread::sleep_for(1000ms);
  loader.stop();

  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  auto d = delivered(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s));
  expect_nothing_lost(d, slots, loader.inserted());
  int duplicates = 0;
  for (const auto& [id, n] : d.count) {
    if (n == 1) continue;
    duplicates += n - 1;
    const int row = row_number(id);
    const bool of_moving = row / kRowsPerSlotRange == static_cast<int>(moving_index);
    EXPECT_TRUE(of_moving) << id << " of the slot that stayed put was delivered " << n << " times";
    EXPECT_EQ(n, 2) << id;
    EXPECT_GE(lsn_position(d.lsn_of[id]), lsn_position(confirmed_at_kill))
        << id << " at " << d.lsn_of[id] << " redelivered although confirmed at "
        << confirmed_at_kill;
  }
  std::printf("kill -9 under load: %zu records, %d duplicates (unconfirmed at the kill)\n", d.total,
              duplicates);
  expect_clean_stop(*b.process);
}

// (4) A leader frozen past the session timeout loses its slot; when it wakes
// its lease has run out, so it fences itself: it produces nothing more, and
// no record of it follows the new owner's first record in any partition.
TEST_F(GroupScenario, FrozenLeaderWakesFencedAndNeverProducesAfterItsSlotMoved) {
  auto [slots, group, topic] = new_group_scene(1);
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(start_leader_and_standby(group, slots, a, b));

  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1500ms);
  a.process->signal(SIGSTOP);
  const int64_t stopped_at = wall_ms();
  // The coordinator expels the frozen member and assigns the slot to b,
  // which waits: a's walsender still holds the slot.
  ASSERT_TRUE(
      harness::wait_until([&] { return readyz(b).rfind("acquiring", 0) == 0; }, kSession + 10s))
      << readyz(b) << b.process->log_contents();
  std::this_thread::sleep_for(2s);
  const int64_t continued_at = wall_ms();
  a.process->signal(SIGCONT);
  ASSERT_TRUE(wait_held_by(slots[0], *b.process, 30s)) << b.process->log_contents();
  std::printf("frozen for %lld ms; b streams %lld ms after SIGCONT\n",
              static_cast<long long>(continued_at - stopped_at),
              static_cast<long long>(wall_ms() - continued_at));
  std::this_thread::sleep_for(1000ms);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));

  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s);
  expect_nothing_lost(delivered(got), slots, loader.inserted());
  const LateRecords late = late_records(got, *a.process, *b.process, continued_at);
  EXPECT_FALSE(late.first_of_new_owner.empty());
  EXPECT_EQ(late.after_move, 0) << "records of the frozen leader after the new owner's first";
  EXPECT_EQ(late.after_wake, 0) << "records the frozen leader produced after waking";
  EXPECT_NE(a.process->log_contents().find("fencing"), std::string::npos)
      << a.process->log_contents();
  // Awake again, it rejoins as a standby rather than exiting.
  EXPECT_TRUE(harness::wait_until([&] { return readyz(a) == "standby\n"; }, 30s)) << readyz(a);
  // What the alerts go by: the woken instance lost its lease once, and that
  // fencing is the lease's; the new owner lost nothing.
  const std::string s = "{slot=\"" + slots[0].slot + "\"}";
  const std::string page_a = http_get(a.http_port, "/metrics").value_or("");
  EXPECT_EQ(sample(page_a, "outbox_relay_lease_lost_total" + s), 1.0) << page_a;
  EXPECT_EQ(sample(page_a, "outbox_relay_fenced_total" + s), 1.0) << page_a;
  const std::string page_b = http_get(b.http_port, "/metrics").value_or("");
  EXPECT_EQ(sample(page_b, "outbox_relay_lease_lost_total" + s), 0.0) << page_b;
  EXPECT_EQ(sample(page_b, "outbox_relay_fenced_total" + s), 0.0) << page_b;
  for (auto* in : {&a, &b}) expect_clean_stop(*in->process);
}

// The chart's Grafana dashboard and alerting rules use only what a relay
// really exports: the page of an instance in group mode with every family on
// (exactly once: the checkpoint; a server with max_slot_wal_keep_size:
// safe_wal_size; a published row: the per-topic counters) is handed to
// tests/deploy/monitoring/check-metrics.py, which reads the chart's files.
TEST_F(GroupScenario, TheChartsDashboardAndAlertsUseOnlyMetricsARelayExports) {
  harness::PostgresServer::Options options;
  options.extra_conf = {"max_slot_wal_keep_size = 64MB"};
  auto server = harness::PostgresServer::start(options);
  GroupSlot slot{make_outbox_db(*server), unique("slot"), 0};
  const std::string topic = unique("events");
  kafka().create_topic(topic, 1);
  Instance in = start_instance(unique("grp"), {slot});
  ASSERT_TRUE(wait_leads(in, slot.slot, 60s)) << readyz(in) << in.process->log_contents();
  server->exec(insert_rows_sql(topic, 0, 10), slot.db.name);

  const std::string s = "{slot=\"" + slot.slot + "\"}";
  const std::string published =
      "outbox_relay_records_published_total{slot=\"" + slot.slot + "\",topic=\"" + topic + "\"}";
  std::string page;
  // The slot monitor reads the slot every 10 s.
  ASSERT_TRUE(harness::wait_until(
      [&] {
        page = http_get(in.http_port, "/metrics").value_or("");
        return sample(page, published) == 10.0 &&
               sample(page, "outbox_relay_slot_safe_wal_bytes" + s).has_value() &&
               sample(page, "outbox_relay_checkpoint_lsn" + s).has_value() &&
               sample(page, "outbox_relay_slot_failover" + s).has_value();
      },
      45s))
      << page;
  harness::TempDir dir;
  const std::string scrape = dir.path() + "/metrics.txt";
  std::ofstream(scrape) << page;
  const std::string source = OUTBOX_SOURCE_DIR;
  auto check = harness::run_command({"python3", source + "/tests/deploy/monitoring/check-metrics.py",
                                     source + "/deploy/helm/outbox-relay", scrape});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err << "\n" << page;
  std::printf("%s", check.out.c_str());
  expect_clean_stop(*in.process);
}

// takeover_after: the new owner terminates a frozen relay's walsender after
// the grace period instead of waiting for wal_sender_timeout. PostgreSQL no
// longer stands between the two, so only the lease keeps the woken relay
// from producing.
TEST_F(GroupScenario, TakeoverEndsAFrozenRelaysWalsenderAndTheWokenRelayStaysFenced) {
  auto [slots, group, topic] = new_group_scene(1);
  const std::string takeover = "  takeover_after: 8s\n";
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(start_leader_and_standby(group, slots, a, b, takeover));

  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1500ms);
  a.process->signal(SIGSTOP);
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_held_by(slots[0], *b.process, kSession + 8s + 15s)) << b.process->log_contents();
  std::printf("b took over the frozen relay's slot after %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - stopped)
                                         .count()));
  EXPECT_NE(b.process->log_contents().find("taking over the slot"), std::string::npos);
  std::this_thread::sleep_for(2s);
  const int64_t continued_at = wall_ms();
  a.process->signal(SIGCONT);
  std::this_thread::sleep_for(3s);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));

  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s);
  expect_nothing_lost(delivered(got), slots, loader.inserted());
  const LateRecords late = late_records(got, *a.process, *b.process, continued_at);
  EXPECT_EQ(late.after_move, 0) << "records of the frozen relay after the new owner's first";
  EXPECT_EQ(late.after_wake, 0) << "records the frozen relay produced after waking";
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 1s)) << "the woken relay took the slot back";
  if (std::getenv("GROUP_TEST_LOGS")) {
    std::printf("--- a\n%s--- b\n%s", a.process->log_contents().c_str(),
                b.process->log_contents().c_str());
  }
  for (auto* in : {&a, &b}) expect_clean_stop(*in->process);
}

// (1) Three instances, four slots, joining one by one during a load: no
// slot is ever claimed by two instances, all four end up streamed, and every
// row arrives.
TEST_F(GroupScenario, ThreeInstancesFourSlotsEachSlotStreamedByExactlyOne) {
  auto [slots, group, topic] = new_group_scene(4);
  std::vector<Instance> instances(3);
  instances[0] = start_instance(group, slots);
  ASSERT_TRUE(harness::wait_until(
      [&] { return leading(instances[0]).size() == 4 || !instances[0].process->running(); }, 60s))
      << instances[0].process->log_contents();
  ASSERT_EQ(leading(instances[0]).size(), 4u) << instances[0].process->log_contents();
  OwnershipSampler sampler({&instances[0]}, holders_of(slots));
  Loader loader(*this, slots, topic);
  for (int i = 1; i < 3; ++i) {
    instances[i] = start_instance(group, slots);
    sampler.add(&instances[i]);
    ASSERT_TRUE(harness::wait_until([&] { return !leading(instances[i]).empty(); }, 60s))
        << instances[i].process->log_contents();
  }
  auto all_streamed = [&] {
    std::set<std::string> led;
    size_t claims = 0;
    for (const auto& in : instances) {
      auto l = leading(in);
      claims += l.size();
      led.insert(l.begin(), l.end());
    }
    return led.size() == 4 && claims == 4;
  };
  ASSERT_TRUE(harness::wait_until(all_streamed, 30s));
  std::this_thread::sleep_for(2s);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  sampler.stop();
  EXPECT_TRUE(sampler.violations().empty()) << sampler.violations().front();
  EXPECT_GT(sampler.rounds(), 20);
  std::printf("ownership sampled %d times, %zu conflicts\n", sampler.rounds(),
              sampler.violations().size());
  for (const auto& s : slots) EXPECT_TRUE(holder(s).has_value()) << s.slot << " not streamed";
  auto d = delivered(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s));
  expect_nothing_lost(d, slots, loader.inserted());
  for (auto& in : instances) expect_clean_stop(*in.process);
}

// (5) One instance, then three, then one again, all during a load: slots
// move on every join and leave, no slot is claimed twice, nothing is lost.
TEST_F(GroupScenario, ScaleOneToThreeToOneDuringLoadLosesNothingAndNeverStreamsTwice) {
  auto [slots, group, topic] = new_group_scene(4);
  std::vector<Instance> instances(3);
  instances[0] = start_instance(group, slots);
  ASSERT_TRUE(harness::wait_until([&] { return leading(instances[0]).size() == 4; }, 60s));
  OwnershipSampler sampler({&instances[0]}, holders_of(slots));
  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1s);
  for (int i = 1; i < 3; ++i) {
    instances[i] = start_instance(group, slots);
    sampler.add(&instances[i]);
  }
  ASSERT_TRUE(harness::wait_until(
      [&] { return !leading(instances[1]).empty() && !leading(instances[2]).empty(); }, 60s));
  std::this_thread::sleep_for(1s);
  for (int i = 1; i < 3; ++i) instances[i].process->signal(SIGTERM);
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(instances[i].process->wait_exit(30s), std::optional<int>(0));
    sampler.remove(&instances[i]);
  }
  ASSERT_TRUE(harness::wait_until([&] { return leading(instances[0]).size() == 4; }, 30s))
      << readyz(instances[0]);
  std::this_thread::sleep_for(1s);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  sampler.stop();
  EXPECT_TRUE(sampler.violations().empty()) << sampler.violations().front();
  EXPECT_GT(sampler.rounds(), 20);
  std::printf("ownership sampled %d times, %zu conflicts\n", sampler.rounds(),
              sampler.violations().size());
  auto d = delivered(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s));
  expect_nothing_lost(d, slots, loader.inserted());
  expect_clean_stop(*instances[0].process);
}

// Coordinator unreachable: with the broker frozen past the session timeout
// the instance cannot prove its membership; its pipeline stops producing and
// releases the slot before the session timeout has passed, then streams
// again once the broker is back. Nothing is lost.
TEST_F(GroupScenario, CoordinatorUnreachableFencesBeforeTheSessionTimeoutAndResumes) {
  auto [slots, group, topic] = new_group_scene(1);
  auto a = start_instance(group, slots);
  ASSERT_TRUE(wait_leads(a, slots[0].slot, 60s)) << a.process->log_contents();
  ASSERT_TRUE(wait_held_by(slots[0], *a.process, 10s));

  Loader loader(*this, slots, topic);
  std::this_thread::sleep_for(1s);
  const auto frozen = std::chrono::steady_clock::now();
  kafka().freeze();
  const bool fenced = harness::wait_until(
      [&] { return a.process->log_contents().find("fencing") != std::string::npos; }, kSession);
  const bool released =
      harness::wait_until([&] { return !holder(slots[0]).has_value(); }, kSession, 20ms);
  const auto released_after = std::chrono::steady_clock::now() - frozen;
  std::this_thread::sleep_until(frozen + kSession + 2s);
  kafka().thaw();
  ASSERT_TRUE(fenced) << a.process->log_contents();
  ASSERT_TRUE(released) << "slot still held " << kSession.count() << " s after the freeze";
  std::printf("slot released %lld ms after the coordinator became unreachable\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(released_after).count()));
  EXPECT_LT(released_after, kSession);
  ASSERT_TRUE(wait_leads(a, slots[0].slot, 60s)) << readyz(a) << a.process->log_contents();
  std::this_thread::sleep_for(1s);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  auto d = delivered(kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s));
  expect_nothing_lost(d, slots, loader.inserted());
  expect_clean_stop(*a.process);
}

// An instance that cannot reach the server of a slot assigned to it gives
// the slot up after group.yield_after, by leaving the group for a while, and
// an instance that can reach it streams it; the one that yielded joins again
// without taking the slot back. Nothing is lost.
TEST_F(GroupScenario, AnInstanceThatCannotStreamItsSlotYieldsItToOneThatCan) {
  auto [slots, group, topic] = new_group_scene(1);
  auto unreachable = slots;
  const std::regex port("port=[0-9]+");
  unreachable[0].db.dsn = std::regex_replace(slots[0].db.dsn, port,
                                             "port=" + std::to_string(harness::free_port()));
  ASSERT_NE(unreachable[0].db.dsn, slots[0].db.dsn);
  // Rows written while the slot sits with the instance that cannot stream
  // it are decodable only from a slot that exists already.
  pg().exec("SELECT pg_create_logical_replication_slot('" + slots[0].slot + "', 'pgoutput')",
            slots[0].db.name);
  const std::string yield = "  yield_after: 6s\n";
  auto a = start_instance(group, unreachable, yield);
  ASSERT_TRUE(harness::wait_until([&] { return readyz(a).rfind("acquiring", 0) == 0; }, 60s))
      << readyz(a) << a.process->log_contents();
  auto b = start_instance(group, slots, yield);
  ASSERT_TRUE(harness::wait_until([&] { return readyz(b) == "standby\n"; }, 60s))
      << readyz(b) << b.process->log_contents();
  pg().exec(insert_rows_sql(topic, 0, 500), slots[0].db.name);

  const auto b_standby = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait_leads(b, slots[0].slot, 6s + kSession + 10s))
      << readyz(b) << b.process->log_contents() << a.process->log_contents();
  const auto took = std::chrono::steady_clock::now() - b_standby;
  std::printf("slot moved to the instance that can reach PostgreSQL %lld ms after it joined "
              "(yield_after 6 s, session timeout 6 s)\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 10s));
  const std::string a_log = a.process->log_contents();
  EXPECT_NE(a_log.find("slot=" + slots[0].slot + " has not streamed for"), std::string::npos)
      << a_log;
  EXPECT_NE(a_log.find("(group.yield_after): leaving the group for 6000 ms"), std::string::npos)
      << a_log;
  EXPECT_EQ(sample(http_get(a.http_port, "/metrics").value_or(""),
                   "outbox_relay_group_yields_total"),
            std::optional<double>(1.0));

  ASSERT_TRUE(harness::wait_until(
      [&] {
        return a.process->log_contents().find("joining again after yielding") !=
                   std::string::npos &&
               readyz(a) == "standby\n";
      },
      60s))
      << readyz(a) << a.process->log_contents();
  pg().exec(insert_rows_sql(topic, 500, 500), slots[0].db.name);
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  EXPECT_EQ(leading(b), std::set<std::string>{slots[0].slot});
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 1s));
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 60s);
  auto d = delivered(got);
  expect_nothing_lost(d, slots, {1000});
  EXPECT_EQ(got.size(), 1000u);
  for (const auto& r : got) EXPECT_TRUE(produced_by(r, *b.process)) << instance_header(r);
  expect_clean_stop(*b.process);
  expect_clean_stop(*a.process);
}

// At least once in group mode, the member commits each slot's confirmed
// position as its checkpoint in the coordination group (under its
// generation, so a deposed member's is refused): a slot an admin drops while
// the fleet is stopped is refused as lost, naming the position it was left
// at, and never created again; the other slot streams on.
TEST_F(GroupScenario, AtLeastOnceTheMemberCheckpointsEachSlotAndADroppedSlotIsRefused) {
  auto [slots, group, topic] = new_group_scene(2);
  const auto at_least_once = [&](Instance& in) {
    in.http_port = harness::free_port();
    std::string body = group_config(group, slots, in.http_port);
    body.replace(body.find("  drain_timeout: 5s\n"), 19,
                 "  drain_timeout: 5s\n  delivery: at_least_once\n");
    in.config_path = write_config(body);
    in.process = start_relay(in.config_path);
  };
  const auto checkpoint_read = [](const std::string& log, const std::string& slot) {
    const std::string line =
        "slot=" + slot + " read the slot's Kafka checkpoint (at least once); checkpoint ";
    const size_t at = log.find(line);
    if (at == std::string::npos) return std::string("(not read)");
    const size_t from = at + line.size();
    return log.substr(from, log.find('\n', from) - from);
  };
  Instance a;
  at_least_once(a);
  for (const auto& slot : slots) {
    ASSERT_TRUE(wait_leads(a, slot.slot, 60s)) << a.process->log_contents();
    EXPECT_EQ(checkpoint_read(a.process->log_contents(), slot.slot), "none yet (first start)");
  }
  for (const auto& slot : slots) {
    pg().exec(insert_rows_sql(topic, slot.first_row, 200), slot.db.name);
  }
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  expect_clean_stop(*a.process);
  std::vector<std::string> left_at;
  for (const auto& slot : slots) left_at.push_back(*confirmed_flush(slot.db, slot.slot));

  pg().exec("SELECT pg_drop_replication_slot('" + slots[1].slot + "')", slots[1].db.name);
  Instance again;
  at_least_once(again);
  ASSERT_EQ(again.process->wait_exit(60s), std::optional<int>(1)) << again.process->log_contents();
  const std::string log = again.process->log_contents();
  EXPECT_EQ(checkpoint_read(log, slots[0].slot), "lsn=" + left_at[0]) << log;
  EXPECT_EQ(checkpoint_read(log, slots[1].slot), "lsn=" + left_at[1]) << log;
  EXPECT_NE(log.find("slot=" + slots[1].slot + " does not exist, but Kafka holds its checkpoint "
                     "at lsn=" + left_at[1] + " (group " + group + ")"),
            std::string::npos)
      << log;
  EXPECT_EQ(slot_active(slots[1].db, slots[1].slot), std::nullopt)
      << "the lost slot was created again";
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 2s, 60s);
  expect_nothing_lost(delivered(got), slots, {200, 200});
}

// Fewer coordination partitions than slots cannot give every slot an owner:
// the relay refuses to start, with exit status 2.
TEST_F(GroupScenario, CoordinationTopicWithTooFewPartitionsIsAStartupError) {
  auto slots = make_slots(2);
  const std::string group = unique("grp");
  kafka().create_topic(group + ".slots", 1);
  auto a = start_instance(group, slots);
  EXPECT_EQ(a.process->wait_exit(60s), std::optional<int>(2));
  EXPECT_NE(a.process->log_contents().find("has 1 partitions but 2 slots"), std::string::npos)
      << a.process->log_contents();
}

}  // namespace
}  // namespace itest
