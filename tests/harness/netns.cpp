#include "harness/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "harness/process.h"
#include "harness/signal_cleanup.h"
#include "harness/wait.h"

namespace harness {
namespace {

constexpr const char* kNetnsDir = "/run/netns";
constexpr int kFirstRelayHost = 11;

std::string describe(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

CommandResult run(const std::vector<std::string>& argv) {
  try {
    return run_command(argv);
  } catch (const std::exception& e) {
    return CommandResult{127, "", e.what()};
  }
}

void must(const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  if (r.exit_code != 0) {
    throw std::runtime_error(describe(argv) + " exited with " + std::to_string(r.exit_code) + ": " +
                             r.err + r.out);
  }
}

// As must(), but a failure means the kernel or the privileges are missing.
void must_or_unavailable(const std::vector<std::string>& argv) {
  CommandResult r = run(argv);
  if (r.exit_code != 0) {
    throw NetnsUnavailable(describe(argv) + " exited with " + std::to_string(r.exit_code) + ": " +
                           r.err + r.out);
  }
}

std::vector<pid_t> pids_in(const std::string& netns) {
  std::vector<pid_t> out;
  std::istringstream in(run({"ip", "netns", "pids", netns}).out);
  pid_t pid;
  while (in >> pid) {
    if (pid != ::getpid()) out.push_back(pid);
  }
  return out;
}

// Ends what still runs in a namespace this harness made (relays and servers
// a test started there), then removes the namespace with its links.
void remove_netns(const std::string& netns) {
  for (pid_t pid : pids_in(netns)) ::kill(pid, SIGKILL);
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (run({"ip", "netns", "del", netns}).exit_code == 0) return;
    if (!std::filesystem::exists(std::string(kNetnsDir) + "/" + netns)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a process still exiting
  }
  std::fprintf(stderr, "harness: could not remove network namespace %s\n", netns.c_str());
}

// Namespaces named after a test binary that no longer runs.
void remove_leftovers() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kNetnsDir, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = NetnsLab::kNamePrefix;
    if (name.rfind(prefix, 0) != 0) continue;
    const pid_t owner = static_cast<pid_t>(std::strtol(name.c_str() + prefix.size(), nullptr, 10));
    if (owner <= 0 || owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno != ESRCH) continue;
    std::fprintf(stderr, "harness: removing network namespace %s left by pid %d\n", name.c_str(),
                 static_cast<int>(owner));
    remove_netns(name);
  }
}

// On a signal: every namespace named after this process, whichever lab made
// it and however far its making got.
void remove_own() {
  const std::string own = NetnsLab::kNamePrefix + std::to_string(::getpid()) + "-";
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kNetnsDir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(own, 0) == 0) names.push_back(std::move(name));
  }
  for (const auto& name : names) remove_netns(name);
}

bool link_up(const std::string& netns, const std::string& link) {
  return run({"ip", "-n", netns, "-o", "link", "show", link}).out.find("state UP") !=
         std::string::npos;
}

}  // namespace

std::string NetnsLab::relay_address(int relay) {
  return "10.213.0." + std::to_string(kFirstRelayHost + relay);
}

std::unique_ptr<NetnsLab> NetnsLab::create(int relays) {
  if (::geteuid() != 0) throw NetnsUnavailable("network namespaces need root");
  for (const char* tool : {"ip", "iptables"}) {
    if (run({tool, "-V"}).exit_code != 0) {
      throw NetnsUnavailable(std::string(tool) + " is not installed (scripts/install-deps.sh)");
    }
  }
  remove_leftovers();
  detail::on_signal(remove_own);

  std::unique_ptr<NetnsLab> lab(new NetnsLab());
  const std::string base = kNamePrefix + std::to_string(::getpid()) + "-";
  try {
    lab->servers_ = base + "srv";
    must_or_unavailable({"ip", "netns", "add", lab->servers_});
    const std::string& srv = lab->servers_;
    must({"ip", "-n", srv, "link", "set", "lo", "up"});
    must_or_unavailable({"ip", "-n", srv, "link", "add", "br0", "type", "bridge", "forward_delay",
                         "0", "stp_state", "0"});
    must({"ip", "-n", srv, "addr", "add", std::string(kServersAddress) + "/24", "dev", "br0"});
    must({"ip", "-n", srv, "link", "set", "br0", "up"});
    for (int i = 0; i < relays; ++i) {
      const std::string ns = base + "r" + std::to_string(i);
      must_or_unavailable({"ip", "netns", "add", ns});
      lab->relays_.push_back(ns);
      const std::string port = "r" + std::to_string(i);
      must({"ip", "-n", ns, "link", "set", "lo", "up"});
      must_or_unavailable({"ip", "-n", srv, "link", "add", port, "type", "veth", "peer", "name",
                           "eth0", "netns", ns});
      must({"ip", "-n", srv, "link", "set", port, "master", "br0", "up"});
      must({"ip", "-n", ns, "addr", "add", relay_address(i) + "/24", "dev", "eth0"});
      must({"ip", "-n", ns, "link", "set", "eth0", "up"});
    }
    for (int i = 0; i < relays; ++i) {
      const std::string port = "r" + std::to_string(i);
      if (!wait_until([&] { return link_up(srv, port) && link_up(lab->relays_[i], "eth0"); },
                      std::chrono::seconds(10))) {
        throw std::runtime_error("veth " + port + " of " + srv + " did not come up");
      }
    }
  } catch (...) {
    lab->remove_all();
    throw;
  }
  return lab;
}

NetnsLab::~NetnsLab() {
  remove_all();
}

void NetnsLab::remove_all() noexcept {
  try {
    for (const auto& ns : relays_) remove_netns(ns);
    relays_.clear();
    if (!servers_.empty()) remove_netns(servers_);
    servers_.clear();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "harness: removing network namespaces: %s\n", e.what());
  }
}

std::vector<std::string> NetnsLab::in_relay(int relay) const {
  return {"ip", "netns", "exec", relay_netns(relay)};
}

void NetnsLab::drop_rules(int relay, int port, const char* action) {
  const std::string p = std::to_string(port);
  auto rule = in_relay(relay);
  rule.insert(rule.end(), {"iptables", "-w", action});
  auto out = rule, in = rule;
  out.insert(out.end(), {"OUTPUT", "-p", "tcp", "-d", kServersAddress, "--dport", p, "-j", "DROP"});
  in.insert(in.end(), {"INPUT", "-p", "tcp", "-s", kServersAddress, "--sport", p, "-j", "DROP"});
  must(out);
  must(in);
}

void NetnsLab::cut(int relay, int port) {
  if (cuts_.count({relay, port})) return;
  drop_rules(relay, port, "-I");
  cuts_.insert({relay, port});
}

void NetnsLab::heal(int relay, int port) {
  if (!cuts_.count({relay, port})) return;
  drop_rules(relay, port, "-D");
  cuts_.erase({relay, port});
}

void NetnsLab::heal_all() {
  while (!cuts_.empty()) heal(cuts_.begin()->first, cuts_.begin()->second);
}

NetnsLab::ServersScope::ServersScope(const NetnsLab& lab) {
  previous_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (previous_ < 0) throw std::runtime_error(std::string("open own netns: ") + strerror(errno));
  const std::string path = std::string(kNetnsDir) + "/" + lab.servers_netns();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0) {
    const std::string why = strerror(errno);
    if (fd >= 0) ::close(fd);
    ::close(previous_);
    throw std::runtime_error("enter " + path + ": " + why);
  }
  ::close(fd);
}

NetnsLab::ServersScope::~ServersScope() {
  if (::setns(previous_, CLONE_NEWNET) != 0) {
    std::fprintf(stderr, "harness: could not leave the servers' namespace: %s\n", strerror(errno));
  }
  ::close(previous_);
}

}  // namespace harness
