#pragma once

#include "harness/kafka_broker.h"
#include "harness/postgres_server.h"

namespace harness {

// One PostgreSQL and one Kafka broker for a whole test binary, each started
// on first use and shared by every test in it (tests isolate themselves with
// their own databases, slots and topics). A gtest environment, registered
// when this library is linked in, tears both down after the last test.
//
// PostgreSQL comes from $OUTBOX_PG_BINDIR (default Debian's 15), so the same
// binary runs the suite against every server version. A server that failed
// to start is not retried: every later test fails at once with the same
// message.
class Servers {
 public:
  static PostgresServer& postgres();
  static KafkaBroker& kafka();
  // The options the next start uses (by default, each server's defaults):
  // for a binary whose servers run elsewhere than on loopback, e.g. in a
  // network namespace. Call before the first postgres()/kafka() or after
  // shutdown().
  static void configure(PostgresServer::Options postgres, KafkaBroker::Options kafka);
  // Stops and removes both; later calls to postgres()/kafka() start anew.
  static void shutdown();
};

}  // namespace harness
