// The checkpoint's text form: what the transactional producer writes into
// the checkpoint group's offset metadata, and the reader that refuses
// anything else.
#include <gtest/gtest.h>

#include "kafka/checkpoint.h"
#include "kafka/txn_errc.h"

namespace kafka {
namespace {

TEST(KafkaCheckpoint, WholeTransactionRoundTrips) {
  const Checkpoint c{wal::Lsn(0x16B374D848ull), std::nullopt};
  EXPECT_EQ(encode_checkpoint(c), "v1 end_lsn=16/B374D848 last_row=whole");
  auto parsed = parse_checkpoint(encode_checkpoint(c));
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(*parsed, c);
}

TEST(KafkaCheckpoint, PartialTransactionRoundTripsWithItsRowIndex) {
  for (uint64_t row : {uint64_t{0}, uint64_t{41}, UINT64_MAX}) {
    const Checkpoint c{wal::Lsn(UINT64_MAX), row};
    auto parsed = parse_checkpoint(encode_checkpoint(c));
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_EQ(encode_checkpoint({wal::Lsn(0), 7}), "v1 end_lsn=0/0 last_row=7");
}

TEST(KafkaCheckpoint, SystemIdentifierRoundTripsInVersion2) {
  const Checkpoint whole{wal::Lsn(0x16B374D848ull), std::nullopt, 7312345678901234567ull};
  EXPECT_EQ(encode_checkpoint(whole),
            "v2 systemid=7312345678901234567 end_lsn=16/B374D848 last_row=whole");
  const Checkpoint partial{wal::Lsn(0x16B374D848ull), 41, 0};
  EXPECT_EQ(encode_checkpoint(partial), "v2 systemid=0 end_lsn=16/B374D848 last_row=41");
  for (const Checkpoint& c : {whole, partial, Checkpoint{wal::Lsn(UINT64_MAX), 0, UINT64_MAX}}) {
    auto parsed = parse_checkpoint(encode_checkpoint(c));
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(*parsed, c);
  }
}

TEST(KafkaCheckpoint, TimelineAndSelectionRoundTripInVersion3) {
  const Checkpoint whole{wal::Lsn(0x16B374D848ull), std::nullopt, 7312345678901234567ull, 2,
                         0x5b1e0c7f3a9d2e41ull};
  EXPECT_EQ(encode_checkpoint(whole),
            "v3 systemid=7312345678901234567 tli=2 end_lsn=16/B374D848 last_row=whole "
            "sel=5b1e0c7f3a9d2e41");
  const Checkpoint partial{wal::Lsn(0x16B374D848ull), 41, 1, 1, 0};
  EXPECT_EQ(encode_checkpoint(partial),
            "v3 systemid=1 tli=1 end_lsn=16/B374D848 last_row=41 sel=0000000000000000");
  const Checkpoint unselected{wal::Lsn(0x10), 3, 1, UINT32_MAX, std::nullopt};
  EXPECT_EQ(encode_checkpoint(unselected), "v3 systemid=1 tli=4294967295 end_lsn=0/10 last_row=3");
  const Checkpoint largest{wal::Lsn(UINT64_MAX), 0, UINT64_MAX, 7, UINT64_MAX};
  for (const Checkpoint& c : {whole, partial, unselected, largest}) {
    auto parsed = parse_checkpoint(encode_checkpoint(c));
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(*parsed, c);
  }
}

// Without a timeline the forms earlier relays read are written, and the
// selection, which only v3 carries, is left out.
TEST(KafkaCheckpoint, WithoutATimelineVersion2IsWritten) {
  const Checkpoint c{wal::Lsn(0x16B374D848ull), 41, 9, std::nullopt, 0xabcull};
  EXPECT_EQ(encode_checkpoint(c), "v2 systemid=9 end_lsn=16/B374D848 last_row=41");
  const Checkpoint no_system{wal::Lsn(0x10), std::nullopt, std::nullopt, 3, 0xabcull};
  EXPECT_EQ(encode_checkpoint(no_system), "v1 end_lsn=0/10 last_row=whole");
}

TEST(KafkaCheckpoint, MalformedVersion3IsRefusedNamingIt) {
  for (const char* text :
       {"v3 systemid=1 end_lsn=0/0 last_row=whole", "v3 tli=1 end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=1 end_lsn=0/0", "v3 systemid=1 tli= end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=0 end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=01 end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=4294967296 end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=x end_lsn=0/0 last_row=whole",
        "v3 tli=1 systemid=1 end_lsn=0/0 last_row=whole",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=abc",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=5B1E0C7F3A9D2E41",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=5b1e0c7f3a9d2e411",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=5b1e0c7f3a9d2e4g",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole x=5b1e0c7f3a9d2e41",
        "v3 systemid=1 tli=1 end_lsn=0/0 last_row=whole sel=5b1e0c7f3a9d2e41 x",
        "v3 systemid=1 tli=1 end_lsn=0/0 sel=5b1e0c7f3a9d2e41 last_row=whole",
        "v2 systemid=1 end_lsn=0/0 last_row=whole sel=5b1e0c7f3a9d2e41",
        "v2 systemid=1 tli=1 end_lsn=0/0 last_row=whole",
        "v4 systemid=1 tli=1 end_lsn=0/0 last_row=whole"}) {
    auto parsed = parse_checkpoint(text);
    ASSERT_FALSE(parsed) << "accepted '" << text << "'";
    EXPECT_EQ(parsed.error().code, txn_errc::malformed_checkpoint);
    EXPECT_NE(parsed.error().message.find(std::string("'") + text + "'"), std::string::npos)
        << parsed.error().message;
  }
}

// Checkpoints committed by relays that did not record the system identifier
// are still read, as not knowing it.
TEST(KafkaCheckpoint, Version1IsStillReadWithoutASystemIdentifier) {
  auto parsed = parse_checkpoint("v1 end_lsn=16/B374D848 last_row=41");
  ASSERT_TRUE(parsed) << parsed.error().describe();
  EXPECT_EQ(*parsed, (Checkpoint{wal::Lsn(0x16B374D848ull), 41, std::nullopt}));
  EXPECT_FALSE(parsed->system_identifier.has_value());
}

TEST(KafkaCheckpoint, MalformedVersion2IsRefusedNamingIt) {
  for (const char* text :
       {"v2 end_lsn=0/0 last_row=whole", "v2 systemid=1 end_lsn=0/0",
        "v2 systemid= end_lsn=0/0 last_row=whole", "v2 systemid=x end_lsn=0/0 last_row=whole",
        "v2 systemid=-1 end_lsn=0/0 last_row=whole", "v2 systemid=01 end_lsn=0/0 last_row=whole",
        "v2 systemid=18446744073709551616 end_lsn=0/0 last_row=whole",
        "v2 end_lsn=0/0 systemid=1 last_row=whole", "v2 systemid=1 end_lsn=0/0 last_row=whole 1",
        "v1 systemid=1 end_lsn=0/0 last_row=whole", "v4 systemid=1 end_lsn=0/0 last_row=whole"}) {
    auto parsed = parse_checkpoint(text);
    ASSERT_FALSE(parsed) << "accepted '" << text << "'";
    EXPECT_EQ(parsed.error().code, txn_errc::malformed_checkpoint);
    EXPECT_NE(parsed.error().message.find(std::string("'") + text + "'"), std::string::npos)
        << parsed.error().message;
  }
}

TEST(KafkaCheckpoint, MalformedTextIsRefusedNamingIt) {
  for (const char* text :
       {"", "v1", "v1 end_lsn=0/0", "v2 end_lsn=0/0 last_row=whole",
        "v1 end_lsn=0/0 last_row=whole ", "v1  end_lsn=0/0 last_row=whole",
        "v1 end_lsn=zz/0 last_row=whole", "v1 end_lsn=00/0 last_row=whole",
        "v1 end_lsn=0/0 last_row=", "v1 end_lsn=0/0 last_row=-1", "v1 end_lsn=0/0 last_row=01",
        "v1 end_lsn=0/0 last_row=1x", "v1 end_lsn=0/0 last_row=18446744073709551616",
        "v1 last_row=whole end_lsn=0/0", "outbox-relay-host-1/4242"}) {
    auto parsed = parse_checkpoint(text);
    ASSERT_FALSE(parsed) << "accepted '" << text << "'";
    EXPECT_EQ(parsed.error().code, txn_errc::malformed_checkpoint);
    EXPECT_NE(parsed.error().message.find(std::string("'") + text + "'"), std::string::npos)
        << parsed.error().message;
  }
}

TEST(KafkaCheckpoint, UnprintableBytesAreEscapedInTheError) {
  auto parsed = parse_checkpoint(std::string("v1\0\n", 4));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().message.find("'v1\\x00\\x0a'"), std::string::npos)
      << parsed.error().message;
}

}  // namespace
}  // namespace kafka
