#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace harness {

// A child process under test (the relay, pg_recvlogical…), its stdout and
// stderr going to one log file. It runs in its own process group with a
// default signal disposition and stdin from /dev/null. Destroying it sends
// SIGKILL to that group and reaps the child, so a failed assertion never
// leaves a process behind; so does a SIGTERM, SIGINT or SIGHUP of the test
// binary (signal_cleanup.h).
class Process {
 public:
  // argv[0] is looked up in PATH; `env` adds to (or overrides) this
  // process's environment. Throws std::runtime_error if it cannot start.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env,
          std::string log_path);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // Sends `signo` to the child itself (not its group); a no-op once reaped.
  void signal(int signo);

  // The exit code once the child has ended within `deadline`: its exit
  // status, or 128 + the signal number if a signal ended it (as a shell
  // reports it). nullopt if it is still running at the deadline.
  std::optional<int> wait_exit(std::chrono::milliseconds deadline);

  // SIGTERM, then wait_exit(deadline): how a test stops a process cleanly.
  std::optional<int> terminate(std::chrono::milliseconds deadline);

  // False once the child has ended (it is reaped then).
  bool running();

  // All the child has written so far.
  std::string log_contents() const;

 private:
  bool reap(bool block);

  pid_t pid_ = -1;
  std::string log_path_;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = -1;  // as Process::wait_exit reports it
  std::string out;
  std::string err;
};

// Runs a command to completion with stdout and stderr captured; for the
// harness's own scripts. `env` adds to this process's environment.
CommandResult run_command(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {});

}  // namespace harness
