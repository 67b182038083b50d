// The ownership lease: held only inside the window that evidence opened, and
// never reopened by evidence older than a revocation.

#include <gtest/gtest.h>

#include "relay/lease.h"

namespace {

using namespace std::chrono_literals;
using relay::Lease;

constexpr Lease::Nanos kT0 = std::chrono::seconds(1000);

TEST(Lease, NotHeldBeforeAnyEvidence) {
  Lease lease;
  EXPECT_FALSE(lease.held(kT0));
  EXPECT_FALSE(lease.held());
}

TEST(Lease, HeldFromEvidenceUntilItsValidityEnds) {
  Lease lease;
  lease.renew(kT0, 4s);
  EXPECT_TRUE(lease.held(kT0));
  EXPECT_TRUE(lease.held(kT0 + 4s - 1ns));
  EXPECT_FALSE(lease.held(kT0 + 4s));
}

TEST(Lease, EvidenceRequestedBeforeAFreezeArrivesAlreadyExpired) {
  Lease lease;
  lease.renew(kT0, 4s);
  // Requested at T0, answered after a 10 s freeze: the lease counts from T0.
  lease.renew(kT0, 4s);
  EXPECT_FALSE(lease.held(kT0 + 10s));
}

TEST(Lease, OlderEvidenceNeverShortensTheLease) {
  Lease lease;
  lease.renew(kT0 + 2s, 4s);
  lease.renew(kT0, 4s);
  EXPECT_TRUE(lease.held(kT0 + 5s));
}

TEST(Lease, RevokeEndsItAtOnce) {
  Lease lease;
  lease.renew(kT0, 4s);
  lease.revoke(kT0 + 1s);
  EXPECT_FALSE(lease.held(kT0 + 1s));
}

TEST(Lease, EvidenceRequestedBeforeARevokeIsIgnored) {
  Lease lease;
  lease.renew(kT0, 4s);
  lease.revoke(kT0 + 1s);
  lease.renew(kT0 + 500ms, 4s);
  EXPECT_FALSE(lease.held(kT0 + 2s));
  lease.renew(kT0 + 1500ms, 4s);
  EXPECT_TRUE(lease.held(kT0 + 2s));
}

TEST(Lease, NowIsMonotonic) {
  const auto a = Lease::now();
  const auto b = Lease::now();
  EXPECT_LE(a, b);
}

}  // namespace
