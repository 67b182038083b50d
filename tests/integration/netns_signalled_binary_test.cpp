// A netns test binary that does not end normally still leaves no network
// namespace and no child behind. Each case runs this binary again as a child
// test (NetnsSignalledChild) that makes a lab and starts a process inside a
// relay namespace and one outside, reports them, and waits to be signalled.
//
// - SIGTERM (a ctest timeout), SIGINT (Ctrl-C), SIGHUP (a closed terminal):
//   the child removes its namespaces and kills its processes, then dies of
//   that signal.
// - SIGKILL: nothing runs in the child; the next lab made removes its
//   namespaces and what runs in them.
// - A namespace named after a binary that still runs is not a leftover.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "harness/harness.h"

namespace {

using namespace std::chrono_literals;

constexpr const char* kReportEnv = "OUTBOX_NETNS_CHILD_REPORT";
constexpr const char* kNamespacedOnlyEnv = "OUTBOX_NETNS_CHILD_NAMESPACED_ONLY";
constexpr auto kChildReady = 60s;
constexpr auto kChildDies = 30s;
constexpr auto kProcessesGone = 10s;

// What the child made, as it reported it.
struct Report {
  std::string unavailable;
  std::vector<std::string> namespaces;
  pid_t namespaced = -1;
  pid_t outside = -1;
};

Report read_report(const std::string& path) {
  Report r;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kind, value;
    words >> kind;
    std::getline(words >> std::ws, value);
    if (kind == "unavailable") r.unavailable = value;
    if (kind == "netns") r.namespaces.push_back(value);
    if (kind == "namespaced") r.namespaced = std::stoi(value);
    if (kind == "outside") r.outside = std::stoi(value);
  }
  return r;
}

// Written beside its final name and renamed, so the parent never reads half.
void write_report(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text;
  std::filesystem::rename(path + ".tmp", path);
}

bool netns_exists(const std::string& name) {
  std::istringstream list(harness::run_command({"ip", "netns", "list"}).out);
  std::string line;
  while (std::getline(list, line)) {
    if (line.substr(0, line.find(' ')) == name) return true;
  }
  return false;
}

bool runs_in(const std::string& netns, pid_t pid) {
  std::istringstream pids(harness::run_command({"ip", "netns", "pids", netns}).out);
  pid_t p;
  while (pids >> p) {
    if (p == pid) return true;
  }
  return false;
}

// A zombie counts as gone: it runs nothing, and an init that does not reap
// may keep it listed.
bool process_gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) return true;
  const char state = text[paren + 2];
  return state == 'Z' || state == 'X';
}

std::string describe(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// This binary again, running only NetnsSignalledChild.
class ChildBinary {
 public:
  explicit ChildBinary(bool namespaced_only) {
    std::map<std::string, std::string> env{{kReportEnv, report_path()}};
    if (namespaced_only) env[kNamespacedOnlyEnv] = "1";
    process_ = std::make_unique<harness::Process>(
        std::vector<std::string>{std::filesystem::read_symlink("/proc/self/exe").string(),
                                 "--gtest_filter=NetnsSignalledChild.*",
                                 "--gtest_also_run_disabled_tests"},
        std::move(env), dir_.path() + "/child.log");
  }

  // The child's report once it is ready; nullopt if it ended first or did
  // not report in time.
  std::optional<Report> wait_ready() {
    harness::wait_until(
        [&] { return std::filesystem::exists(report_path()) || !process_->running(); },
        kChildReady);
    if (!std::filesystem::exists(report_path())) return std::nullopt;
    return read_report(report_path());
  }

  harness::Process& process() { return *process_; }
  std::string log() const { return process_->log_contents(); }

 private:
  std::string report_path() const { return dir_.path() + "/report"; }

  harness::TempDir dir_;
  std::unique_ptr<harness::Process> process_;
};

// Run only as the child of the cases below, which set kReportEnv.
TEST(NetnsSignalledChild, DISABLED_HoldsALabAndItsProcessesUntilSignalled) {
  const char* report = std::getenv(kReportEnv);
  ASSERT_NE(report, nullptr) << "run by NetnsSignalledBinary and NetnsKilledBinary only";
  std::unique_ptr<harness::NetnsLab> lab;
  try {
    lab = harness::NetnsLab::create(1);
  } catch (const harness::NetnsUnavailable& e) {
    write_report(report, std::string("unavailable ") + e.what() + "\n");
    return;
  }
  harness::TempDir dir;
  std::vector<std::string> argv = lab->in_relay(0);
  argv.insert(argv.end(), {"sleep", "600"});
  harness::Process namespaced(argv, {}, dir.path() + "/namespaced.log");
  std::unique_ptr<harness::Process> outside;
  if (std::getenv(kNamespacedOnlyEnv) == nullptr) {
    outside = std::make_unique<harness::Process>(std::vector<std::string>{"sleep", "600"},
                                                 std::map<std::string, std::string>{},
                                                 dir.path() + "/outside.log");
  }
  ASSERT_TRUE(
      harness::wait_until([&] { return runs_in(lab->relay_netns(0), namespaced.pid()); }, 10s))
      << "sleep did not start in " << lab->relay_netns(0);
  std::string text = "netns " + lab->servers_netns() + "\nnetns " + lab->relay_netns(0) +
                     "\nnamespaced " + std::to_string(namespaced.pid()) + "\n";
  if (outside) text += "outside " + std::to_string(outside->pid()) + "\n";
  write_report(report, text);
  std::this_thread::sleep_for(120s);
  FAIL() << "not signalled within 120 s";
}

class NetnsSignalledBinary : public ::testing::TestWithParam<int> {};

TEST_P(NetnsSignalledBinary, RemovesItsNamespacesAndKillsItsChildrenThenDiesOfTheSignal) {
  const int signo = GetParam();
  ChildBinary child(false);
  const auto report = child.wait_ready();
  ASSERT_TRUE(report) << child.log();
  if (!report->unavailable.empty()) {
    GTEST_SKIP() << "network namespaces unavailable: " << report->unavailable;
  }
  ASSERT_EQ(report->namespaces.size(), 2u) << child.log();
  for (const auto& ns : report->namespaces) ASSERT_TRUE(netns_exists(ns)) << ns;
  ASSERT_FALSE(process_gone(report->namespaced));
  ASSERT_FALSE(process_gone(report->outside));

  child.process().signal(signo);
  EXPECT_EQ(child.process().wait_exit(kChildDies), std::optional<int>(128 + signo))
      << child.log();

  // The cleanup ran before the child died, so its namespaces are gone now.
  for (const auto& ns : report->namespaces) {
    EXPECT_FALSE(netns_exists(ns)) << ns << " outlived the child\n" << child.log();
  }
  EXPECT_TRUE(harness::wait_until(
      [&] { return process_gone(report->namespaced) && process_gone(report->outside); },
      kProcessesGone))
      << "namespaced pid " << report->namespaced << ", outside pid " << report->outside
      << " outlived the child\n"
      << child.log();
}

INSTANTIATE_TEST_SUITE_P(TermIntHup, NetnsSignalledBinary,
                         ::testing::Values(SIGTERM, SIGINT, SIGHUP),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(sigabbrev_np(info.param));
                         });

// A process outside any namespace is not collected after SIGKILL (nothing of
// the killed binary runs to do it), so the child starts none.
TEST(NetnsKilledBinary, ItsNamespacesAndWhatRunsInThemGoWhenTheNextLabIsMade) {
  ChildBinary child(true);
  const auto report = child.wait_ready();
  ASSERT_TRUE(report) << child.log();
  if (!report->unavailable.empty()) {
    GTEST_SKIP() << "network namespaces unavailable: " << report->unavailable;
  }
  ASSERT_EQ(report->namespaces.size(), 2u) << child.log();

  child.process().signal(SIGKILL);
  ASSERT_EQ(child.process().wait_exit(kChildDies), std::optional<int>(128 + SIGKILL));
  for (const auto& ns : report->namespaces) ASSERT_TRUE(netns_exists(ns)) << ns;
  ASSERT_FALSE(process_gone(report->namespaced));

  auto lab = harness::NetnsLab::create(0);
  for (const auto& ns : report->namespaces) {
    EXPECT_FALSE(netns_exists(ns)) << ns << " was left by a dead binary and kept";
  }
  EXPECT_TRUE(harness::wait_until([&] { return process_gone(report->namespaced); },
                                  kProcessesGone))
      << "pid " << report->namespaced << " still runs in " << describe(report->namespaces);
}

// Another test binary's lab, as when two run side by side: its owner runs.
TEST(NetnsLeftovers, ANamespaceOfARunningBinaryIsKeptWhenALabIsMade) {
  try {
    harness::NetnsLab::create(0);
  } catch (const harness::NetnsUnavailable& e) {
    GTEST_SKIP() << "network namespaces unavailable: " << e.what();
  }
  harness::TempDir dir;
  harness::Process owner({"sleep", "600"}, {}, dir.path() + "/owner.log");
  const std::string name =
      std::string(harness::NetnsLab::kNamePrefix) + std::to_string(owner.pid()) + "-srv";
  ASSERT_EQ(harness::run_command({"ip", "netns", "add", name}).exit_code, 0);
  struct Remove {
    std::string name;
    ~Remove() { harness::run_command({"ip", "netns", "del", name}); }
  } remove{name};

  auto lab = harness::NetnsLab::create(0);
  EXPECT_TRUE(netns_exists(name)) << name << " was removed while its owner runs";
}

}  // namespace
