// Network faults on a private network of namespaces (harness::NetnsLab):
// PostgreSQL and Kafka run in one namespace, each relay instance in its own.
// A path is cut by dropping its packets inside the relay's namespace, as a
// partition looks from both ends: no reset, no ICMP, the other server still
// reachable.
//
// - The leader of a slot cut from Kafka for 40 s under load, exactly once:
//   the slot moves, nothing is lost or read twice by read_committed, and no
//   key has a record of the old leader after one of the new leader.
// - A leader frozen (SIGSTOP) under load and woken after the takeover: none
//   of its writes become visible.
// - A single relay cut from PostgreSQL: it notices within
//   postgres.receive_timeout and streams again after the heal, losing nothing.
// - A group leader cut from PostgreSQL (Kafka still reachable, so its lease
//   holds): after group.yield_after it gives the slot up, and the standby,
//   which reaches PostgreSQL, streams it.
#include <chrono>

#include "group_fixture.h"

namespace itest {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kSession = 6s;
constexpr auto kTakeoverAfter = 8s;
constexpr auto kKafkaCut = 40s;
constexpr auto kPostgresCut = 15s;
constexpr auto kReceiveTimeout = 5s;
constexpr auto kYieldAfter = 10s;
constexpr int kKeys = 20;
constexpr int kHttpPort = 8080;  // a namespace of its own per relay: no port to share

long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

int port_of(const std::string& address) {
  return std::stoi(address.substr(address.rfind(':') + 1));
}

// What a reader saw of one slot's rows, row by row. A key's rows are
// numbered in insertion order (test_rows.h), so its row numbers are its
// per-key sequence.
struct Tally {
  size_t records = 0;
  int lost = 0;
  int duplicates = 0;
  // A record of a key whose row number is not above every earlier one of
  // that key (with `first_only`, among first occurrences of rows only).
  int out_of_order = 0;
  // A record of the old owner after a record of the new owner, same key.
  int old_after_new = 0;
  std::vector<std::string> examples;

  void example(const std::string& what) {
    if (examples.size() < 5) examples.push_back(what);
  }
  std::string describe() const {
    std::string out;
    for (const auto& e : examples) out += "\n  " + e;
    return out;
  }
};

class NetnsScenario : public GroupTest {
 public:
  static void SetUpTestSuite() {
    try {
      lab_ = harness::NetnsLab::create(2);
    } catch (const harness::NetnsUnavailable& e) {
      unavailable_ = e.what();
      return;
    } catch (const std::exception& e) {
      setup_error_ = e.what();
      return;
    }
    scope_ = std::make_unique<harness::NetnsLab::ServersScope>(*lab_);
    const std::string servers = harness::NetnsLab::kServersAddress;
    const std::string subnet = harness::NetnsLab::kSubnet;
    harness::PostgresServer::Options pg;
    pg.host = servers;
    pg.extra_conf = {"listen_addresses = '127.0.0.1," + servers + "'"};
    pg.extra_hba = {"host all all " + subnet + " trust",
                    "host replication all " + subnet + " trust"};
    harness::KafkaBroker::Options kafka;
    kafka.listen_address = servers;
    harness::Servers::configure(pg, kafka);
  }

  static void TearDownTestSuite() {
    harness::Servers::shutdown();
    harness::Servers::configure({}, {});
    scope_.reset();
    lab_.reset();
  }

 protected:
  void SetUp() override {
    if (!unavailable_.empty()) GTEST_SKIP() << "network namespaces unavailable: " << unavailable_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  void TearDown() override {
    if (lab_) lab_->heal_all();
  }

  int kafka_port() { return port_of(kafka().bootstrap()); }

  std::string kafka_section(const std::string& extra = "") {
    return "kafka:\n"
           "  brokers: \"" +
           kafka().bootstrap() +
           "\"\n"
           "  create_topics: true\n"
           "  drain_timeout: 5s\n"
           "  delivery: exactly_once\n" +
           extra;
  }

  std::string tail_sections(int relay) {
    return "http:\n"
           "  listen: \"" +
           harness::NetnsLab::relay_address(relay) + ":" + std::to_string(kHttpPort) +
           "\"\n"
           "log:\n"
           "  level: info\n";
  }

  std::string group_body(const std::string& group, const std::vector<GroupSlot>& slots, int relay,
                         const std::string& group_extra = "", const std::string& slot_extra = "") {
    return group_and_slots(group, slots, group_extra, slot_extra) + kafka_section() +
           tail_sections(relay);
  }

  // The relay in relay namespace `relay`.
  Instance start_in(int relay, const std::string& body) {
    Instance in;
    in.http_host = harness::NetnsLab::relay_address(relay);
    in.http_port = kHttpPort;
    in.config_path = write_config(body);
    dirs_.push_back(std::make_unique<harness::TempDir>());
    std::vector<std::string> argv = lab_->in_relay(relay);
    argv.insert(argv.end(), {relay_binary(), "run", "--config", in.config_path});
    in.process = std::make_unique<harness::Process>(
        std::move(argv), std::map<std::string, std::string>{}, dirs_.back()->path() + "/relay.log");
    return in;
  }

  // a leads the slot and has delivered under load; b stands by.
  void start_leader_and_standby(const std::string& group, const std::vector<GroupSlot>& slots,
                                Instance& a, Instance& b, const std::string& group_extra = "",
                                const std::string& slot_extra = "") {
    a = start_in(0, group_body(group, slots, 0, group_extra, slot_extra));
    ASSERT_TRUE(wait_held_by(slots[0], *a.process, 60s)) << a.process->log_contents();
    b = start_in(1, group_body(group, slots, 1, group_extra, slot_extra));
    ASSERT_TRUE(harness::wait_until([&] { return readyz(b) == "standby\n"; }, 60s))
        << readyz(b) << b.process->log_contents() << a.process->log_contents();
  }

  // Every row inserted so far is committed in Kafka and the slot confirmed
  // past it.
  bool wait_delivered(const GroupSlot& s, std::chrono::milliseconds deadline) {
    const std::string end = current_wal_lsn(s.db);
    return harness::wait_until([&] { return slot_confirmed_at_least(s.db, s.slot, end); }, deadline,
                               100ms);
  }

  harness::ClientSettings read_uncommitted() {
    return harness::ClientSettings{kafka().bootstrap(), {{"isolation.level", "read_uncommitted"}}};
  }

  static Tally tally(const std::vector<harness::ConsumedRecord>& got, const GroupSlot& slot,
                     int inserted, bool first_only, const harness::Process* old_owner = nullptr,
                     const harness::Process* new_owner = nullptr) {
    Tally t;
    std::map<int, int> reads;
    std::map<std::string, int> last_row;   // key → highest row number read
    std::set<std::string> new_owner_seen;  // keys
    // Records are in offset order within a partition, and a key has one.
    for (const auto& r : got) {
      auto id = header(r, "outbox-id");
      if (!id || !*id || !r.key) continue;
      const int row = row_number(**id);
      ++t.records;
      const bool first = ++reads[row] == 1;
      if (!first) ++t.duplicates;
      if (!first_only || first) {
        auto last = last_row.find(*r.key);
        if (last != last_row.end() && row <= last->second) {
          ++t.out_of_order;
          t.example(*r.key + ": row " + std::to_string(row) + " read after row " +
                    std::to_string(last->second) + " (partition " + std::to_string(r.partition) +
                    " offset " + std::to_string(r.offset) + ")");
        }
        if (last == last_row.end() || row > last->second) last_row[*r.key] = row;
      }
      if (new_owner && produced_by(r, *new_owner)) new_owner_seen.insert(*r.key);
      if (old_owner && produced_by(r, *old_owner) && new_owner_seen.count(*r.key)) {
        ++t.old_after_new;
        t.example(*r.key + ": row " + std::to_string(row) + " of the old owner at offset " +
                  std::to_string(r.offset) + " after the new owner's records");
      }
    }
    for (int i = 0; i < inserted; ++i) {
      if (!reads.count(slot.first_row + i)) {
        if (++t.lost <= 5) t.example("row " + std::to_string(slot.first_row + i) + " lost");
      }
    }
    return t;
  }

  static void print(const char* scenario, const char* reader, const Tally& t, int inserted) {
    std::printf(
        "%s, %s: rows %d, records %zu, lost %d, duplicates %d, out of order %d, "
        "old owner after new %d\n",
        scenario, reader, inserted, t.records, t.lost, t.duplicates, t.out_of_order,
        t.old_after_new);
  }

  // Both readers, after the load: read_committed gets every row once, per
  // key in order, nothing of the old owner after the new; read_uncommitted
  // gets every row, first occurrences per key in order. Returns what
  // read_committed read.
  std::vector<harness::ConsumedRecord> expect_exactly_once(const char* scenario,
                                                           const GroupScene& scene, int inserted,
                                                           const harness::Process& old_owner,
                                                           const harness::Process& new_owner) {
    const GroupSlot& slot = scene.slots[0];
    auto committed = kafka().consume_all_until_quiet(read_committed(), scene.topic, 3s, 120s);
    const Tally rc = tally(committed, slot, inserted, false, &old_owner, &new_owner);
    print(scenario, "read_committed", rc, inserted);
    EXPECT_EQ(rc.lost, 0) << rc.describe();
    EXPECT_EQ(rc.duplicates, 0) << rc.describe();
    EXPECT_EQ(rc.out_of_order, 0) << rc.describe();
    EXPECT_EQ(rc.old_after_new, 0) << rc.describe();
    EXPECT_GT(std::count_if(committed.begin(), committed.end(),
                            [&](const auto& r) { return produced_by(r, old_owner); }),
              0)
        << "the old owner delivered nothing before the fault";
    EXPECT_GT(std::count_if(committed.begin(), committed.end(),
                            [&](const auto& r) { return produced_by(r, new_owner); }),
              0)
        << "the new owner delivered nothing";

    auto everything = kafka().consume_all_until_quiet(read_uncommitted(), scene.topic, 3s, 120s);
    const Tally ru = tally(everything, slot, inserted, true);
    print(scenario, "read_uncommitted", ru, inserted);
    EXPECT_EQ(ru.lost, 0) << ru.describe();
    EXPECT_EQ(ru.out_of_order, 0) << ru.describe();
    return committed;
  }

  static inline std::unique_ptr<harness::NetnsLab> lab_;
  static inline std::unique_ptr<harness::NetnsLab::ServersScope> scope_;
  static inline std::string unavailable_;
  static inline std::string setup_error_;
};

// The slot's leader loses Kafka for 40 s under load but still reaches
// PostgreSQL. It fences itself and releases the slot; the standby fences
// the leader's transactional.id and resumes from the checkpoint. When the
// path heals, whatever the old leader still had on the wire is refused.
TEST_F(NetnsScenario, LeaderCutFromKafkaForFortySecondsUnderLoadLosesNothingAndNoKeyGoesBack) {
  GroupScene scene = new_group_scene(1);
  const auto& slots = scene.slots;
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(start_leader_and_standby(scene.group, slots, a, b));

  Loader loader(*this, slots, scene.topic, 10, 5ms, kKeys);
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= 2000; }, 60s));
  ASSERT_TRUE(wait_delivered(slots[0], 30s)) << a.process->log_contents();

  lab_->cut(0, kafka_port());
  const auto cut_at = Clock::now();
  long long fenced_ms = -1, moved_ms = -1;
  const size_t fences_before = occurrences(a.process->log_contents(), "fencing");
  ASSERT_TRUE(harness::wait_until(
      [&] {
        if (fenced_ms < 0 && occurrences(a.process->log_contents(), "fencing") > fences_before) {
          fenced_ms = ms_since(cut_at);
        }
        if (moved_ms < 0 && holder(slots[0]) == application_name(*b.process)) {
          moved_ms = ms_since(cut_at);
        }
        return fenced_ms >= 0 && moved_ms >= 0;
      },
      kKafkaCut - 5s, 50ms))
      << "fenced after " << fenced_ms << " ms, slot moved after " << moved_ms << " ms\n--- a\n"
      << a.process->log_contents() << "--- b\n"
      << b.process->log_contents();
  // The old leader gives the slot up before its session times out; the new
  // one streams soon after the coordinator hands it over.
  EXPECT_LT(fenced_ms, std::chrono::milliseconds(kSession).count()) << a.process->log_contents();
  EXPECT_LT(moved_ms, std::chrono::milliseconds(kSession + 10s).count())
      << b.process->log_contents();
  // The new leader delivers while the old one is still cut off.
  ASSERT_TRUE(wait_delivered(slots[0], 30s)) << b.process->log_contents();
  const long long delivering_ms = ms_since(cut_at);
  ASSERT_LT(delivering_ms, std::chrono::milliseconds(kKafkaCut).count())
      << "the new leader needed the whole cut";
  std::this_thread::sleep_until(cut_at + kKafkaCut);  // the partition lasts this long
  lab_->heal(0, kafka_port());
  const auto healed_at = Clock::now();

  // Healed, the old leader rejoins as a standby; the load goes on meanwhile.
  EXPECT_TRUE(harness::wait_until([&] { return readyz(a) == "standby\n"; }, 60s))
      << readyz(a) << a.process->log_contents();
  const long long rejoined_ms = ms_since(healed_at);
  const int at_rejoin = loader.inserted()[0];
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= at_rejoin + 1000; }, 30s));
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s)) << b.process->log_contents();
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 1s)) << "the slot left the new leader";

  std::printf(
      "kafka cut %lld s under load: a fenced itself after %lld ms, b held the slot after "
      "%lld ms and had delivered everything inserted by then after %lld ms; a rejoined "
      "as standby %lld ms after the heal\n",
      static_cast<long long>(std::chrono::seconds(kKafkaCut).count()), fenced_ms, moved_ms,
      delivering_ms, rejoined_ms);
  expect_exactly_once("kafka cut", scene, loader.inserted()[0], *a.process, *b.process);
  for (auto* in : {&a, &b}) expect_clean_stop(*in->process);
}

// A leader frozen under load with a transaction open; the standby
// terminates its walsender (takeover_after) and fences its transactional.id.
// Woken, the old leader's queued produce requests and commit carry a fenced
// epoch: none of its writes becomes visible.
TEST_F(NetnsScenario, FrozenLeaderWokenAfterTheTakeoverHasNoWriteVisible) {
  GroupScene scene = new_group_scene(1);
  const auto& slots = scene.slots;
  const std::string takeover = "  takeover_after: 8s\n";
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(start_leader_and_standby(scene.group, slots, a, b, takeover));

  Loader loader(*this, slots, scene.topic, 10, 5ms, kKeys);
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= 2000; }, 60s));
  ASSERT_TRUE(wait_delivered(slots[0], 30s)) << a.process->log_contents();

  a.process->signal(SIGSTOP);
  const auto stopped_at = Clock::now();
  ASSERT_TRUE(wait_held_by(slots[0], *b.process, kSession + kTakeoverAfter + 20s))
      << b.process->log_contents();
  const long long moved_ms = ms_since(stopped_at);
  ASSERT_TRUE(wait_delivered(slots[0], 30s)) << b.process->log_contents();
  const long long delivering_ms = ms_since(stopped_at);

  const int64_t woke_at = wall_ms();
  a.process->signal(SIGCONT);
  const auto woke = Clock::now();
  EXPECT_TRUE(harness::wait_until([&] { return readyz(a) == "standby\n"; }, 60s))
      << readyz(a) << a.process->log_contents();
  const long long standby_ms = ms_since(woke);
  const int at_standby = loader.inserted()[0];
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= at_standby + 1000; }, 30s));
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s)) << b.process->log_contents();
  EXPECT_TRUE(wait_held_by(slots[0], *b.process, 1s)) << "the woken leader took the slot back";

  std::printf(
      "frozen leader: b held the slot %lld ms after SIGSTOP and had delivered "
      "everything inserted by then after %lld ms; a was a standby %lld ms after "
      "SIGCONT\n",
      moved_ms, delivering_ms, standby_ms);
  const auto committed =
      expect_exactly_once("frozen leader", scene, loader.inserted()[0], *a.process, *b.process);
  const LateRecords late = late_records(committed, *a.process, *b.process, woke_at);
  EXPECT_EQ(late.after_move, 0) << "records of the frozen leader after the new owner's first";
  EXPECT_EQ(late.after_wake, 0) << "records the frozen leader stamped after waking";
  for (auto* in : {&a, &b}) expect_clean_stop(*in->process);
}

// One relay, one slot, its path to PostgreSQL dead without a reset while
// Kafka stays reachable: the relay drops the connection after
// postgres.receive_timeout of silence and, once the path heals, reconnects
// and delivers every row.
TEST_F(NetnsScenario, PathToPostgresCutWithoutResetIsNoticedWithinReceiveTimeoutAndHealed) {
  GroupScene scene{make_slots(1), "", unique("events")};
  kafka().create_topic(scene.topic, 3);
  const GroupSlot& slot = scene.slots[0];
  const std::string body =
      "postgres:\n"
      "  dsn: \"" +
      slot.db.dsn +
      "\"\n"
      "  slot: " +
      slot.slot +
      "\n"
      "  status_interval: 200ms\n"
      "  receive_timeout: 5s\n"
      "  reconnect_backoff: {min: 100ms, max: 1s}\n" +
      kafka_section() + tail_sections(0);
  Instance relay = start_in(0, body);
  ASSERT_TRUE(wait_streaming(*relay.process, 60s)) << relay.process->log_contents();

  Loader loader(*this, scene.slots, scene.topic, 10, 5ms, kKeys);
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= 1000; }, 60s));
  ASSERT_TRUE(wait_delivered(slot, 30s)) << relay.process->log_contents();

  const std::string timeout_line = "postgres.receive_timeout";
  const size_t timeouts_before = occurrences(relay.process->log_contents(), timeout_line);
  lab_->cut(0, pg().port());
  const auto cut_at = Clock::now();
  const auto confirmed_at_cut = confirmed_flush(slot.db, slot.slot);
  ASSERT_TRUE(harness::wait_until(
      [&] { return occurrences(relay.process->log_contents(), timeout_line) > timeouts_before; },
      kReceiveTimeout + 10s))
      << relay.process->log_contents();
  const long long noticed_ms = ms_since(cut_at);
  EXPECT_LE(noticed_ms, std::chrono::milliseconds(kReceiveTimeout + 1s).count());

  std::this_thread::sleep_until(cut_at + kPostgresCut);  // the cut lasts this long
  const size_t streams_before = occurrences(relay.process->log_contents(), "streaming from");
  lab_->heal(0, pg().port());
  const auto healed_at = Clock::now();
  ASSERT_TRUE(harness::wait_until(
      [&] { return occurrences(relay.process->log_contents(), "streaming from") > streams_before; },
      90s))
      << relay.process->log_contents();
  const long long recovered_ms = ms_since(healed_at);
  EXPECT_TRUE(relay.process->running());

  const int at_recovery = loader.inserted()[0];
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= at_recovery + 1000; }, 30s));
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(scene.slots, 60s)) << relay.process->log_contents();
  std::printf(
      "postgres cut %lld s: noticed after %lld ms (receive_timeout %lld ms); streaming "
      "again %lld ms after the heal; slot confirmed %s at the cut, %s at the end\n",
      static_cast<long long>(std::chrono::seconds(kPostgresCut).count()), noticed_ms,
      static_cast<long long>(std::chrono::milliseconds(kReceiveTimeout).count()), recovered_ms,
      confirmed_at_cut.value_or("?").c_str(),
      confirmed_flush(slot.db, slot.slot).value_or("?").c_str());

  const int inserted = loader.inserted()[0];
  auto committed = kafka().consume_all_until_quiet(read_committed(), scene.topic, 3s, 120s);
  const Tally rc = tally(committed, slot, inserted, false);
  print("postgres cut", "read_committed", rc, inserted);
  EXPECT_EQ(rc.lost, 0) << rc.describe();
  EXPECT_EQ(rc.duplicates, 0) << rc.describe();
  EXPECT_EQ(rc.out_of_order, 0) << rc.describe();
  expect_clean_stop(*relay.process);
}

TEST_F(NetnsScenario, LeaderCutFromPostgresYieldsItsSlotToAnInstanceThatReachesIt) {
  GroupScene scene = new_group_scene(1);
  const auto& slots = scene.slots;
  const std::string group_extra = "  takeover_after: 8s\n  yield_after: 10s\n";
  const std::string slot_extra = "      receive_timeout: 5s\n";
  Instance a, b;
  ASSERT_NO_FATAL_FAILURE(
      start_leader_and_standby(scene.group, slots, a, b, group_extra, slot_extra));

  Loader loader(*this, slots, scene.topic, 10, 5ms, kKeys);
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= 1000; }, 60s));
  ASSERT_TRUE(wait_delivered(slots[0], 30s)) << a.process->log_contents();

  lab_->cut(0, pg().port());
  const auto cut_at = Clock::now();
  // The leader notices within receive_timeout, cannot connect again, and
  // gives the slot up yield_after later.
  const bool yielded = harness::wait_until(
      [&] {
        return a.process->log_contents().find("(group.yield_after): leaving the group") !=
               std::string::npos;
      },
      kReceiveTimeout + kYieldAfter + 10s, 20ms);
  const long long yielded_ms = ms_since(cut_at);
  ASSERT_TRUE(yielded) << a.process->log_contents();
  EXPECT_LE(yielded_ms, std::chrono::milliseconds(kReceiveTimeout + kYieldAfter + 2s).count());
  // The standby is assigned the slot at the rebalance, and streams once the
  // server's walsender of the cut-off leader is gone (takeover_after).
  const bool moved =
      wait_held_by(slots[0], *b.process, kSession + kTakeoverAfter + 20s);
  const long long moved_ms = ms_since(cut_at);
  ASSERT_TRUE(moved) << b.process->log_contents() << a.process->log_contents();
  EXPECT_LE(moved_ms - yielded_ms,
            std::chrono::milliseconds(kSession + kTakeoverAfter + 2s).count());
  const int at_move = loader.inserted()[0];
  ASSERT_TRUE(harness::wait_until([&] { return loader.inserted()[0] >= at_move + 1000; }, 30s));
  loader.stop();
  ASSERT_TRUE(wait_delivered(slots[0], 60s)) << b.process->log_contents();
  lab_->heal(0, pg().port());
  std::printf(
      "leader cut from postgres: it yielded %lld ms after the cut, the standby streamed the "
      "slot %lld ms after the cut (receive_timeout 5 s, yield_after 10 s, session 6 s, "
      "takeover_after 8 s)\n",
      yielded_ms, moved_ms);

  const int inserted = loader.inserted()[0];
  auto committed = kafka().consume_all_until_quiet(read_committed(), scene.topic, 3s, 120s);
  const Tally rc = tally(committed, slots[0], inserted, false);
  print("leader cut from postgres", "read_committed", rc, inserted);
  EXPECT_EQ(rc.lost, 0) << rc.describe();
  EXPECT_EQ(rc.duplicates, 0) << rc.describe();
  EXPECT_EQ(rc.out_of_order, 0) << rc.describe();
  expect_clean_stop(*b.process);
}

}  // namespace
}  // namespace itest
