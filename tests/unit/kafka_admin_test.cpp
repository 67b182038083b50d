// kafka::Admin without a broker: what it refuses before asking the cluster,
// and how an unreachable cluster comes back.
#include <gtest/gtest.h>

#include <chrono>

#include "kafka/admin.h"
#include "kafka/errc.h"

namespace kafka {
namespace {

using namespace std::chrono_literals;

// Nothing listens on port 1 of the loopback.
constexpr const char* kNoBroker = "127.0.0.1:1";

Admin admin_without_broker() {
  auto admin = Admin::create({kNoBroker, {{"log_level", "0"}}});
  EXPECT_TRUE(admin.ok()) << admin.error().describe();
  return std::move(admin).value();
}

TEST(KafkaAdmin, PropertyLibrdkafkaRefusesIsInvalidConfigNamingIt) {
  auto admin = Admin::create({kNoBroker, {{"no.such.property", "1"}}});
  ASSERT_FALSE(admin.ok());
  EXPECT_EQ(admin.error().code, errc::invalid_config);
  EXPECT_NE(admin.error().message.find("'no.such.property'"), std::string::npos)
      << admin.error().message;
}

TEST(KafkaAdmin, UnreachableClusterIsUnavailableWithinTheTimeout) {
  Admin admin = admin_without_broker();
  const auto start = std::chrono::steady_clock::now();
  auto exists = admin.topic_exists("events", 300ms);
  ASSERT_FALSE(exists.ok());
  EXPECT_EQ(exists.error().code, errc::unavailable) << exists.error().describe();
  EXPECT_NE(exists.error().message.find("'events'"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(KafkaAdmin, NegativePartitionCountIsRefusedBeforeAnyRequest) {
  Admin admin = admin_without_broker();
  auto r = admin.create_topic(NewTopic{"events", -2}, 300ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, errc::invalid_config) << r.error().describe();
}

TEST(KafkaErrc, OneCategoryNamedKafkaWithAMessagePerCode) {
  EXPECT_STREQ(make_error_code(errc::too_few_partitions).category().name(), "kafka");
  EXPECT_EQ(std::error_code(errc::topic_exists).message(), "topic already exists");
  EXPECT_EQ(std::error_code(errc::unavailable).message(), "Kafka cluster unavailable");
  EXPECT_NE(std::error_code(errc::rejected), std::error_code(errc::invalid_config));
}

}  // namespace
}  // namespace kafka
