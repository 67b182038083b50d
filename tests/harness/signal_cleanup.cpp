#include "harness/signal_cleanup.h"

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "harness/process.h"

namespace harness::detail {
namespace {

using namespace std::chrono_literals;

// Commands are `ip` and `iptables` calls and the servers' scripts; a script
// still running after this finishes on its own, and its server's watchdog
// removes the server once this process is gone.
constexpr auto kCommandsGrace = 3s;
constexpr auto kReapGrace = 2s;

struct State {
  std::mutex mutex;
  std::condition_variable commands_done;
  std::condition_variable never;
  bool cleaning = false;
  std::thread::id cleaner;
  std::set<pid_t> children;
  int commands = 0;
  int next_id = 0;
  std::map<int, std::vector<std::string>> on_signal_commands;
  std::vector<void (*)()> cleanups;
};

// Never destroyed: the cleanup thread may still use it while static
// destructors run at exit.
State& state() {
  static State* s = new State;
  return *s;
}

// The signal being answered (0 before), and whether the answer is done;
// read from signal handlers and atexit, hence lock-free atomics.
std::atomic<int> answering{0};
std::atomic<bool> answered{false};

// Async-signal-safe.
[[noreturn]] void die_of(int signo) {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(signo, &dfl, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signo);
  pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(signo);
  ::_exit(128 + signo);
}

// The test goes on while the cleanup runs, and sees its servers and relays
// die: an exception a thread does not catch aborts the process, a failed
// last test returns from main(). Either would end the process half cleaned,
// with the wrong status; the thread waits instead, and the process dies of
// the signal being answered. Async-signal-safe.
void wait_for_answer() {
  const int signo = answering.load();
  if (signo == 0) return;
  const timespec tick{0, 10'000'000};
  while (!answered.load()) ::nanosleep(&tick, nullptr);
  die_of(signo);
}

void on_abort(int) {
  wait_for_answer();
}

sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signo : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, signo);
  return set;
}

// SIGKILLed children become zombies until waited for; reaping them here
// means none outlives this process even briefly, whoever adopts it.
void reap(const std::vector<pid_t>& children) {
  const auto end = std::chrono::steady_clock::now() + kReapGrace;
  std::vector<pid_t> left = children;
  while (!left.empty() && std::chrono::steady_clock::now() < end) {
    std::erase_if(left, [](pid_t pid) {
      const pid_t r = ::waitpid(pid, nullptr, WNOHANG);
      return r == pid || (r < 0 && errno != EINTR);
    });
    if (!left.empty()) std::this_thread::sleep_for(10ms);
  }
}

void clean_up(int signo) {
  answering = signo;
  struct sigaction abort_action = {};
  abort_action.sa_handler = on_abort;
  sigaction(SIGABRT, &abort_action, nullptr);
  State& s = state();
  std::vector<pid_t> children;
  {
    std::lock_guard lock(s.mutex);
    s.cleaning = true;
    children.assign(s.children.begin(), s.children.end());
  }
  std::fprintf(stderr,
               "harness: %s: killing %zu children, destroying servers, removing namespaces\n",
               strsignal(signo), children.size());
  for (pid_t pid : children) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  reap(children);
  std::map<int, std::vector<std::string>> commands;
  std::vector<void (*)()> cleanups;
  {
    std::unique_lock lock(s.mutex);
    s.commands_done.wait_for(lock, kCommandsGrace, [&] { return s.commands == 0; });
    commands = s.on_signal_commands;
    cleanups = s.cleanups;
  }
  for (const auto& [id, argv] : commands) {
    try {
      const CommandResult r = run_command(argv);
      if (r.exit_code != 0) {
        std::fprintf(stderr, "harness: %s exited with %d: %s\n", argv.front().c_str(),
                     r.exit_code, r.err.c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "harness: %s\n", e.what());
    }
  }
  for (auto cleanup : cleanups) cleanup();
}

[[noreturn]] void take_signals(sigset_t set) {
  int signo = 0;
  while (sigwait(&set, &signo) != 0) {
  }
  clean_up(signo);
  answered = true;
  die_of(signo);
}

struct Installer {
  Installer() {
    const sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::atexit(wait_for_answer);
    std::thread cleaner(take_signals, set);
    {
      std::lock_guard lock(state().mutex);
      state().cleaner = cleaner.get_id();
    }
    cleaner.detach();
  }
};

const Installer installer;

}  // namespace

Spawning::Spawning() : lock_(state().mutex) {
  State& s = state();
  if (s.cleaning && std::this_thread::get_id() != s.cleaner) {
    s.never.wait(lock_, [] { return false; });
  }
}

void Spawning::child(pid_t pid) {
  state().children.insert(pid);
}

void Spawning::command() {
  ++state().commands;
}

void untrack_child(pid_t pid) {
  std::lock_guard lock(state().mutex);
  state().children.erase(pid);
}

void command_done() {
  State& s = state();
  std::lock_guard lock(s.mutex);
  --s.commands;
  s.commands_done.notify_all();
}

int run_on_signal(std::vector<std::string> argv) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  const int id = ++s.next_id;
  s.on_signal_commands.emplace(id, std::move(argv));
  return id;
}

void forget_on_signal(int id) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.on_signal_commands.erase(id);
}

void on_signal(void (*cleanup)()) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (std::find(s.cleanups.begin(), s.cleanups.end(), cleanup) == s.cleanups.end()) {
    s.cleanups.push_back(cleanup);
  }
}

}  // namespace harness::detail
