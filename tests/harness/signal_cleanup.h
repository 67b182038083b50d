#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

namespace harness::detail {

// A test binary ended by SIGTERM (a ctest timeout with TIMEOUT_SIGNAL_NAME),
// SIGINT (Ctrl-C) or SIGHUP (its terminal gone) first kills the children it
// started, each with its process group, destroys its servers (commands
// registered with run_on_signal()) and runs the cleanups registered with
// on_signal() (the network namespaces it made), then dies of that signal, so
// that its caller sees the exit it sent for.
//
// The cleanup runs `ip` and takes locks, which a signal handler may not do.
// So those signals are blocked from this library's static initialisation on,
// before the binary starts any thread (every later thread inherits the
// mask), and one thread started then takes them with sigwait(). Children get
// a fresh mask (process.cpp). SIGKILL cannot be caught: the scripts'
// watchdogs and NetnsLab::create() collect what a killed binary leaves.

// Held while a child is started and registered, so the cleanup sees every
// child that started before it. Once the cleanup has begun, every other
// thread that would start a child waits here until the process dies.
class Spawning {
 public:
  Spawning();
  ~Spawning() = default;
  Spawning(const Spawning&) = delete;
  Spawning& operator=(const Spawning&) = delete;

  // A child that runs until a test stops it: SIGKILLed with its group on a
  // signal, until untrack_child().
  void child(pid_t pid);
  // A command run to completion: the cleanup lets commands in flight finish
  // (for a few seconds) before removing namespaces, so that one still being
  // added is removed too. command_done() when it has been reaped.
  void command();

 private:
  std::unique_lock<std::mutex> lock_;
};

void untrack_child(pid_t pid);
void command_done();

// Runs `argv` to completion on a signal, until forget_on_signal() with the
// id returned: how a server that outlives its starting script is destroyed.
// Before the on_signal() cleanups, which end whatever still runs in the
// namespaces, a server's watchdog included.
int run_on_signal(std::vector<std::string> argv);
void forget_on_signal(int id);

// Runs `cleanup` on the cleanup thread after the children are killed.
// Registering the same function again does nothing.
void on_signal(void (*cleanup)());

}  // namespace harness::detail
