// The fingerprint of the outbox selection a checkpoint's last_row was
// counted under.
#include "relay/checkpoint.h"

#include <gtest/gtest.h>

namespace relay {
namespace {

config::OutboxConfig outbox(config::OutboxSource source, std::string table = "public.outbox",
                            std::string prefix = "outbox") {
  config::OutboxConfig o;
  o.source = source;
  o.table = std::move(table);
  o.message_prefix = std::move(prefix);
  return o;
}

// Written into checkpoints: the same value in every build, so that a
// relay upgraded in the middle of a transaction still trusts its index.
TEST(RelaySelectionFingerprint, IsStableAcrossBuilds) {
  EXPECT_EQ(selection_fingerprint(outbox(config::OutboxSource::kTable)), 0x8bde11117f5abc10ull);
}

TEST(RelaySelectionFingerprint, ChangesWithWhatSelectsRecords) {
  using config::OutboxSource;
  const uint64_t table = selection_fingerprint(outbox(OutboxSource::kTable));
  EXPECT_NE(table, selection_fingerprint(outbox(OutboxSource::kBoth)));
  EXPECT_NE(table, selection_fingerprint(outbox(OutboxSource::kMessages)));
  EXPECT_NE(table, selection_fingerprint(outbox(OutboxSource::kTable, "app.outbox")));
  const uint64_t both = selection_fingerprint(outbox(OutboxSource::kBoth));
  EXPECT_NE(both, selection_fingerprint(outbox(OutboxSource::kBoth, "public.outbox", "events")));
  EXPECT_NE(both, selection_fingerprint(outbox(OutboxSource::kBoth, "app.outbox")));
}

// A setting the source does not read counts nothing, and changing it
// changes no index.
TEST(RelaySelectionFingerprint, IgnoresWhatTheSourceDoesNotRead) {
  using config::OutboxSource;
  EXPECT_EQ(selection_fingerprint(outbox(OutboxSource::kTable)),
            selection_fingerprint(outbox(OutboxSource::kTable, "public.outbox", "events")));
  EXPECT_EQ(selection_fingerprint(outbox(OutboxSource::kMessages)),
            selection_fingerprint(outbox(OutboxSource::kMessages, "app.outbox")));
  config::OutboxConfig routed = outbox(OutboxSource::kTable);
  routed.topic_template = "events.${topic}";
  routed.on_bad_row = config::BadRowPolicy::kHalt;
  EXPECT_EQ(selection_fingerprint(outbox(OutboxSource::kTable)), selection_fingerprint(routed));
}

}  // namespace
}  // namespace relay
