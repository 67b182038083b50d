#include "relay/lease.h"

#include <time.h>

namespace relay {

Lease::Nanos Lease::now() {
  struct timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return Nanos(int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec);
}

void Lease::renew(Nanos evidence_at, Nanos validity) {
  if (evidence_at.count() <= revoked_at_.load(std::memory_order_acquire)) return;
  const int64_t until = (evidence_at + validity).count();
  int64_t current = expires_.load(std::memory_order_acquire);
  while (until > current &&
         !expires_.compare_exchange_weak(current, until, std::memory_order_acq_rel)) {
  }
}

void Lease::revoke(Nanos at) {
  int64_t previous = revoked_at_.load(std::memory_order_acquire);
  while (at.count() > previous &&
         !revoked_at_.compare_exchange_weak(previous, at.count(), std::memory_order_acq_rel)) {
  }
  expires_.store(0, std::memory_order_release);
}

}  // namespace relay
