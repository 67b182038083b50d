// Failover time of one slot between two instances, measured in the data:
// from the signal to the owner until the first record the new owner
// produced (its instance header; the record's create time is stamped by the
// producer). Five runs each of kill -9 and SIGTERM under a steady load;
// prints median and max. Session timeout 6 s.
#include <algorithm>

#include "group_fixture.h"

namespace itest {
namespace {

constexpr auto kSession = 6s;

struct Failover {
  int signo = 0;
  int64_t signalled_at_ms = 0;
  const harness::Process* successor = nullptr;
};

class GroupFailoverTiming : public GroupTest {};

TEST_F(GroupFailoverTiming, KillNineAndSigtermMedianAndMaxOfFiveRunsEach) {
  auto [slots, group, topic] = new_group_scene(1);
  std::vector<std::unique_ptr<Instance>> instances;
  auto start = [&] {
    instances.push_back(std::make_unique<Instance>(start_instance(group, slots)));
    return instances.back().get();
  };
  Instance* owner = start();
  ASSERT_TRUE(harness::wait_until([&] { return !leading(*owner).empty(); }, 60s))
      << owner->process->log_contents();
  Instance* standby = start();
  ASSERT_TRUE(harness::wait_until([&] { return readyz(*standby) == "standby\n"; }, 60s));

  Loader loader(*this, slots, topic, 10, 10ms);
  std::vector<Failover> runs;
  for (int signo : {SIGKILL, SIGTERM}) {
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(1s);
      Failover run{signo, wall_ms(), standby->process.get()};
      owner->process->signal(signo);
      ASSERT_TRUE(harness::wait_until([&] { return !leading(*standby).empty(); }, kSession + 20s))
          << standby->process->log_contents();
      owner->process->wait_exit(30s);
      runs.push_back(run);
      owner = standby;
      standby = start();
      ASSERT_TRUE(harness::wait_until([&] { return readyz(*standby) == "standby\n"; }, 60s))
          << standby->process->log_contents();
    }
  }
  std::this_thread::sleep_for(1s);
  loader.stop();
  ASSERT_TRUE(wait_all_confirmed(slots, 60s));
  auto got = kafka().consume_all_until_quiet(read_committed(), topic, 3s, 120s);
  expect_nothing_lost(delivered(got), slots, loader.inserted());

  for (int signo : {SIGKILL, SIGTERM}) {
    std::vector<int64_t> took;
    for (const Failover& run : runs) {
      if (run.signo != signo) continue;
      int64_t first = INT64_MAX;
      for (const auto& r : got) {
        if (r.timestamp_ms >= run.signalled_at_ms && produced_by(r, *run.successor)) {
          first = std::min(first, r.timestamp_ms);
        }
      }
      ASSERT_NE(first, INT64_MAX) << "no record from the new owner";
      took.push_back(first - run.signalled_at_ms);
    }
    std::vector<int64_t> sorted = took;
    std::sort(sorted.begin(), sorted.end());
    std::string all;
    for (int64_t t : took) all += std::to_string(t) + " ";
    std::printf("failover after %s: median %lld ms, max %lld ms (runs: %sms)\n",
                signo == SIGKILL ? "kill -9" : "SIGTERM",
                static_cast<long long>(sorted[sorted.size() / 2]),
                static_cast<long long>(sorted.back()), all.c_str());
    const auto bound = signo == SIGKILL ? kSession + 5s : 5s;
    EXPECT_LE(sorted.back(), std::chrono::duration_cast<std::chrono::milliseconds>(bound).count());
  }
  for (auto& in : instances) {
    if (in->process->running()) in->process->signal(SIGTERM);
  }
}

}  // namespace
}  // namespace itest
