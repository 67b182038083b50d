// kafka::TransactionalProducer against a real broker: a committed
// checkpoint reads back exactly, an aborted transaction stays invisible to
// read_committed consumers, a second producer with the same transactional.id
// fences the first, and a record the broker rejects aborts the transaction
// with the reason.
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "harness/harness.h"
#include "kafka/checkpoint_store.h"
#include "kafka/transactional_producer.h"

namespace {

using namespace std::chrono_literals;
using kafka::Checkpoint;
using kafka::CheckpointPlace;
using kafka::TransactionalProducer;
using kafka::txn_errc;

constexpr auto kTimeout = 30s;

std::string unique(const std::string& prefix) {
  static int counter = 0;
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

harness::KafkaBroker& broker() {
  return harness::Servers::kafka();
}

harness::ClientSettings reader(const char* isolation) {
  return harness::ClientSettings{broker().bootstrap(), {{"isolation.level", isolation}}};
}

std::vector<std::string> values(const std::vector<harness::ConsumedRecord>& records) {
  std::vector<std::string> out;
  for (const auto& r : records) out.push_back(r.value);
  return out;
}

std::vector<std::string> names(const std::string& prefix, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

// A delivery report with its topic view dropped (it is valid only during
// the callback).
struct Report {
  uint64_t token;
  relay::DeliveryStatus status;
  std::string error;
};

// A member of `group` on `topic` that gets its assignment by polling.
class GroupConsumer {
 public:
  GroupConsumer(const std::string& group, const std::string& topic) {
    char err[512];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    for (const auto& [k, v] :
         std::map<std::string, std::string>{{"bootstrap.servers", broker().bootstrap()},
                                            {"group.id", group},
                                            {"partition.assignment.strategy", "range"},
                                            {"session.timeout.ms", "6000"},
                                            {"enable.auto.commit", "false"},
                                            {"log_level", "3"}}) {
      if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
        throw std::runtime_error(k + ": " + err);
      }
    }
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk_) throw std::runtime_error(err);
    rd_kafka_poll_set_consumer(rk_);
    rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic.c_str(), RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(rk_, topics);
    rd_kafka_topic_partition_list_destroy(topics);
  }
  ~GroupConsumer() {
    rd_kafka_consumer_close(rk_);
    rd_kafka_destroy(rk_);
  }

  void poll() {
    if (rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_, 50)) rd_kafka_message_destroy(m);
  }
  int assigned() {
    rd_kafka_topic_partition_list_t* list = nullptr;
    if (rd_kafka_assignment(rk_, &list) != RD_KAFKA_RESP_ERR_NO_ERROR) return 0;
    const int n = list->cnt;
    rd_kafka_topic_partition_list_destroy(list);
    return n;
  }
  kafka::GroupMetadata metadata() {
    return kafka::GroupMetadata::adopt(rd_kafka_consumer_group_metadata(rk_));
  }

 private:
  rd_kafka_t* rk_ = nullptr;
};

class TransactionalProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    checkpoint_topic_ = unique("checkpoints");
    auto partitions =
        kafka::ensure_checkpoint_topic(broker().bootstrap(), {}, checkpoint_topic_, 2, kTimeout);
    ASSERT_TRUE(partitions) << partitions.error().describe();
    ASSERT_EQ(*partitions, 2);
    place_ = CheckpointPlace{unique("group"), checkpoint_topic_, 1};
    transactional_id_ =
        kafka::transactional_id_for(kafka::kDefaultTransactionalIdPrefix, unique("slot"));
  }

  std::unique_ptr<TransactionalProducer> make_producer(
      const std::map<std::string, std::string>& properties = {}) {
    kafka::TransactionalProducerOptions options;
    options.producer.brokers = broker().bootstrap();
    options.producer.properties = properties;
    options.transactional_id = transactional_id_;
    options.checkpoint = place_;
    auto p = TransactionalProducer::create(options);
    if (!p) ADD_FAILURE() << p.error().describe();
    return p ? std::move(*p) : nullptr;
  }

  std::unique_ptr<TransactionalProducer> started_producer(
      const std::map<std::string, std::string>& properties = {}) {
    auto p = make_producer(properties);
    if (!p) return nullptr;
    auto r = p->init(60s);
    if (!r) {
      ADD_FAILURE() << r.error().describe();
      return nullptr;
    }
    return p;
  }

  std::optional<Checkpoint> checkpoint() {
    auto c = kafka::read_checkpoint(broker().bootstrap(), {}, place_, kTimeout);
    if (!c) {
      ADD_FAILURE() << c.error().describe();
      return std::nullopt;
    }
    return *c;
  }

  // Produces one record per value to partition 0 of `topic`; tokens count
  // on from the last call.
  void produce(relay::Publisher& p, const std::string& topic,
               const std::vector<std::string>& payloads) {
    for (const auto& payload : payloads) {
      relay::OutboxRecord r;
      r.topic = topic;
      r.partition = 0;
      r.key = "key";
      r.payload = payload;
      auto result = p.produce(r, ++token_);
      ASSERT_EQ(result.outcome, relay::ProduceOutcome::kQueued) << result.error;
    }
  }

  // Polls until `count` reports arrived or 30 s passed.
  std::vector<Report> reports(relay::Publisher& p, size_t count) {
    std::vector<Report> out;
    const auto end = std::chrono::steady_clock::now() + kTimeout;
    while (out.size() < count && std::chrono::steady_clock::now() < end) {
      p.poll(100ms, [&](const relay::DeliveryReport& r) {
        out.push_back({r.token, r.status, r.error});
      });
    }
    return out;
  }

  std::string checkpoint_topic_;
  CheckpointPlace place_;
  std::string transactional_id_;
  uint64_t token_ = 0;
};

TEST_F(TransactionalProducerTest, CommittedCheckpointReadsBackExactlyAndItsRecordsAreVisible) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  EXPECT_EQ(checkpoint(), std::nullopt) << "a place never committed to has no checkpoint";

  auto p = started_producer();
  ASSERT_TRUE(p);
  const Checkpoint whole{wal::Lsn(0x16B374D848ull), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 10));
  auto r = p->commit(whole, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), whole);
  EXPECT_EQ(p->last_committed(), whole);

  // A PostgreSQL transaction spanning Kafka transactions: rows 0..41 of the
  // one after 16/B374D848.
  const Checkpoint partial{wal::Lsn(0x16B374D848ull), 41};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("b", 10));
  r = p->commit(partial, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), partial);

  auto expected = names("a", 10);
  for (const auto& b : names("b", 10)) expected.push_back(b);
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 20, kTimeout)), expected);
  const auto delivered = reports(*p, 20);
  ASSERT_EQ(delivered.size(), 20u);
  for (const auto& d : delivered) EXPECT_EQ(d.status, relay::DeliveryStatus::kOk) << d.error;
}

// Taking a slot's output calls init() again when the checkpoint read after
// it timed out; the producer it already initialized stays usable.
TEST_F(TransactionalProducerTest, InitAgainAfterItSucceededDoesNothingAndTheProducerCommits) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  auto p = started_producer();
  ASSERT_TRUE(p);
  auto again = p->init(kTimeout);
  ASSERT_TRUE(again) << again.error().describe();
  const Checkpoint whole{wal::Lsn(0x16B374D848ull), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 3));
  auto r = p->commit(whole, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), whole);
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 3, kTimeout)),
            names("a", 3));
}

TEST_F(TransactionalProducerTest, ReportsServedInsideCommitAreHandedOutByTheNextPoll) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  auto p = started_producer();
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 100));
  // No poll() before the commit: librdkafka serves every report while the
  // commit flushes, and the producer keeps them for the caller.
  auto r = p->commit({wal::Lsn(1), std::nullopt}, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(p->in_flight(), 0u);
  pollfd pfd{p->wakeup_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 1) << "held reports must wake the caller's loop";

  std::vector<Report> got;
  p->poll(0ms, [&](const relay::DeliveryReport& d) {
    got.push_back({d.token, d.status, d.error});
  });
  ASSERT_EQ(got.size(), 100u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].token, i + 1);
    EXPECT_EQ(got[i].status, relay::DeliveryStatus::kOk) << got[i].error;
  }
}

TEST_F(TransactionalProducerTest, AbortedTransactionIsInvisibleToReadCommittedAndKeepsCheckpoint) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  auto p = started_producer();
  ASSERT_TRUE(p);
  const Checkpoint first{wal::Lsn(0x100), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 5));
  ASSERT_TRUE(p->commit(first, kTimeout));

  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("b", 5));
  // Written to the log before the abort: only the abort marker hides them.
  const auto written = reports(*p, 10);
  ASSERT_EQ(written.size(), 10u);
  for (const auto& w : written) ASSERT_EQ(w.status, relay::DeliveryStatus::kOk) << w.error;
  auto aborted = p->abort(kTimeout);
  ASSERT_TRUE(aborted) << aborted.error().describe();
  EXPECT_FALSE(p->in_transaction());
  EXPECT_EQ(checkpoint(), first);

  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("c", 5));
  ASSERT_TRUE(p->commit({wal::Lsn(0x200), std::nullopt}, kTimeout));

  auto expected = names("a", 5);
  for (const auto& c : names("c", 5)) expected.push_back(c);
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 10, kTimeout)), expected);
  // The aborted records are in the log all the same.
  EXPECT_EQ(broker().consume(reader("read_uncommitted"), topic, 15, kTimeout).size(), 15u);
}

TEST_F(TransactionalProducerTest, SecondProducerWithTheSameIdFencesTheFirstAndItsOpenTransaction) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  auto a = started_producer();
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->begin());
  produce(*a, topic, names("a", 5));
  const auto written = reports(*a, 5);
  ASSERT_EQ(written.size(), 5u);
  for (const auto& w : written) ASSERT_EQ(w.status, relay::DeliveryStatus::kOk) << w.error;

  // The new owner of the slot: its init bumps the epoch and aborts A's
  // open transaction.
  auto b = started_producer();
  ASSERT_TRUE(b);

  auto committed = a->commit({wal::Lsn(0xA), std::nullopt}, kTimeout);
  ASSERT_FALSE(committed) << "a fenced producer committed";
  EXPECT_EQ(committed.error().code, txn_errc::fenced) << committed.error().describe();
  EXPECT_NE(a->failure(), "");
  relay::OutboxRecord late{topic, 0, "key", {}, "a-late"};
  EXPECT_EQ(a->produce(late, 99).status, relay::DeliveryStatus::kFatal);

  const Checkpoint mine{wal::Lsn(0xB), std::nullopt};
  ASSERT_TRUE(b->begin());
  produce(*b, topic, names("b", 5));
  auto r = b->commit(mine, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), mine);

  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 5, kTimeout)), names("b", 5));
  EXPECT_EQ(broker().consume(reader("read_uncommitted"), topic, 10, kTimeout).size(), 10u);
}

TEST_F(TransactionalProducerTest, CheckpointOfADeposedGroupMemberIsRefusedAsFenced) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  const std::string coordination = unique("slots");
  broker().create_topic(coordination, 2);
  GroupConsumer first(place_.group_id, coordination);
  ASSERT_TRUE(harness::wait_until(
      [&] {
        first.poll();
        return first.assigned() == 2;
      },
      30s, 0ms));

  auto p = started_producer();
  ASSERT_TRUE(p);
  p->use_group_metadata(first.metadata());
  const Checkpoint mine{wal::Lsn(0x1000), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 3));
  auto r = p->commit(mine, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), mine);

  // A second member joins: the group's generation moves on, and the first
  // member's metadata from before describes a member that was deposed.
  auto stale = first.metadata();
  GroupConsumer second(place_.group_id, coordination);
  ASSERT_TRUE(harness::wait_until(
      [&] {
        first.poll();
        second.poll();
        return first.assigned() == 1 && second.assigned() == 1;
      },
      60s, 0ms));

  p->use_group_metadata(std::move(stale));
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("b", 3));
  r = p->commit({wal::Lsn(0x2000), std::nullopt}, kTimeout);
  ASSERT_FALSE(r) << "a deposed member's checkpoint was committed";
  EXPECT_EQ(r.error().code, txn_errc::fenced) << r.error().describe();
  EXPECT_EQ(checkpoint(), mine);
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 3, kTimeout)), names("a", 3));

  // With the current generation's metadata the checkpoint goes through.
  p->use_group_metadata(first.metadata());
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("c", 3));
  r = p->commit({wal::Lsn(0x3000), std::nullopt}, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(checkpoint(), (Checkpoint{wal::Lsn(0x3000), std::nullopt}));
}

TEST_F(TransactionalProducerTest, RecordTooLargeForTheTopicAbortsTheTransactionWithThatReason) {
  const std::string topic = unique("small");
  harness::create_topic(broker().bootstrap(), topic, 1, kTimeout, {{"max.message.bytes", "2000"}});
  auto p = started_producer();
  ASSERT_TRUE(p);
  const Checkpoint before{wal::Lsn(0x10), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, {"ok-0"});
  ASSERT_TRUE(p->commit(before, kTimeout));
  ASSERT_EQ(reports(*p, 1).size(), 1u);

  ASSERT_TRUE(p->begin());
  // Under the producer's message.max.bytes, over the topic's limit, and
  // incompressible, so only the broker can refuse it.
  std::mt19937 rng(7);
  std::string big(20000, '\0');
  for (char& c : big) c = static_cast<char>(rng());
  produce(*p, topic, {big});
  const auto failed = reports(*p, 1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].status, relay::DeliveryStatus::kPermanent) << failed[0].error;
  EXPECT_TRUE(p->must_abort());
  // librdkafka takes nothing more into this transaction, and says it is not
  // the record's fault.
  const relay::OutboxRecord more{topic, 0, "key", {}, "ok-late"};
  const auto refused = p->produce(more, ++token_);
  EXPECT_EQ(refused.outcome, relay::ProduceOutcome::kRejected);
  EXPECT_EQ(refused.status, relay::DeliveryStatus::kRetriable) << refused.error;

  const int wakeup_fd = p->wakeup_fd();
  auto r = p->commit({wal::Lsn(0x20), std::nullopt}, kTimeout);
  ASSERT_FALSE(r) << "a transaction with a rejected record committed";
  EXPECT_EQ(r.error().code, txn_errc::record_too_large) << r.error().describe();
  EXPECT_TRUE(kafka::is_aborted(r.error().code));
  EXPECT_NE(r.error().message.find("MSG_SIZE_TOO_LARGE"), std::string::npos)
      << r.error().describe();
  EXPECT_EQ(checkpoint(), before);

  // The producer carries on with the next transaction, which a gap in the
  // partition's sequence numbers must not abort, and the caller's loop
  // keeps waiting on the same descriptor.
  EXPECT_EQ(p->wakeup_fd(), wakeup_fd);
  ASSERT_TRUE(p->begin());
  produce(*p, topic, {"ok-1"});
  auto next = p->commit({wal::Lsn(0x30), std::nullopt}, kTimeout);
  ASSERT_TRUE(next) << next.error().describe();
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 2, kTimeout)),
            (std::vector<std::string>{"ok-0", "ok-1"}));
}

// The broker hangs while a commit waits on it: the commit times out with
// its outcome unknown. Called again after the broker is back, it ends
// committed, aborted, or (when the broker's transaction timeout aborted it
// first, which librdkafka reports as _FENCED) with the producer unusable,
// in which case a new one resolves it. Whichever it is, the checkpoint and
// the records a read_committed consumer sees agree.
TEST_F(TransactionalProducerTest, CommitTimedOutWhileTheBrokerHangsEndsAsTheCheckpointSays) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  // A request lost to the hang is sent again after 10 s rather than 60 s.
  const std::map<std::string, std::string> props{{"socket.timeout.ms", "10000"}};
  auto p = started_producer(props);
  ASSERT_TRUE(p);
  const Checkpoint before{wal::Lsn(0x100), std::nullopt};
  ASSERT_TRUE(p->begin());
  produce(*p, topic, {"before"});
  ASSERT_TRUE(p->commit(before, kTimeout));

  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 5));
  ASSERT_EQ(reports(*p, 6).size(), 6u);
  const Checkpoint hung{wal::Lsn(0x200), std::nullopt};
  broker().freeze();
  auto r = p->commit(hung, 3s);
  broker().thaw();
  ASSERT_FALSE(r) << "committed while the broker was frozen";
  EXPECT_EQ(r.error().code, txn_errc::timed_out) << r.error().describe();

  r = p->commit(hung, 90s);
  if (r) {
    std::printf("outcome: the resumed commit committed\n");
  } else if (kafka::is_aborted(r.error().code)) {
    std::printf("outcome: the resumed commit aborted: %s\n", r.error().describe().c_str());
  } else {
    std::printf("outcome: the producer failed: %s\n", r.error().describe().c_str());
    EXPECT_TRUE(r.error().code == txn_errc::fenced || r.error().code == txn_errc::fatal)
        << r.error().describe();
    p = started_producer(props);
    ASSERT_TRUE(p);
  }
  std::vector<std::string> expected{"before"};
  const auto now = checkpoint();
  if (r) {
    EXPECT_EQ(now, hung);
  }
  if (now == hung) {
    for (const auto& a : names("a", 5)) expected.push_back(a);
  } else {
    EXPECT_EQ(now, before);
  }

  // The producer carries on, and its next commit marks the end of what a
  // read_committed consumer must see.
  ASSERT_TRUE(p->begin());
  produce(*p, topic, {"after"});
  auto next = p->commit({wal::Lsn(0x300), std::nullopt}, 90s);
  ASSERT_TRUE(next) << next.error().describe();
  expected.push_back("after");
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, expected.size(), kTimeout)),
            expected);
}

TEST_F(TransactionalProducerTest, PurgedRecordsAbortTheTransactionAndTheNextOneCommits) {
  const std::string topic = unique("orders");
  broker().create_topic(topic, 1);
  // Records wait a second in librdkafka's queue, so the purge finds them all.
  auto p = started_producer({{"linger.ms", "1000"}});
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->begin());
  produce(*p, topic, names("a", 100));
  p->purge();
  const auto purged = reports(*p, 100);
  ASSERT_EQ(purged.size(), 100u);
  for (const auto& r : purged) EXPECT_EQ(r.status, relay::DeliveryStatus::kRetriable) << r.error;
  EXPECT_TRUE(p->must_abort());

  auto r = p->commit({wal::Lsn(0x10), std::nullopt}, kTimeout);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, txn_errc::aborted) << r.error().describe();
  EXPECT_EQ(checkpoint(), std::nullopt);

  ASSERT_TRUE(p->begin());
  produce(*p, topic, {"b"});
  r = p->commit({wal::Lsn(0x20), std::nullopt}, kTimeout);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(values(broker().consume(reader("read_committed"), topic, 1, kTimeout)),
            (std::vector<std::string>{"b"}));
}

TEST_F(TransactionalProducerTest, InitRefusesACheckpointPartitionTheTopicDoesNotHave) {
  place_.partition = 2;  // the topic has partitions 0 and 1
  auto p = make_producer();
  ASSERT_TRUE(p);
  auto r = p->init(60s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, txn_errc::invalid_config) << r.error().describe();
  EXPECT_NE(r.error().message.find("has no partition 2 (it has 2)"), std::string::npos)
      << r.error().describe();
}

TEST_F(TransactionalProducerTest, InitAgainAfterTheCheckpointTopicIsCreatedSucceeds) {
  place_.topic = unique("checkpoints");
  auto p = make_producer();
  ASSERT_TRUE(p);
  auto r = p->init(60s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, txn_errc::invalid_config) << r.error().describe();
  EXPECT_NE(r.error().message.find("(it is missing)"), std::string::npos) << r.error().describe();

  auto partitions =
      kafka::ensure_checkpoint_topic(broker().bootstrap(), {}, place_.topic, 2, kTimeout);
  ASSERT_TRUE(partitions) << partitions.error().describe();
  r = p->init(60s);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(p->begin());
  auto committed = p->commit({wal::Lsn(0x42), std::nullopt}, kTimeout);
  ASSERT_TRUE(committed) << committed.error().describe();
  EXPECT_EQ(checkpoint(), (Checkpoint{wal::Lsn(0x42), std::nullopt}));
}

TEST_F(TransactionalProducerTest, ForeignOffsetMetadataAtTheCheckpointPlaceIsAnErrorNamingIt) {
  // Someone else's commit at the place: a plain consumer's offset.
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(
      rd_kafka_conf_set(conf, "bootstrap.servers", broker().bootstrap().c_str(), err, sizeof err),
      RD_KAFKA_CONF_OK);
  ASSERT_EQ(rd_kafka_conf_set(conf, "group.id", place_.group_id.c_str(), err, sizeof err),
            RD_KAFKA_CONF_OK);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  ASSERT_TRUE(rk) << err;
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  auto* tp = rd_kafka_topic_partition_list_add(offsets, place_.topic.c_str(), place_.partition);
  tp->offset = 42;
  tp->metadata = strdup("host-1/4242");
  tp->metadata_size = 11;
  EXPECT_EQ(rd_kafka_commit(rk, offsets, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(offsets);
  rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);

  auto c = kafka::read_checkpoint(broker().bootstrap(), {}, place_, kTimeout);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, txn_errc::malformed_checkpoint);
  EXPECT_NE(c.error().message.find("'host-1/4242'"), std::string::npos) << c.error().describe();
  EXPECT_NE(c.error().message.find(place_.group_id), std::string::npos) << c.error().describe();
}

// A broker whose transaction state log cannot be created (it asks for more
// replicas than there are brokers) has no transaction coordinator: init()
// times out and says where to look.
TEST(TransactionalProducerStartup, BrokerWithoutAUsableTransactionLogIsNamedAtInit) {
  harness::KafkaBroker::Options options;
  options.extra_properties = {"transaction.state.log.replication.factor=3"};
  auto lone = harness::KafkaBroker::start(options);
  const std::string checkpoints = unique("checkpoints");
  ASSERT_TRUE(kafka::ensure_checkpoint_topic(lone->bootstrap(), {}, checkpoints, 1, kTimeout));
  kafka::TransactionalProducerOptions o;
  o.producer.brokers = lone->bootstrap();
  o.transactional_id = kafka::transactional_id_for(kafka::kDefaultTransactionalIdPrefix, "lone");
  o.checkpoint = CheckpointPlace{unique("group"), checkpoints, 0};
  auto p = TransactionalProducer::create(o);
  ASSERT_TRUE(p) << p.error().describe();
  auto r = (*p)->init(10s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, txn_errc::timed_out) << r.error().describe();
  EXPECT_NE(r.error().message.find("__transaction_state"), std::string::npos)
      << r.error().describe();
}

}  // namespace
