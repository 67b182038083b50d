#pragma once

// The integration-test harness: real PostgreSQL and Kafka servers on free
// loopback ports, child processes with logs, and deadline-bounded waits.

// Scenario tests signal processes by <csignal>'s names and sample state
// over time with std::this_thread.
#include <csignal>
#include <thread>

#include "harness/kafka_broker.h"
#include "harness/murmur2.h"
#include "harness/net.h"
#include "harness/netns.h"
#include "harness/postgres_server.h"
#include "harness/process.h"
#include "harness/servers.h"
#include "harness/temp_dir.h"
#include "harness/wait.h"
