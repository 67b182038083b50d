#include "harness/servers.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>

namespace harness {
namespace {

template <typename Server>
struct Slot {
  std::unique_ptr<Server> server;
  std::string failure;
};

std::mutex mutex;
Slot<PostgresServer> postgres_slot;
Slot<KafkaBroker> kafka_slot;
PostgresServer::Options postgres_options;
KafkaBroker::Options kafka_options;

template <typename Server, typename Start>
Server& get(Slot<Server>& slot, const char* what, Start start) {
  std::lock_guard lock(mutex);
  if (slot.server) return *slot.server;
  if (!slot.failure.empty()) throw std::runtime_error(slot.failure);
  try {
    slot.server = start();
  } catch (const std::exception& e) {
    slot.failure = std::string(what) + " did not start: " + e.what();
    throw std::runtime_error(slot.failure);
  }
  return *slot.server;
}

class ServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { Servers::shutdown(); }
};

// gtest owns and runs registered environments; registering at load time
// means no test binary has to remember to.
[[maybe_unused]] ::testing::Environment* const registered =
    ::testing::AddGlobalTestEnvironment(new ServersEnvironment);

}  // namespace

PostgresServer& Servers::postgres() {
  return get(postgres_slot, "PostgreSQL", [] {
    auto pg = PostgresServer::start(postgres_options);
    std::fprintf(stderr, "harness: PostgreSQL %d on %s:%d (%s)\n", pg->major_version(),
                 postgres_options.host.c_str(), pg->port(), pg->bin_dir().c_str());
    return pg;
  });
}

KafkaBroker& Servers::kafka() {
  return get(kafka_slot, "Kafka", [] {
    auto kafka = KafkaBroker::start(kafka_options);
    std::fprintf(stderr, "harness: Kafka on %s\n", kafka->bootstrap().c_str());
    return kafka;
  });
}

void Servers::configure(PostgresServer::Options postgres, KafkaBroker::Options kafka) {
  std::lock_guard lock(mutex);
  postgres_options = std::move(postgres);
  kafka_options = std::move(kafka);
  postgres_slot.failure.clear();
  kafka_slot.failure.clear();
}

void Servers::shutdown() {
  std::lock_guard lock(mutex);
  postgres_slot = {};
  kafka_slot = {};
}

}  // namespace harness
