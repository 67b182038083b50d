// kafka-admin BOOTSTRAP create-topic NAME PARTITIONS
// The demo's way to create a topic without the Kafka command-line tools.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "harness/kafka_broker.h"

int main(int argc, char** argv) {
  if (argc != 5 || std::string(argv[2]) != "create-topic") {
    std::fprintf(stderr, "usage: kafka-admin BOOTSTRAP create-topic NAME PARTITIONS\n");
    return 2;
  }
  try {
    harness::create_topic(argv[1], argv[3], std::atoi(argv[4]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kafka-admin: %s\n", e.what());
    return 1;
  }
  return 0;
}
