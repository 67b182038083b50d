#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "relay/stats.h"

namespace pg {
class SlotStatsReader;
}

namespace app {

// What the monitor checks in the catalog while the slot streams.
struct PublicationCheck {
  std::string table;  // outbox.table as configured
  std::string publication;
  std::chrono::milliseconds interval;
};

// Publishes the slot's retained WAL into the stats every `interval`, and
// checks every `check->interval` that the outbox the pipeline streams is
// still the configured table and still in the publication. Both run on its
// own thread and connection, so that a slow catalog query never delays the
// replication loop. A failed check raises the stats' catalog alarm, which
// stops the pipeline.
class SlotMonitor {
 public:
  SlotMonitor(relay::PipelineStats& stats, std::string dsn, std::string slot,
              std::chrono::milliseconds interval, std::optional<PublicationCheck> check = {});
  ~SlotMonitor();
  void start();
  void stop();

 private:
  void run();
  void publish_failover(pg::SlotStatsReader& reader);

  relay::PipelineStats& stats_;
  std::string dsn_;
  std::string slot_;
  std::chrono::milliseconds interval_;
  std::optional<PublicationCheck> check_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace app
