#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace relay {

// Time-bounded proof that this instance still owns its slots. The group
// membership renews it only on evidence that the group coordinator counted
// this instance as a live member at a known moment; every pipeline checks it
// before it produces and on every turn of its loop, and stops by itself once
// it has run out. The lease must run out before the coordinator can expel
// the instance, so renew() is given the moment the evidence was *requested*,
// never the moment it arrived: a process frozen in between (SIGSTOP, a long
// GC-like stall, a suspended VM) comes back with an expired lease.
//
// Time is CLOCK_BOOTTIME: monotonic like CLOCK_MONOTONIC, and it also counts
// the time the machine was suspended, during which the coordinator's clock
// kept running.
class Lease {
 public:
  using Nanos = std::chrono::nanoseconds;

  static Nanos now();

  // Extends the lease to `evidence_at + validity` unless it already runs
  // longer. Evidence requested before the last revoke() proves nothing about
  // the membership that followed and is ignored.
  void renew(Nanos evidence_at, Nanos validity);
  // Ends the lease at once (the assignment was lost or revoked as a whole).
  void revoke(Nanos at = now());

  bool held(Nanos at) const { return at < Nanos(expires_.load(std::memory_order_acquire)); }
  bool held() const { return held(now()); }
  Nanos expires() const { return Nanos(expires_.load(std::memory_order_acquire)); }

 private:
  std::atomic<int64_t> expires_{0};
  std::atomic<int64_t> revoked_at_{0};
};

}  // namespace relay
