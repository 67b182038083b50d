// SlotCore against a scripted Publisher: deliveries that come back out of
// order, fail, time out, are rejected at produce() or wait for room, on
// script; then a randomized model test over thousands of schedules, with
// dead-letter replacement and session restarts, checking the two rules the
// ledger keeps: the reported position never passes a row Kafka does not hold,
// and never goes backwards.
#include "relay/slot_core.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <map>
#include <random>
#include <set>

#include "envelope_writer.h"
#include "relay/errc.h"
#include "relay/lease.h"

namespace relay {
namespace {

using std::chrono::milliseconds;
using Clock = SlotCore::Clock;

constexpr wal::RelId kOutbox = 16384;

// The core logs every dead-lettered row at error level; the schedules below
// dead-letter thousands.
const bool kQuiet = [] {
  spdlog::set_level(spdlog::level::off);
  return true;
}();

std::optional<std::string> header(const OutboxRecord& r, std::string_view key) {
  for (const auto& h : r.headers) {
    if (h.key == key) return h.value;
  }
  return std::nullopt;
}

// A Publisher whose deliveries the test decides. Records wait in flight until
// the script reports them; reports reach the core only from poll(), like
// librdkafka's.
class ScriptedPublisher final : public Publisher {
 public:
  struct Sent {
    OutboxRecord record;
    uint64_t token;
  };

  ProduceResult produce(const OutboxRecord& record, uint64_t token) override {
    if (reject_next_) {
      ProduceResult r = *reject_next_;
      reject_next_.reset();
      return r;
    }
    if (in_flight() >= capacity) return {ProduceOutcome::kQueueFull};
    sent_.push_back(Sent{record, token});
    ++produced;
    return {ProduceOutcome::kQueued};
  }

  int poll(std::chrono::milliseconds, const ReportFn& on_report) override {
    int served = 0;
    while (!ready_.empty()) {
      DeliveryReport report = std::move(ready_.front());
      ready_.pop_front();
      on_report(report);
      ++served;
    }
    return served;
  }

  size_t in_flight() const override { return sent_.size() + ready_.size(); }
  uint64_t in_flight_bytes() const override { return 0; }

  // librdkafka's purge: records not yet sent fail with a retriable error.
  void purge() override {
    while (!sent_.empty()) report(0, DeliveryStatus::kRetriable, DeliveryReason::kOther);
  }

  // Moves in-flight record `index` to the reports poll() hands out next.
  Sent report(size_t index, DeliveryStatus status, DeliveryReason reason = DeliveryReason::kNone) {
    Sent s = sent_.at(index);
    sent_.erase(sent_.begin() + static_cast<std::ptrdiff_t>(index));
    DeliveryReport r;
    r.token = s.token;
    r.status = status;
    r.reason = reason;
    r.topic = topic_storage_.emplace_back(s.record.topic);
    if (status == DeliveryStatus::kOk) {
      delivered.push_back(s.record);
      if (auto id = header(s.record, "outbox-id")) delivered_ids.insert(*id);
    } else {
      r.error = "scripted failure";
      r.record = s.record;
    }
    ready_.push_back(std::move(r));
    return s;
  }
  void reject_next(DeliveryStatus status, DeliveryReason reason) {
    reject_next_ = ProduceResult{ProduceOutcome::kRejected, status, reason, "scripted rejection"};
  }

  const std::vector<Sent>& sent() const { return sent_; }
  size_t capacity = 1000000;
  size_t produced = 0;
  std::vector<OutboxRecord> delivered;  // in Kafka, in delivery order
  std::set<std::string> delivered_ids;  // their outbox-id headers

 private:
  std::vector<Sent> sent_;
  std::deque<DeliveryReport> ready_;
  std::deque<std::string> topic_storage_;
  std::optional<ProduceResult> reject_next_;
};

// The stream a walsender would send for the outbox of sql/, built message by
// message; values borrow strings it keeps.
class Stream {
 public:
  wal::Relation relation() const {
    wal::Relation r;
    r.relid = kOutbox;
    r.nspname = "public";
    r.relname = "outbox";
    r.columns = {{0, "id", pg_type::kUuid, -1},       {0, "topic", pg_type::kText, -1},
                 {0, "key", pg_type::kText, -1},      {0, "partition", pg_type::kInt4, -1},
                 {0, "headers", pg_type::kJsonb, -1}, {0, "payload", pg_type::kBytea, -1}};
    return r;
  }
  // A row with id number `n`; a null topic makes it a bad row.
  wal::Insert insert(int n, bool null_topic = false) {
    wal::Insert ins;
    ins.relid = kOutbox;
    auto text = [&](std::string s) {
      ins.new_tuple.values.push_back({wal::ColumnKind::text, keep(std::move(s))});
    };
    auto null = [&] { ins.new_tuple.values.push_back({wal::ColumnKind::null, {}}); };
    text(id_of(n));
    if (null_topic) {
      null();
    } else {
      text("orders");
    }
    text("k" + std::to_string(n % 3));
    null();
    null();
    text("\\x6869");
    return ins;
  }
  // A logical decoding message whose envelope names id `n`; an empty id
  // leaves it out (the message's LSN stands in). A bad one has a null topic.
  wal::Message message(int n, wal::Lsn lsn, bool bad = false, std::string_view prefix = "outbox",
                       bool transactional = true) {
    testing::EnvelopeFields f;
    if (n >= 0) f.id = id_of(n);
    if (bad) f.topic.reset();
    f.key = "k" + std::to_string(n % 3);
    f.payload = "hi";
    wal::Message m;
    m.flags = transactional ? wal::Message::kTransactional : 0;
    m.lsn = lsn;
    m.prefix = keep(std::string(prefix));
    m.content = keep(testing::write_envelope(f));
    return m;
  }
  static std::string id_of(int n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "00000000-0000-0000-0000-%012d", n);
    return buf;
  }

 private:
  std::string_view keep(std::string s) { return storage_.emplace_back(std::move(s)); }
  std::deque<std::string> storage_;
};

// The outbox as the catalog describes it at connect.
RelationGuard outbox_guard(const config::Config& cfg) {
  wal::OutboxRelation r;
  r.oid = kOutbox;
  r.nspname = "public";
  r.relname = "outbox";
  r.columns = {{"id", pg_type::kUuid, -1},       {"topic", pg_type::kText, -1},
               {"key", pg_type::kText, -1},      {"partition", pg_type::kInt4, -1},
               {"headers", pg_type::kJsonb, -1}, {"payload", pg_type::kBytea, -1}};
  return *RelationGuard::create(cfg.outbox, r, GuardContext{cfg.postgres.slot, "outbox_pub"});
}

config::Config test_config(config::BadRowPolicy policy = config::BadRowPolicy::kDeadLetter) {
  config::Config cfg;
  cfg.postgres.slot = "test_slot";
  cfg.outbox.on_bad_row = policy;
  return cfg;
}

class SlotCoreTest : public ::testing::Test {
 protected:
  explicit SlotCoreTest(config::BadRowPolicy policy = config::BadRowPolicy::kDeadLetter)
      : cfg_(test_config(policy)),
        router_(*Router::create(cfg_.outbox)),
        core_(cfg_, router_, publisher_, stats_) {}

  void SetUp() override {
    core_.start_session(wal::Lsn(0x1000), outbox_guard(cfg_));
    ASSERT_TRUE(core_.on_message(stream_.relation(), wal::Lsn(0x1000)).ok());
  }

  // A transaction whose rows are `ids`, committed with end LSN `end`.
  common::Result<void> txn(uint64_t end, std::initializer_list<int> ids, int bad_id = -1) {
    wal::Begin b;
    b.final_lsn = wal::Lsn(end - 8);
    b.xid = static_cast<wal::Xid>(end);
    if (auto r = core_.on_message(b, wal::Lsn(end - 64)); !r) return r;
    uint64_t at = end - 60;
    for (int id : ids) {
      if (auto r = core_.on_message(stream_.insert(id, id == bad_id), wal::Lsn(at++)); !r) return r;
    }
    wal::Commit c;
    c.commit_lsn = wal::Lsn(end - 8);
    c.end_lsn = wal::Lsn(end);
    return core_.on_message(c, wal::Lsn(end - 8));
  }

  wal::Lsn confirm() { return *core_.feedback(Clock::now(), true); }

  size_t index_of(int id) const {
    const auto& sent = publisher_.sent();
    for (size_t i = 0; i < sent.size(); ++i) {
      if (header(sent[i].record, "outbox-id") == Stream::id_of(id)) return i;
    }
    ADD_FAILURE() << "id " << id << " not in flight";
    return 0;
  }
  void deliver(int id) { publisher_.report(index_of(id), DeliveryStatus::kOk); }

  config::Config cfg_;
  Router router_;
  ScriptedPublisher publisher_;
  PipelineStats stats_;
  SlotCore core_;
  Stream stream_;
};

TEST_F(SlotCoreTest, OutOfOrderDeliveriesConfirmOnlyTheAcknowledgedPrefix) {
  ASSERT_TRUE(txn(0x2000, {1, 2}).ok());
  ASSERT_TRUE(txn(0x3000, {3}).ok());
  deliver(3);
  deliver(2);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  deliver(1);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x3000));
  EXPECT_EQ(stats_.records_published.load(), 3u);
}

TEST_F(SlotCoreTest, ATimedOutDeliveryRestartsTheSessionWithoutConfirmingIt) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  ASSERT_TRUE(txn(0x3000, {2}).ok());
  deliver(2);
  publisher_.report(index_of(1), DeliveryStatus::kRetriable, DeliveryReason::kTimeout);
  auto served = core_.serve(milliseconds(0));
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code, make_error_code(errc::delivery_failed));
  EXPECT_NE(served.error().message.find("timeout"), std::string::npos) << served.error().message;
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

TEST_F(SlotCoreTest, ARecordKafkaRefusesIsDeadLetteredAndItsReplacementConfirmsIt) {
  ASSERT_TRUE(txn(0x2000, {1, 2}).ok());
  publisher_.report(index_of(1), DeliveryStatus::kPermanent, DeliveryReason::kTooLarge);
  deliver(2);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  ASSERT_EQ(publisher_.sent().size(), 1u);
  const auto& dlq = publisher_.sent()[0].record;
  EXPECT_EQ(dlq.topic, cfg_.outbox.dead_letter_topic);
  EXPECT_EQ(header(dlq, "outbox-original-topic"), "orders");
  // Too large: the payload stays behind, its size goes along.
  EXPECT_EQ(dlq.payload, "");
  EXPECT_EQ(header(dlq, "outbox-payload-size"), "2");
  publisher_.report(0, DeliveryStatus::kOk);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
  EXPECT_EQ(stats_.records_dead_lettered.load(), 1u);
}

TEST_F(SlotCoreTest, ARecordOfAnUnknownTopicKeepsItsPayloadInTheDeadLetter) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.report(0, DeliveryStatus::kPermanent, DeliveryReason::kUnknownTopic);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(publisher_.sent().at(0).record.payload, "hi");
}

TEST_F(SlotCoreTest, ADeadLetterThatFailsTooHaltsWithoutConfirming) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.report(0, DeliveryStatus::kPermanent, DeliveryReason::kAuthorization);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  publisher_.report(0, DeliveryStatus::kPermanent, DeliveryReason::kUnknownTopic);
  auto served = core_.serve(milliseconds(0));
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code, make_error_code(errc::halted));
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

TEST_F(SlotCoreTest, ARejectionAtProduceIsDeadLetteredInPlace) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.reject_next(DeliveryStatus::kPermanent, DeliveryReason::kTooLarge);
  ASSERT_TRUE(txn(0x3000, {2}).ok());
  ASSERT_EQ(publisher_.sent().size(), 2u);
  EXPECT_EQ(publisher_.sent()[1].record.topic, cfg_.outbox.dead_letter_topic);
  publisher_.report(1, DeliveryStatus::kOk);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  deliver(1);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x3000));
}

TEST_F(SlotCoreTest, ABadRowIsDeadLetteredAndCountsForItsTransaction) {
  ASSERT_TRUE(txn(0x2000, {1, 2}, /*bad_id=*/2).ok());
  ASSERT_EQ(publisher_.sent().size(), 2u);
  EXPECT_EQ(publisher_.sent()[1].record.topic, cfg_.outbox.dead_letter_topic);
  deliver(1);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  publisher_.report(0, DeliveryStatus::kOk);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
}

TEST_F(SlotCoreTest, AFullQueueHoldsRecordsInOrderAndAppliesBackpressure) {
  publisher_.capacity = 1;
  ASSERT_TRUE(txn(0x2000, {1, 2, 3}).ok());
  EXPECT_TRUE(core_.backpressured());
  EXPECT_EQ(publisher_.sent().size(), 1u);
  for (int id : {1, 2, 3}) {
    ASSERT_EQ(publisher_.sent().size(), 1u);
    EXPECT_EQ(header(publisher_.sent()[0].record, "outbox-id"), Stream::id_of(id));
    publisher_.report(0, DeliveryStatus::kOk);
    ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  }
  EXPECT_FALSE(core_.backpressured());
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
}

TEST_F(SlotCoreTest, ReportsOfAPreviousSessionConfirmNothingInTheNextOne) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  // Reconnect: the server replays the transaction.
  EXPECT_EQ(core_.start_session(wal::Lsn(0x1000), outbox_guard(cfg_)), wal::Lsn(0x1000));
  ASSERT_TRUE(core_.on_message(stream_.relation(), wal::Lsn(0x1000)).ok());
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  ASSERT_EQ(publisher_.sent().size(), 2u);
  publisher_.report(0, DeliveryStatus::kOk);  // the first session's copy
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  publisher_.report(0, DeliveryStatus::kOk);
  ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
}

TEST_F(SlotCoreTest, AFatalProducerErrorEndsTheSession) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.report(0, DeliveryStatus::kFatal, DeliveryReason::kFenced);
  auto served = core_.serve(milliseconds(0));
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code, make_error_code(errc::producer_failed));
  EXPECT_NE(served.error().message.find("fenced"), std::string::npos);
}

TEST_F(SlotCoreTest, AnInsertOutsideATransactionIsAnError) {
  auto r = core_.on_message(stream_.insert(1), wal::Lsn(0x1500));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::stream_out_of_order));
}

TEST_F(SlotCoreTest, FencingDropsUnsentRecordsAndConfirmsNothingMore) {
  ASSERT_TRUE(txn(0x2000, {1, 2}).ok());
  deliver(1);
  auto fenced = core_.fence("test");
  EXPECT_EQ(fenced.code, make_error_code(errc::fenced));
  EXPECT_TRUE(core_.drain(milliseconds(100), milliseconds(100)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

class SlotCoreHaltTest : public SlotCoreTest {
 protected:
  SlotCoreHaltTest() : SlotCoreTest(config::BadRowPolicy::kHalt) {}
};

TEST_F(SlotCoreHaltTest, ARefusedRecordHaltsUnderTheHaltPolicy) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.report(0, DeliveryStatus::kPermanent, DeliveryReason::kTooLarge);
  auto served = core_.serve(milliseconds(0));
  ASSERT_FALSE(served.ok());
  EXPECT_EQ(served.error().code, make_error_code(errc::halted));
  EXPECT_EQ(publisher_.sent().size(), 0u);
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

TEST_F(SlotCoreHaltTest, ABadRowHaltsUnderTheHaltPolicy) {
  auto r = txn(0x2000, {1}, /*bad_id=*/1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::halted));
}

// The model: a database whose outbox transactions are streamed, replayed after
// restarts, delivered in random order, failed, dead-lettered and rejected at
// random. A row is safe once any copy of it, or its dead-letter record, is in
// Kafka. Every position the core reports must cover only safe rows, and must
// never be lower than one it reported before.
TEST(SlotCoreModel, ReportedPositionNeverPassesAnUndeliveredRowNorGoesBackwards) {
  constexpr int kSchedules = 3000;
  for (int seed = 1; seed <= kSchedules; ++seed) {
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };

    config::Config cfg = test_config();
    cfg.postgres.status_interval = milliseconds(1000);
    Router router = *Router::create(cfg.outbox);
    ScriptedPublisher publisher;
    publisher.capacity = 1 + rng() % 8;
    PipelineStats stats;
    SlotCore core(cfg, router, publisher, stats);
    Stream stream;

    // The database: transaction i ends at (i + 1) * 0x100 and holds rows
    // i * 10 .. i * 10 + n - 1; some rows are bad (null topic).
    struct Txn {
      uint64_t end;
      std::vector<int> ids;
      std::set<int> bad;
    };
    std::vector<Txn> db;
    const int txns = 5 + static_cast<int>(rng() % 20);
    for (int i = 0; i < txns; ++i) {
      Txn t{static_cast<uint64_t>(i + 1) * 0x100, {}, {}};
      const int n = static_cast<int>(rng() % 4);
      for (int r = 0; r < n; ++r) {
        t.ids.push_back(i * 10 + r);
        if (chance(5)) t.bad.insert(i * 10 + r);
      }
      db.push_back(t);
    }
    auto safe = [&](int id) { return publisher.delivered_ids.count(Stream::id_of(id)) > 0; };

    uint64_t server_confirmed = 0;  // what the slot holds
    wal::Lsn last_reported;
    auto now = Clock::time_point() + std::chrono::hours(1);
    auto check = [&](std::optional<wal::Lsn> reported) {
      if (!reported) return;
      ASSERT_GE(*reported, last_reported) << "feedback went backwards";
      for (const auto& t : db) {
        if (t.end > reported->value()) break;
        for (int id : t.ids) {
          ASSERT_TRUE(safe(id))
              << "reported " << reported->to_string() << " past row " << id
              << " that Kafka does not hold";
        }
      }
      last_reported = *reported;
      // A status update may be lost with the connection.
      if (chance(80)) server_confirmed = std::max(server_confirmed, reported->value());
    };

    size_t next = 0;  // next transaction the server sends
    bool in_txn = false;
    size_t next_row = 0;
    auto restart = [&] {
      // Sometimes the server restarts with an older copy of the slot.
      const uint64_t slot = chance(20) ? server_confirmed / 2 : server_confirmed;
      const wal::Lsn from = core.start_session(wal::Lsn(slot), outbox_guard(cfg));
      ASSERT_GE(from, last_reported);
      next = 0;
      while (next < db.size() && db[next].end <= from.value()) ++next;
      in_txn = false;
      ASSERT_TRUE(core.on_message(stream.relation(), from).ok());
    };
    restart();

    for (int step = 0; step < 400; ++step) {
      now += milliseconds(rng() % 700);
      const int action = static_cast<int>(rng() % 100);
      if (action < 40 && !core.backpressured() && next < db.size()) {
        // The server sends the next message of the stream.
        Txn& t = db[next];
        common::Result<void> r;
        if (!in_txn) {
          wal::Begin b;
          b.final_lsn = wal::Lsn(t.end - 8);
          b.xid = static_cast<wal::Xid>(next + 1);
          r = core.on_message(b, wal::Lsn(t.end - 0x80));
          in_txn = true;
          next_row = 0;
        } else if (next_row < t.ids.size()) {
          const int id = t.ids[next_row];
          if (chance(3)) publisher.reject_next(DeliveryStatus::kPermanent, DeliveryReason::kTooLarge);
          r = core.on_message(stream.insert(id, t.bad.count(id) > 0),
                              wal::Lsn(t.end - 0x40 + next_row));
          ++next_row;
        } else {
          wal::Commit c;
          c.end_lsn = wal::Lsn(t.end);
          r = core.on_message(c, wal::Lsn(t.end - 8));
          in_txn = false;
          ++next;
        }
        if (!r) restart();
      } else if (action < 45 && !in_txn) {
        // A keepalive: the server's WAL end, never past the next transaction.
        const uint64_t end = next < db.size() ? db[next].end - 0x100 : db.back().end + 0x1000;
        core.on_keepalive(wal::Lsn(end));
      } else if (action < 85 && !publisher.sent().empty()) {
        // Kafka answers for one record in flight, in any order.
        const size_t i = rng() % publisher.sent().size();
        const int fate = static_cast<int>(rng() % 100);
        if (fate < 85) {
          publisher.report(i, DeliveryStatus::kOk);
        } else if (fate < 95) {
          publisher.report(i, DeliveryStatus::kPermanent, DeliveryReason::kUnknownTopic);
        } else {
          publisher.report(i, DeliveryStatus::kRetriable, DeliveryReason::kTimeout);
        }
        if (!core.serve(milliseconds(0))) {
          check(core.feedback(now, true));
          restart();
        }
      } else if (action < 97) {
        check(core.feedback(now, chance(20)));
      } else {
        // The connection drops.
        check(core.feedback(now, true));
        restart();
      }
      if (HasFatalFailure()) return;
    }
    // Kafka answers everything; the stream runs to its end.
    for (int round = 0; round < 200 && (next < db.size() || in_txn || publisher.in_flight() > 0);
         ++round) {
      while (!publisher.sent().empty()) publisher.report(0, DeliveryStatus::kOk);
      if (!core.serve(milliseconds(0))) restart();
      while (!core.backpressured() && next < db.size()) {
        Txn& t = db[next];
        if (!in_txn) {
          wal::Begin b;
          b.final_lsn = wal::Lsn(t.end - 8);
          ASSERT_TRUE(core.on_message(b, wal::Lsn(t.end - 0x80)).ok());
          in_txn = true;
          next_row = 0;
        } else if (next_row < t.ids.size()) {
          const int id = t.ids[next_row];
          ASSERT_TRUE(core.on_message(stream.insert(id, t.bad.count(id) > 0),
                                      wal::Lsn(t.end - 0x40 + next_row))
                          .ok());
          ++next_row;
        } else {
          wal::Commit c;
          c.end_lsn = wal::Lsn(t.end);
          ASSERT_TRUE(core.on_message(c, wal::Lsn(t.end - 8)).ok());
          in_txn = false;
          ++next;
        }
      }
    }
    now += milliseconds(20000);
    auto final_position = core.feedback(now, true);
    check(final_position);
    // With every record delivered, the whole stream is confirmed.
    ASSERT_TRUE(final_position.has_value());
    EXPECT_GE(*final_position, wal::Lsn(db.back().end));
    if (HasFatalFailure()) return;
  }
}

// Kafka with transactions, on script: records are written (reported) inside
// an open transaction and become visible only when it commits; a failed
// delivery dooms the transaction, whose commit then aborts it.
class ScriptedTransactions final : public TransactionalPublisher {
 public:
  common::Result<void> begin() override {
    open_ = true;
    return {};
  }
  common::Result<void> commit(const Checkpoint& checkpoint, milliseconds wait) override {
    if (running_) {
      EXPECT_EQ(*running_, checkpoint) << "a running commit resumed with another checkpoint";
    }
    // A slow commit runs over several calls that do not wait; the core reads
    // on meanwhile. One that waits sees it through.
    if (slow && !finish_running && wait == milliseconds(0)) {
      running_ = checkpoint;
      return common::Error{make_error_code(errc::unacknowledged), "commit still running"};
    }
    finish_running = false;
    running_.reset();
    return complete(checkpoint);
  }
  common::Result<void> complete(const Checkpoint& checkpoint) {
    // librdkafka flushes every delivery before it commits.
    while (!sent_.empty()) report(0, DeliveryStatus::kOk);
    if (doomed_) {
      abort_now();
      return common::Error{make_error_code(errc::delivery_failed), "aborted"};
    }
    for (const auto& id : written_) ++visible[id];
    written_.clear();
    checkpoint_ = checkpoint;
    open_ = false;
    ++commits;
    return {};
  }
  // An abort waits for a running commit, which the coordinator may have
  // completed already.
  common::Result<void> abort(milliseconds) override {
    if (running_) {
      const Checkpoint c = *running_;
      running_.reset();
      if (complete_running_on_abort) {
        (void)complete(c);
        return {};
      }
    }
    abort_now();
    return {};
  }
  bool in_transaction() const override { return open_; }
  bool commit_pending() const override { return running_.has_value(); }
  common::Result<void> reset() override { return {}; }

  ProduceResult produce(const OutboxRecord& record, uint64_t token) override {
    EXPECT_TRUE(open_) << "produce() outside a transaction";
    EXPECT_FALSE(running_) << "produce() while a commit runs";
    if (reject_next_) {
      reject_next_ = false;
      return {ProduceOutcome::kRejected, DeliveryStatus::kPermanent, DeliveryReason::kTooLarge,
              "scripted rejection"};
    }
    if (in_flight() >= capacity) return {ProduceOutcome::kQueueFull};
    sent_.push_back({record, token});
    return {ProduceOutcome::kQueued};
  }
  int poll(milliseconds, const ReportFn& on_report) override {
    int served = 0;
    while (!ready_.empty()) {
      DeliveryReport r = std::move(ready_.front());
      ready_.pop_front();
      on_report(r);
      ++served;
    }
    return served;
  }
  size_t in_flight() const override { return sent_.size() + ready_.size(); }
  uint64_t in_flight_bytes() const override { return 0; }
  void purge() override {
    while (!sent_.empty()) report(0, DeliveryStatus::kRetriable);
  }

  // A record refused once is refused again, as a too-large record is.
  void report(size_t index, DeliveryStatus status) {
    auto s = sent_.at(index);
    sent_.erase(sent_.begin() + static_cast<std::ptrdiff_t>(index));
    const std::string id = *header(s.record, "outbox-id");
    const bool dead_letter = s.record.topic != "orders";
    if (!dead_letter && refused_.count(id)) status = DeliveryStatus::kPermanent;
    if (!dead_letter && status == DeliveryStatus::kPermanent) refused_.insert(id);
    DeliveryReport r;
    r.token = s.token;
    r.status = status;
    r.reason = status == DeliveryStatus::kPermanent ? DeliveryReason::kUnknownTopic
                                                    : DeliveryReason::kNone;
    r.topic = topics_.emplace_back(s.record.topic);
    if (status == DeliveryStatus::kOk) {
      written_.push_back(*header(s.record, "outbox-id"));
    } else {
      doomed_ = true;
      r.error = "scripted failure";
      r.record = s.record;
    }
    ready_.push_back(std::move(r));
  }
  size_t unreported() const { return sent_.size(); }
  void reject_next() { reject_next_ = true; }
  void forget_reports() { ready_.clear(); }
  const std::optional<Checkpoint>& committed_checkpoint() const { return checkpoint_; }

  size_t capacity = 1000000;
  int commits = 0;
  bool slow = false;
  bool finish_running = false;
  bool complete_running_on_abort = true;
  std::map<std::string, int> visible;  // outbox-id -> copies a read_committed reader sees

 private:
  void abort_now() {
    purge();
    written_.clear();
    open_ = false;
    doomed_ = false;
  }
  std::vector<ScriptedPublisher::Sent> sent_;
  std::deque<DeliveryReport> ready_;
  std::deque<std::string> topics_;
  std::vector<std::string> written_;
  std::optional<Checkpoint> checkpoint_;
  std::optional<Checkpoint> running_;
  std::set<std::string> refused_;
  bool open_ = false;
  bool doomed_ = false;
  bool reject_next_ = false;
};

// Exactly once over thousands of schedules: records written out of order,
// refused inside a transaction (replayed as dead letters), rejected at
// produce(), connections dropped, and the process killed (a new core that
// knows only the slot and the checkpoint read back from Kafka). Every
// reported position covers only rows a read_committed reader sees; in the
// end every row is seen exactly once. With `messages` (outbox.source: both)
// rows are interleaved with the relay's messages, which count like rows in a
// checkpoint, with messages of another prefix, which count for nothing, and
// with non-transactional messages between transactions.
void exactly_once_model(bool messages) {
  constexpr int kSchedules = 1500;
  for (int seed = 1; seed <= kSchedules; ++seed) {
    SCOPED_TRACE("seed=" + std::to_string(seed));
    std::mt19937 rng(seed);
    auto chance = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };

    config::Config cfg = test_config();
    if (messages) {
      cfg.outbox.source = config::OutboxSource::kBoth;
      cfg.outbox.allow_non_transactional_messages = true;
    }
    Router router = *Router::create(cfg.outbox);
    ScriptedTransactions kafka;
    kafka.capacity = 1 + rng() % 8;
    kafka.slow = chance(50);
    PipelineStats stats;
    SlotCoreOptions options;
    options.commit_policy.interval = milliseconds(rng() % 2000);
    options.commit_policy.max_records = 1 + rng() % 6;
    std::unique_ptr<SlotCore> core;
    Stream stream;

    struct Txn {
      uint64_t end;
      std::vector<int> ids;
      std::set<int> bad;
      std::set<int> messages;  // ids sent as messages of the relay's prefix
      std::set<int> foreign;   // ids preceded by a message of another prefix
      // One message decoded on its own at end - 1, outside any transaction.
      bool non_transactional = false;
    };
    std::vector<Txn> db;
    const int txns = 5 + static_cast<int>(rng() % 15);
    for (int i = 0; i < txns; ++i) {
      Txn t{static_cast<uint64_t>(i + 1) * 0x100, {}, {}};
      if (messages && chance(10)) {
        t.non_transactional = true;
        t.ids.push_back(i * 10);
        t.messages.insert(i * 10);
        db.push_back(t);
        continue;
      }
      const int n = static_cast<int>(rng() % 6);
      for (int r = 0; r < n; ++r) {
        t.ids.push_back(i * 10 + r);
        if (chance(4)) t.bad.insert(i * 10 + r);
        if (messages && chance(40)) t.messages.insert(i * 10 + r);
        if (messages && chance(15)) t.foreign.insert(i * 10 + r);
      }
      db.push_back(t);
    }

    uint64_t server_confirmed = 0;
    // Every position the server was told: a restarted server may come back
    // with any older one of them on disk.
    std::vector<uint64_t> told{0};
    wal::Lsn last_reported;
    auto now = Clock::time_point() + std::chrono::hours(1);
    auto check = [&](std::optional<wal::Lsn> reported) {
      if (!reported) return;
      ASSERT_GE(*reported, last_reported) << "feedback went backwards";
      for (const auto& t : db) {
        if (t.end > reported->value()) break;
        for (int id : t.ids) {
          ASSERT_EQ(kafka.visible.count(Stream::id_of(id)), 1u)
              << "reported " << reported->to_string() << " past row " << id
              << " that no read_committed reader sees";
        }
      }
      last_reported = *reported;
      if (chance(80) && reported->value() > server_confirmed) {
        server_confirmed = reported->value();
        told.push_back(server_confirmed);
      }
    };

    size_t next = 0;
    bool in_txn = false;
    size_t next_row = 0;
    auto restart = [&](bool crash) {
      if (!core || crash) {
        // A new process: all it knows is the slot and Kafka's checkpoint.
        // Its init() fences the dead process's open transaction (a commit
        // it had asked for may have completed or not) before the checkpoint
        // is read.
        kafka.complete_running_on_abort = chance(50);
        if (kafka.in_transaction()) {
          EXPECT_TRUE(kafka.abort(milliseconds(0)).ok());
        }
        kafka.forget_reports();  // they were the dead producer's
        core = std::make_unique<SlotCore>(cfg, router, kafka, stats, options);
        if (kafka.committed_checkpoint()) core->restore(*kafka.committed_checkpoint());
        last_reported = wal::Lsn();
      }
      const uint64_t slot = chance(20) ? told[rng() % told.size()] : server_confirmed;
      const wal::Lsn from = core->start_session(wal::Lsn(slot), outbox_guard(cfg));
      ASSERT_GE(from.value(), slot);
      next = 0;
      while (next < db.size() && db[next].end <= from.value()) ++next;
      in_txn = false;
      ASSERT_TRUE(core->on_message(stream.relation(), from).ok());
    };
    restart(true);

    auto send_next = [&]() -> common::Result<void> {
      Txn& t = db[next];
      if (t.non_transactional) {
        const int id = t.ids[0];
        ++next;
        return core->on_message(
            stream.message(id, wal::Lsn(t.end - 1), t.bad.count(id) > 0, "outbox", false),
            wal::Lsn(t.end - 1));
      }
      if (!in_txn) {
        wal::Begin b;
        b.final_lsn = wal::Lsn(t.end - 8);
        b.xid = static_cast<wal::Xid>(next + 1);
        in_txn = true;
        next_row = 0;
        return core->on_message(b, wal::Lsn(t.end - 0x80));
      }
      if (next_row < t.ids.size()) {
        const int id = t.ids[next_row];
        const wal::Lsn at(t.end - 0x40 + 2 * next_row++);
        if (t.foreign.count(id)) {
          auto r = core->on_message(stream.message(id, at, false, "another"), at);
          if (!r) return r;
        }
        if (t.messages.count(id)) {
          const wal::Lsn own(at.value() + 1);
          return core->on_message(stream.message(id, own, t.bad.count(id) > 0), own);
        }
        return core->on_message(stream.insert(id, t.bad.count(id) > 0), at);
      }
      wal::Commit c;
      c.end_lsn = wal::Lsn(t.end);
      in_txn = false;
      ++next;
      return core->on_message(c, wal::Lsn(t.end - 8));
    };

    for (int step = 0; step < 400; ++step) {
      now += milliseconds(rng() % 400);
      const int action = static_cast<int>(rng() % 100);
      if (action < 40 && !core->backpressured() && next < db.size()) {
        if (in_txn && chance(2)) kafka.reject_next();
        if (!send_next()) restart(false);
      } else if (action < 45 && !in_txn) {
        const uint64_t end = next < db.size() ? db[next].end - 0x100 : db.back().end + 0x1000;
        core->on_keepalive(wal::Lsn(end));
      } else if (action < 75 && kafka.unreported() > 0) {
        const size_t i = rng() % kafka.unreported();
        kafka.report(i, chance(95) ? DeliveryStatus::kOk : DeliveryStatus::kPermanent);
        if (!core->serve(milliseconds(0))) restart(false);
      } else if (action < 80) {
        if (!core->maybe_commit(now, chance(50))) restart(false);
      } else if (action < 85) {
        kafka.finish_running = true;
        if (!core->maybe_commit(now)) restart(false);
      } else if (action < 96) {
        check(core->feedback(now, chance(20)));
      } else if (action < 98) {
        check(core->feedback(now, true));
        restart(false);
      } else {
        restart(true);  // kill -9
      }
      if (::testing::Test::HasFatalFailure()) return;
    }
    kafka.slow = false;
    for (int round = 0; round < 400 && (next < db.size() || in_txn || kafka.in_transaction());
         ++round) {
      while (kafka.unreported() > 0) kafka.report(0, DeliveryStatus::kOk);
      if (!core->serve(milliseconds(0))) restart(false);
      while (!core->backpressured() && next < db.size()) {
        if (!send_next()) {
          restart(false);
          break;
        }
      }
      now += milliseconds(5000);
      if (!core->maybe_commit(now, false, true)) restart(false);
      if (::testing::Test::HasFatalFailure()) return;
    }
    now += milliseconds(20000);
    check(core->feedback(now, true));
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& t : db) {
      for (int id : t.ids) {
        EXPECT_EQ(kafka.visible[Stream::id_of(id)], 1) << "row " << id;
      }
    }
    EXPECT_GE(last_reported, wal::Lsn(db.back().end));
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(SlotCoreModel, ExactlyOnceEveryRowIsReadOnceWhateverIsKilledAndWhen) {
  exactly_once_model(false);
}

TEST(SlotCoreModel, ExactlyOnceEveryRowAndMessageIsReadOnceWhateverIsKilledAndWhen) {
  exactly_once_model(true);
}

// The exactly-once metrics as the core keeps them: Kafka commits with their
// latency and checkpoint, aborts of every kind, and fencing.
class SlotCoreExactlyOnceStats : public ::testing::Test {
 protected:
  SlotCoreExactlyOnceStats()
      : cfg_(test_config()), router_(*Router::create(cfg_.outbox)), core_(make_core()) {}

  SlotCore make_core() {
    hold_lease();
    SlotCoreOptions options;
    options.lease = &lease_;
    return SlotCore(cfg_, router_, kafka_, stats_, options);
  }
  void hold_lease() { lease_.renew(Lease::now(), std::chrono::hours(1)); }
  void start(uint64_t slot_confirmed) {
    core_.start_session(wal::Lsn(slot_confirmed), outbox_guard(cfg_));
    ASSERT_TRUE(core_.on_message(stream_.relation(), wal::Lsn(slot_confirmed)).ok());
  }
  common::Result<void> txn(uint64_t end, std::initializer_list<int> ids) {
    wal::Begin b;
    b.final_lsn = wal::Lsn(end - 8);
    b.xid = static_cast<wal::Xid>(end);
    if (auto r = core_.on_message(b, wal::Lsn(end - 64)); !r) return r;
    uint64_t at = end - 60;
    for (int id : ids) {
      if (auto r = core_.on_message(stream_.insert(id), wal::Lsn(at++)); !r) return r;
    }
    wal::Commit c;
    c.end_lsn = wal::Lsn(end);
    return core_.on_message(c, wal::Lsn(end - 8));
  }

  config::Config cfg_;
  Router router_;
  ScriptedTransactions kafka_;
  PipelineStats stats_;
  Lease lease_;
  SlotCore core_;
  Stream stream_;
};

TEST_F(SlotCoreExactlyOnceStats, ACommitIsCountedTimedAndItsCheckpointPublished) {
  core_.set_system_identifier(42);
  start(0x1000);
  EXPECT_FALSE(stats_.checkpoint_known.load());
  ASSERT_TRUE(txn(0x2000, {1, 2}).ok());
  ASSERT_TRUE(core_.maybe_commit(Clock::now(), false, true).ok());
  EXPECT_EQ(kafka_.committed_checkpoint(), (Checkpoint{wal::Lsn(0x2000), std::nullopt, 42,
                                                        std::nullopt,
                                                        selection_fingerprint(cfg_.outbox)}));
  EXPECT_EQ(stats_.kafka_transactions_committed.load(), 1u);
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 0u);
  EXPECT_EQ(stats_.kafka_commit.snapshot().count, 1u);
  EXPECT_TRUE(stats_.checkpoint_known.load());
  EXPECT_EQ(stats_.checkpoint_lsn.load(), 0x2000u);
  // Nothing open: nothing to commit, nothing counted.
  ASSERT_TRUE(core_.maybe_commit(Clock::now(), false, true).ok());
  EXPECT_EQ(stats_.kafka_transactions_committed.load(), 1u);
  EXPECT_EQ(stats_.kafka_commit.snapshot().count, 1u);
}

// What is read while a commit runs waits outside the producer's count, so a
// quarter of max_inflight_bytes bounds it as a quarter of the messages does.
TEST_F(SlotCoreExactlyOnceStats, ReadingWhileACommitRunsStopsAtAQuarterOfTheBytesLimit) {
  cfg_.limits.max_inflight_bytes = 16;  // a quarter: 4 bytes, one row's key and payload
  kafka_.slow = true;
  start(0x1000);
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  ASSERT_TRUE(core_.maybe_commit(Clock::now() + std::chrono::hours(1)).ok());
  ASSERT_TRUE(kafka_.commit_pending());
  EXPECT_FALSE(core_.backpressured());
  ASSERT_TRUE(txn(0x3000, {2}).ok());  // key "k2" and payload "hi": 4 bytes
  EXPECT_TRUE(core_.backpressured());
  kafka_.finish_running = true;
  ASSERT_TRUE(core_.maybe_commit(Clock::now()).ok());
  EXPECT_EQ(kafka_.commits, 1);
  EXPECT_FALSE(core_.backpressured());
}

TEST_F(SlotCoreExactlyOnceStats, TheCheckpointReadBackAtStartIsPublishedAndForgottenWithIt) {
  core_.restore(Checkpoint{wal::Lsn(0x5000), 3, 7});
  EXPECT_TRUE(stats_.checkpoint_known.load());
  EXPECT_EQ(stats_.checkpoint_lsn.load(), 0x5000u);
  core_.forget_positions();
  EXPECT_FALSE(stats_.checkpoint_known.load());
  EXPECT_EQ(core_.ledger().last_checkpoint(), std::nullopt);
}

TEST_F(SlotCoreExactlyOnceStats, AbortsAreCountedWhetherACommitFailsOrTheCoreAborts) {
  start(0x1000);
  // A delivery Kafka refuses dooms the transaction: its commit aborts it.
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  kafka_.report(0, DeliveryStatus::kPermanent);
  EXPECT_FALSE(core_.maybe_commit(Clock::now(), false, true).ok());
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 1u);
  EXPECT_EQ(stats_.kafka_transactions_committed.load(), 0u);
  EXPECT_FALSE(stats_.checkpoint_known.load());

  // A new session: nothing was open, nothing more aborted.
  start(0x1000);
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 1u);
  ASSERT_TRUE(txn(0x3000, {2}).ok());
  ASSERT_TRUE(kafka_.in_transaction());
  core_.abort_transaction();
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 2u);
  core_.abort_transaction();
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 2u);

  // Open when a session ends (a reconnect): aborted by the next start.
  ASSERT_TRUE(txn(0x4000, {3}).ok());
  start(0x1000);
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 3u);
  EXPECT_EQ(stats_.kafka_transactions_committed.load(), 0u);
}

TEST_F(SlotCoreExactlyOnceStats, FencingIsCountedOncePerSessionWhateverReportsIt) {
  start(0x1000);
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  lease_.revoke();
  EXPECT_EQ(core_.fence("lease expired").code, make_error_code(errc::fenced));
  EXPECT_EQ(stats_.fenced.load(), 1u);
  EXPECT_EQ(stats_.lease_lost.load(), 1u);
  // The transaction it had open is aborted, never committed.
  EXPECT_EQ(stats_.kafka_transactions_aborted.load(), 1u);
  core_.note_fenced();  // the driver sees the same end of the session
  EXPECT_EQ(stats_.fenced.load(), 1u);
  EXPECT_EQ(stats_.lease_lost.load(), 1u);

  // A commit refused while the lease holds: a newer producer of the slot's
  // transactional.id, not the group, took it.
  hold_lease();
  start(0x1000);
  core_.note_fenced();
  EXPECT_EQ(stats_.fenced.load(), 2u);
  EXPECT_EQ(stats_.lease_lost.load(), 1u);
}

// A frozen instance may serve Kafka's refusal before its own lease check:
// the lease was gone all the same, and that is what is counted.
TEST_F(SlotCoreExactlyOnceStats, AFencingReportedAfterTheLeaseRanOutCountsAsALostLease) {
  start(0x1000);
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  lease_.revoke();
  core_.note_fenced();
  EXPECT_EQ(core_.fence("lease expired").code, make_error_code(errc::fenced));
  EXPECT_EQ(stats_.fenced.load(), 1u);
  EXPECT_EQ(stats_.lease_lost.load(), 1u);
}

TEST_F(SlotCoreTest, AReportThatANewerProducerTookTheSlotCountsAsFenced) {
  ASSERT_TRUE(txn(0x2000, {1, 2}).ok());
  publisher_.report(0, DeliveryStatus::kFatal, DeliveryReason::kFenced);
  publisher_.report(0, DeliveryStatus::kFatal, DeliveryReason::kFenced);
  EXPECT_FALSE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(stats_.fenced.load(), 1u);
}

TEST_F(SlotCoreTest, AFatalErrorForAnotherReasonIsNotFencing) {
  ASSERT_TRUE(txn(0x2000, {1}).ok());
  publisher_.report(0, DeliveryStatus::kFatal, DeliveryReason::kOther);
  EXPECT_FALSE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(stats_.fenced.load(), 0u);
}

// Logical decoding messages (outbox.source: both): records of their
// transaction like its rows, in stream order.
class SlotCoreMessagesTest : public ::testing::Test {
 protected:
  explicit SlotCoreMessagesTest(config::OutboxSource source = config::OutboxSource::kBoth,
                                config::BadRowPolicy policy = config::BadRowPolicy::kDeadLetter)
      : cfg_(messages_config(source, policy)),
        router_(*Router::create(cfg_.outbox)),
        core_(cfg_, router_, publisher_, stats_) {}

  static config::Config messages_config(config::OutboxSource source, config::BadRowPolicy policy) {
    config::Config cfg = test_config(policy);
    cfg.outbox.source = source;
    return cfg;
  }

  void SetUp() override {
    core_.start_session(wal::Lsn(0x1000), guard());
    ASSERT_TRUE(core_.on_message(stream_.relation(), wal::Lsn(0x1000)).ok());
  }

  RelationGuard guard() const {
    if (cfg_.outbox.reads_table()) return outbox_guard(cfg_);
    return *RelationGuard::without_table(cfg_.outbox, GuardContext{"test_slot", "outbox_pub"});
  }

  common::Result<void> begin(uint64_t end) {
    wal::Begin b;
    b.final_lsn = wal::Lsn(end - 8);
    b.xid = static_cast<wal::Xid>(end);
    return core_.on_message(b, wal::Lsn(end - 64));
  }
  common::Result<void> commit(uint64_t end) {
    wal::Commit c;
    c.commit_lsn = wal::Lsn(end - 8);
    c.end_lsn = wal::Lsn(end);
    return core_.on_message(c, wal::Lsn(end - 8));
  }
  common::Result<void> message(int id, uint64_t at, bool bad = false,
                               std::string_view prefix = "outbox") {
    return core_.on_message(stream_.message(id, wal::Lsn(at), bad, prefix), wal::Lsn(at));
  }
  common::Result<void> row(int id, uint64_t at) {
    return core_.on_message(stream_.insert(id), wal::Lsn(at));
  }
  // Decoded on its own, outside any transaction.
  common::Result<void> non_transactional(int id, uint64_t at, std::string_view prefix = "outbox",
                                         SlotCore* core = nullptr) {
    return (core ? *core : core_)
        .on_message(stream_.message(id, wal::Lsn(at), false, prefix, false), wal::Lsn(at));
  }

  std::vector<std::string> sent_ids() const {
    std::vector<std::string> ids;
    for (const auto& s : publisher_.sent())
      ids.push_back(header(s.record, "outbox-id").value_or("?"));
    return ids;
  }
  void deliver_all() {
    while (!publisher_.sent().empty()) publisher_.report(0, DeliveryStatus::kOk);
    ASSERT_TRUE(core_.serve(milliseconds(0)).ok());
  }
  wal::Lsn confirm() { return *core_.feedback(Clock::now(), true); }

  config::Config cfg_;
  Router router_;
  ScriptedPublisher publisher_;
  PipelineStats stats_;
  SlotCore core_;
  Stream stream_;
};

TEST_F(SlotCoreMessagesTest, RowsAndMessagesOfOneTransactionAreProducedInStreamOrder) {
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(row(1, 0x1f00).ok());
  ASSERT_TRUE(message(2, 0x1f10).ok());
  ASSERT_TRUE(message(99, 0x1f18, false, "someone-else").ok());
  ASSERT_TRUE(row(3, 0x1f20).ok());
  ASSERT_TRUE(message(-1, 0x1f30).ok());  // no id: its LSN stands in
  ASSERT_TRUE(commit(0x2000).ok());
  EXPECT_EQ(sent_ids(), (std::vector<std::string>{Stream::id_of(1), Stream::id_of(2),
                                                  Stream::id_of(3), "0/1F30"}));
  // Every record of the transaction carries its commit LSN and xid.
  for (const auto& s : publisher_.sent()) {
    EXPECT_EQ(header(s.record, "outbox-lsn"), "0/1FF8");
    EXPECT_EQ(header(s.record, "outbox-xid"), std::to_string(0x2000));
  }
  deliver_all();
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
}

TEST_F(SlotCoreMessagesTest, AMessageIsConfirmedOnlyOnceKafkaHoldsIt) {
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(message(1, 0x1f00).ok());
  ASSERT_TRUE(commit(0x2000).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  publisher_.report(0, DeliveryStatus::kRetriable, DeliveryReason::kTimeout);
  EXPECT_FALSE(core_.serve(milliseconds(0)).ok());
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

TEST_F(SlotCoreMessagesTest, AMalformedMessageIsDeadLetteredInItsPlace) {
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(message(1, 0x1f00, /*bad=*/true).ok());
  wal::Message garbage = stream_.message(2, wal::Lsn(0x1f10));
  garbage.content = "not an envelope";
  ASSERT_TRUE(core_.on_message(garbage, wal::Lsn(0x1f10)).ok());
  ASSERT_TRUE(commit(0x2000).ok());
  ASSERT_EQ(publisher_.sent().size(), 2u);
  const OutboxRecord& null_topic = publisher_.sent()[0].record;
  EXPECT_EQ(null_topic.topic, cfg_.outbox.dead_letter_topic);
  EXPECT_EQ(header(null_topic, "outbox-error"), "topic is null");
  EXPECT_EQ(header(null_topic, "outbox-message-prefix"), "outbox");
  EXPECT_EQ(header(null_topic, "outbox-source-table"), std::nullopt);
  const OutboxRecord& malformed = publisher_.sent()[1].record;
  EXPECT_EQ(malformed.payload, "not an envelope");
  EXPECT_EQ(header(malformed, "outbox-id"), "0/1F10");
  deliver_all();
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
  EXPECT_EQ(stats_.records_dead_lettered.load(), 2u);
}

TEST_F(SlotCoreMessagesTest, ATransactionalMessageOutsideATransactionIsAnError) {
  auto r = message(1, 0x1500);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::stream_out_of_order));
}

// Decoded between transactions and sent again only from a position at or
// before it: confirmed just past it, so a restart neither repeats nor skips.
TEST_F(SlotCoreMessagesTest, ANonTransactionalMessageIsDeadLetteredAndConfirmedJustPastIt) {
  ASSERT_TRUE(non_transactional(1, 0x1800).ok());
  ASSERT_EQ(publisher_.sent().size(), 1u);
  const OutboxRecord& dlq = publisher_.sent()[0].record;
  EXPECT_EQ(dlq.topic, cfg_.outbox.dead_letter_topic);
  EXPECT_EQ(header(dlq, "outbox-original-topic"), "orders");
  EXPECT_EQ(header(dlq, "outbox-lsn"), "0/1800");
  EXPECT_EQ(header(dlq, "outbox-xid"), "0");
  EXPECT_NE(header(dlq, "outbox-error")->find("non-transactional"), std::string::npos);
  EXPECT_EQ(dlq.payload, "hi");
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
  deliver_all();
  EXPECT_EQ(confirm(), wal::Lsn(0x1801));
  // The next transaction is unaffected.
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(row(2, 0x1f00).ok());
  ASSERT_TRUE(commit(0x2000).ok());
  deliver_all();
  EXPECT_EQ(confirm(), wal::Lsn(0x2000));
}

TEST_F(SlotCoreMessagesTest, AnAllowedNonTransactionalMessageIsPublished) {
  config::Config cfg = cfg_;
  cfg.outbox.allow_non_transactional_messages = true;
  SlotCore core(cfg, router_, publisher_, stats_);
  core.start_session(wal::Lsn(0x1000), guard());
  ASSERT_TRUE(non_transactional(1, 0x1800, "outbox", &core).ok());
  ASSERT_EQ(publisher_.sent().size(), 1u);
  EXPECT_EQ(publisher_.sent()[0].record.topic, "orders");
  EXPECT_EQ(header(publisher_.sent()[0].record, "outbox-id"), Stream::id_of(1));
}

TEST_F(SlotCoreMessagesTest, ANonTransactionalMessageOfAnotherPrefixIsSkipped) {
  ASSERT_TRUE(non_transactional(1, 0x1800, "other").ok());
  EXPECT_TRUE(publisher_.sent().empty());
  EXPECT_FALSE(core_.ledger().in_transaction());
}

class SlotCoreTableOnlyTest : public SlotCoreMessagesTest {
 protected:
  SlotCoreTableOnlyTest() : SlotCoreMessagesTest(config::OutboxSource::kTable) {}
};

TEST_F(SlotCoreTableOnlyTest, TheRelaysMessagesAreSkippedWhenTheSourceIsTheTable) {
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(message(1, 0x1f00).ok());
  ASSERT_TRUE(row(2, 0x1f10).ok());
  ASSERT_TRUE(commit(0x2000).ok());
  ASSERT_TRUE(non_transactional(3, 0x2100).ok());
  EXPECT_EQ(sent_ids(), std::vector<std::string>{Stream::id_of(2)});
}

class SlotCoreMessagesOnlyTest : public SlotCoreMessagesTest {
 protected:
  SlotCoreMessagesOnlyTest() : SlotCoreMessagesTest(config::OutboxSource::kMessages) {}
};

// No table is the outbox: a row in the stream is a table in the publication
// that the relay cannot map, never skipped and confirmed.
TEST_F(SlotCoreMessagesOnlyTest, ARowOfATableInThePublicationStopsTheSlot) {
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(message(1, 0x1f00).ok());
  auto r = row(2, 0x1f10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::unmapped_relation));
  EXPECT_NE(r.error().message.find("outbox.source is messages"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(sent_ids(), std::vector<std::string>{Stream::id_of(1)});
}

TEST_F(SlotCoreMessagesOnlyTest, ARowOfAnIgnoredTableIsSkipped) {
  cfg_.outbox.ignore_relations = {"public.outbox"};
  core_.start_session(wal::Lsn(0x1000), guard());
  ASSERT_TRUE(core_.on_message(stream_.relation(), wal::Lsn(0x1000)).ok());
  ASSERT_TRUE(begin(0x2000).ok());
  ASSERT_TRUE(row(1, 0x1f00).ok());
  ASSERT_TRUE(message(2, 0x1f10).ok());
  ASSERT_TRUE(commit(0x2000).ok());
  EXPECT_EQ(sent_ids(), std::vector<std::string>{Stream::id_of(2)});
}

class SlotCoreMessagesHaltTest : public SlotCoreMessagesTest {
 protected:
  SlotCoreMessagesHaltTest()
      : SlotCoreMessagesTest(config::OutboxSource::kMessages, config::BadRowPolicy::kHalt) {}
};

TEST_F(SlotCoreMessagesHaltTest, AMalformedMessageHaltsWithoutConfirmingIt) {
  ASSERT_TRUE(begin(0x2000).ok());
  auto r = message(1, 0x1f00, /*bad=*/true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::halted));
  EXPECT_NE(r.error().message.find("topic is null"), std::string::npos) << r.error().message;
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

TEST_F(SlotCoreMessagesHaltTest, ANonTransactionalMessageHaltsWithoutConfirmingIt) {
  auto r = non_transactional(1, 0x1800);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, make_error_code(errc::halted));
  EXPECT_EQ(confirm(), wal::Lsn(0x1000));
}

// Exactly once, a PostgreSQL transaction committed to Kafka in slices: the
// checkpoint counts its messages like its rows (and messages of another
// prefix not at all), so a new process resumes after exactly the records
// Kafka holds.
TEST(SlotCoreMessagesExactlyOnce, AResumeInsideATransactionSkipsExactlyItsCommittedRecords) {
  config::Config cfg = test_config();
  cfg.outbox.source = config::OutboxSource::kBoth;
  Router router = *Router::create(cfg.outbox);
  ScriptedTransactions kafka;
  PipelineStats stats;
  SlotCoreOptions options;
  options.commit_policy.max_records = 3;
  Stream stream;
  auto replay = [&](SlotCore& core) -> common::Result<void> {
    core.start_session(wal::Lsn(0x1000), outbox_guard(cfg));
    if (auto r = core.on_message(stream.relation(), wal::Lsn(0x1000)); !r) return r;
    wal::Begin b;
    b.final_lsn = wal::Lsn(0x1ff8);
    b.xid = 7;
    if (auto r = core.on_message(b, wal::Lsn(0x1e00)); !r) return r;
    const std::vector<wal::Event> events = {
        stream.insert(1),
        stream.message(2, wal::Lsn(0x1f10)),
        stream.message(90, wal::Lsn(0x1f18), false, "another"),
        stream.message(3, wal::Lsn(0x1f20)),
        stream.insert(4),
        stream.message(5, wal::Lsn(0x1f40)),
    };
    uint64_t at = 0x1f00;
    for (const auto& e : events) {
      if (auto r = core.on_message(e, wal::Lsn(at += 0x10)); !r) return r;
      if (auto r = core.maybe_commit(Clock::now()); !r) return r;
    }
    return {};
  };
  {
    SlotCore first(cfg, router, kafka, stats, options);
    ASSERT_TRUE(replay(first).ok());
    // Killed before the transaction's Commit: Kafka committed 1, 2, 3.
    ASSERT_EQ(kafka.committed_checkpoint(),
              (Checkpoint{wal::Lsn(0x1000), 2, std::nullopt, std::nullopt,
                          selection_fingerprint(cfg.outbox)}));
    ASSERT_TRUE(kafka.abort(milliseconds(0)).ok());
  }
  SlotCore second(cfg, router, kafka, stats, options);
  second.restore(*kafka.committed_checkpoint());
  ASSERT_TRUE(replay(second).ok());
  wal::Commit c;
  c.end_lsn = wal::Lsn(0x2000);
  ASSERT_TRUE(second.on_message(c, wal::Lsn(0x1ff8)).ok());
  ASSERT_TRUE(second.maybe_commit(Clock::now(), false, true).ok());
  for (int id : {1, 2, 3, 4, 5}) EXPECT_EQ(kafka.visible[Stream::id_of(id)], 1) << id;
  EXPECT_EQ(kafka.visible.count(Stream::id_of(90)), 0u);
  EXPECT_EQ(kafka.committed_checkpoint(),
            (Checkpoint{wal::Lsn(0x2000), std::nullopt, std::nullopt, std::nullopt,
                        selection_fingerprint(cfg.outbox)}));
}

}  // namespace
}  // namespace relay
