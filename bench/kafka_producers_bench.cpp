// The transactional producer against the idempotent one, on one throwaway
// broker (tests/harness), in one run: N records of a fixed size through
// each, alternating, the transactional one committing a checkpoint every
// commit interval. Prints records/s and commit latencies. Not a test:
// built beside the integration tests, run by hand.
//
//   kafka_producers_bench [records=100000] [bytes=256] [commit_ms=100] [rounds=2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "harness/kafka_broker.h"
#include "kafka/checkpoint_store.h"
#include "kafka/producer.h"
#include "kafka/transactional_producer.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Params {
  int records = 100000;
  size_t bytes = 256;
  std::chrono::milliseconds commit_interval{100};
};

struct Outcome {
  double seconds = 0;
  int failed = 0;
  std::vector<double> commit_ms;
};

relay::OutboxRecord make_record(const std::string& topic, int i, size_t bytes) {
  relay::OutboxRecord r;
  r.topic = topic;
  r.key = "customer-" + std::to_string(i % 1000);
  r.payload.assign(bytes, static_cast<char>('a' + i % 26));
  // Vary the bytes a little so that compression sees something like rows.
  const std::string id = std::to_string(i);
  std::copy(id.begin(), id.end(), r.payload.begin());
  return r;
}

// Produces every record, polling when the queue is full; `between` runs
// after each record (the transactional run commits from there).
template <typename Between>
Outcome drive(relay::Publisher& p, const std::string& topic, const Params& params,
              Between between) {
  Outcome out;
  int reported = 0;
  auto on_report = [&](const relay::DeliveryReport& r) {
    ++reported;
    if (r.status != relay::DeliveryStatus::kOk) ++out.failed;
  };
  const auto start = Clock::now();
  for (int i = 0; i < params.records; ++i) {
    const relay::OutboxRecord r = make_record(topic, i, params.bytes);
    for (;;) {
      auto result = p.produce(r, static_cast<uint64_t>(i) + 1);
      if (result.outcome == relay::ProduceOutcome::kQueued) break;
      if (result.outcome == relay::ProduceOutcome::kRejected) {
        std::fprintf(stderr, "rejected: %s\n", result.error.c_str());
        std::exit(1);
      }
      p.poll(1ms, on_report);
    }
    p.poll(0ms, on_report);
    between(i, out);
  }
  between(-1, out);
  while (reported < params.records) p.poll(10ms, on_report);
  out.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

void print(const char* name, const Params& params, const Outcome& o) {
  std::printf("%-14s %8d records %6.2f s %9.0f records/s %6.1f MB/s failed=%d", name,
              params.records, o.seconds, params.records / o.seconds,
              params.records * static_cast<double>(params.bytes) / o.seconds / 1e6, o.failed);
  if (!o.commit_ms.empty()) {
    std::vector<double> c = o.commit_ms;
    std::sort(c.begin(), c.end());
    std::printf(" commits=%zu commit_ms p50=%.1f p99=%.1f max=%.1f", c.size(), c[c.size() / 2],
                c[std::min(c.size() - 1, c.size() * 99 / 100)], c.back());
  }
  std::printf("\n");
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Params params;
  int rounds = 2;
  if (argc > 1) params.records = std::atoi(argv[1]);
  if (argc > 2) params.bytes = static_cast<size_t>(std::atoi(argv[2]));
  if (argc > 3) params.commit_interval = std::chrono::milliseconds(std::atoi(argv[3]));
  if (argc > 4) rounds = std::atoi(argv[4]);

  auto broker = harness::KafkaBroker::start();
  const std::string bootstrap = broker->bootstrap();
  auto place = kafka::single_slot_checkpoint_place(kafka::kDefaultTransactionalIdPrefix, "bench");
  if (auto r = kafka::ensure_checkpoint_topic(bootstrap, {}, place.topic, 1, 30s); !r) {
    std::fprintf(stderr, "%s\n", r.error().describe().c_str());
    return 1;
  }
  std::printf("librdkafka %s, %d records of %zu bytes, commits every %lld ms\n",
              kafka::library_version().c_str(), params.records, params.bytes,
              static_cast<long long>(params.commit_interval.count()));

  for (int round = 0; round < rounds; ++round) {
    const std::string suffix = std::to_string(round);
    broker->create_topic("bench-idempotent-" + suffix, 6);
    broker->create_topic("bench-transactional-" + suffix, 6);

    kafka::ProducerOptions po;
    po.brokers = bootstrap;
    {
      auto p = kafka::Producer::create(po);
      if (!p) return 1;
      print("idempotent", params,
            drive(**p, "bench-idempotent-" + suffix, params, [](int, Outcome&) {}));
    }
    {
      kafka::TransactionalProducerOptions to;
      to.producer = po;
      to.transactional_id =
          kafka::transactional_id_for(kafka::kDefaultTransactionalIdPrefix, "bench");
      to.checkpoint = place;
      auto created = kafka::TransactionalProducer::create(to);
      if (!created) return 1;
      kafka::TransactionalProducer& p = **created;
      if (auto r = p.init(60s); !r) {
        std::fprintf(stderr, "%s\n", r.error().describe().c_str());
        return 1;
      }
      if (!p.begin()) return 1;
      auto next_commit = Clock::now() + params.commit_interval;
      auto commit = [&](int i, Outcome& out) {
        const bool last = i < 0;
        if (!last && Clock::now() < next_commit) return;
        const auto t0 = Clock::now();
        auto r = p.commit({wal::Lsn(static_cast<uint64_t>(last ? params.records : i)), {}}, 30s);
        if (!r) {
          std::fprintf(stderr, "%s\n", r.error().describe().c_str());
          std::exit(1);
        }
        out.commit_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!last && !p.begin()) std::exit(1);
        next_commit = Clock::now() + params.commit_interval;
      };
      print("transactional", params, drive(p, "bench-transactional-" + suffix, params, commit));
    }
  }
  return 0;
}
