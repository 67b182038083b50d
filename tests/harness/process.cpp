#include "harness/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "harness/signal_cleanup.h"

extern char** environ;

namespace harness {
namespace {

std::string describe(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// The environment for a child, built before spawning: between fork and exec
// in a process with librdkafka's threads only async-signal-safe calls are
// allowed, so nothing may allocate there.
class Environment {
 public:
  explicit Environment(const std::map<std::string, std::string>& additions) {
    for (char** e = environ; *e != nullptr; ++e) {
      std::string entry(*e);
      const auto eq = entry.find('=');
      if (eq != std::string::npos && additions.count(entry.substr(0, eq))) continue;
      entries_.push_back(std::move(entry));
    }
    for (const auto& [k, v] : additions) entries_.push_back(k + "=" + v);
    for (auto& e : entries_) pointers_.push_back(e.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> entries_;
  std::vector<char*> pointers_;
};

class Argv {
 public:
  explicit Argv(std::vector<std::string> argv) : args_(std::move(argv)) {
    if (args_.empty()) throw std::invalid_argument("empty argv");
    for (auto& a : args_) pointers_.push_back(a.data());
    pointers_.push_back(nullptr);
  }
  char** get() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

// posix_spawn attributes shared by every child: its own process group, and
// the signal mask and dispositions of a fresh process (gtest or the caller
// may have blocked or ignored some).
class SpawnAttr {
 public:
  SpawnAttr() {
    posix_spawnattr_init(&attr_);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&attr_, &none);
    posix_spawnattr_setsigdefault(&attr_, &all);
    posix_spawnattr_setpgroup(&attr_, 0);
    posix_spawnattr_setflags(
        &attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
  const posix_spawnattr_t* get() const { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
            FileActions& actions) {
  Argv args(argv);
  Environment environment(env);
  SpawnAttr attr;
  pid_t pid = -1;
  posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  const int rc =
      posix_spawnp(&pid, args.get()[0], actions.get(), attr.get(), args.get(), environment.get());
  if (rc != 0) {
    throw std::runtime_error("cannot run " + describe(argv) + ": " + std::strerror(rc));
  }
  return pid;
}

}  // namespace

Process::Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
                 std::string log_path)
    : log_path_(std::move(log_path)) {
  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("cannot open " + log_path_ + ": " + std::strerror(errno));
  }
  FileActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), log_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), log_fd, STDERR_FILENO);
  try {
    detail::Spawning spawning;
    pid_ = spawn(argv, env, actions);
    spawning.child(pid_);
  } catch (...) {
    ::close(log_fd);
    throw;
  }
  ::close(log_fd);
}

Process::~Process() {
  if (pid_ > 0 && !exit_code_) {
    // The whole group: whatever the child started goes with it.
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    reap(true);
  }
}

bool Process::reap(bool block) {
  if (exit_code_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = decode_status(status);
  } else if (r < 0) {
    // Reaped elsewhere (a SIGCHLD handler, the signal cleanup): nothing is
    // left to wait for.
    exit_code_ = -1;
  } else {
    return false;
  }
  detail::untrack_child(pid_);
  return true;
}

void Process::signal(int signo) {
  if (!reap(false)) ::kill(pid_, signo);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= end) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return exit_code_;
}

std::optional<int> Process::terminate(std::chrono::milliseconds deadline) {
  signal(SIGTERM);
  return wait_exit(deadline);
}

bool Process::running() {
  return !reap(false);
}

std::string Process::log_contents() const {
  std::ifstream in(log_path_, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error("pipe2 failed");
  }
  FileActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), err[1], STDERR_FILENO);
  pid_t pid;
  try {
    detail::Spawning spawning;
    pid = spawn(argv, env, actions);
    spawning.command();
  } catch (...) {
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    throw;
  }
  ::close(out[1]);
  ::close(err[1]);

  CommandResult result;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) ::close(f.fd);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  detail::command_done();
  result.exit_code = decode_status(status);
  return result;
}

}  // namespace harness
