// The tests' model of Kafka's default partitioner must be the Java client's,
// bit for bit: integration tests predict with it where the relay has to put
// each keyed record.
//
// Hashes marked "Kafka" are the vectors of Kafka's UtilsTest.testMurmur2;
// the rest, and every partition number, were computed with
// org.apache.kafka.common.utils.Utils.murmur2 and toPositive from
// kafka-clients 3.9.1.
#include <gtest/gtest.h>

#include <string>

#include "harness/murmur2.h"

namespace {

struct Vector {
  std::string key;
  int32_t hash;
};

TEST(KafkaMurmur2, MatchesKafkaUtilsTestVectors) {
  const Vector vectors[] = {
      {"21", -973932308},                                               // Kafka
      {"foobar", -790332482},                                           // Kafka
      {"a-little-bit-long-string", -985981536},                         // Kafka
      {"a-little-bit-longer-string", -1486304829},                      // Kafka
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},  // Kafka
      {std::string{'a', 'b', 'c'}, 479470107},                          // Kafka
  };
  for (const auto& v : vectors) EXPECT_EQ(harness::murmur2(v.key), v.hash) << v.key;
}

TEST(KafkaMurmur2, EveryTailLengthMatchesJava) {
  // Lengths 0 to 4 exercise each branch of the tail switch and one block.
  EXPECT_EQ(harness::murmur2(""), 275646681);
  EXPECT_EQ(harness::murmur2("a"), -1563381124);
  EXPECT_EQ(harness::murmur2("ab"), 316155434);
  EXPECT_EQ(harness::murmur2("abc"), 479470107);
  EXPECT_EQ(harness::murmur2("abcd"), -1323649548);
}

TEST(KafkaMurmur2, HighBytesAreHashedUnsigned) {
  // Java masks each byte with 0xff; a sign-extended char would differ.
  EXPECT_EQ(harness::murmur2(std::string("\x00\xff\x80\x7f\xc3", 5)), 173052824);
  // "événement-中" in UTF-8.
  EXPECT_EQ(harness::murmur2("\xc3\xa9v\xc3\xa9nement-\xe4\xb8\xad"), 1720069703);
}

TEST(KafkaMurmur2, ToPositiveClearsTheSignBitInsteadOfNegating) {
  EXPECT_EQ(harness::to_positive(-1), 0x7fffffff);
  EXPECT_EQ(harness::to_positive(INT32_MIN), 0);
  EXPECT_EQ(harness::to_positive(5), 5);
}

TEST(KafkaMurmur2, PartitionMatchesJavaDefaultPartitioner) {
  struct Case {
    std::string key;
    int32_t partitions;
    int32_t partition;
  };
  const Case cases[] = {
      {"21", 6, 0},         {"foobar", 3, 0},   {"a-little-bit-long-string", 6, 2},
      {"abc", 6, 3},        {"abc", 1000, 107}, {"a-little-bit-longer-string", 1000, 819},
      {"customer-7", 6, 1}, {"k3", 6, 4},       {"pinned-2", 6, 0},
      {"", 6, 3},           {"a", 3, 1},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(harness::murmur2_partition(c.key, c.partitions), c.partition)
        << c.key << " over " << c.partitions;
  }
}

}  // namespace
