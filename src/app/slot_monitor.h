#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "relay/stats.h"

namespace app {

// Publishes the slot's retained WAL into the stats every `interval`, read on
// its own thread and connection so that a slow catalog query never delays
// the replication loop.
class SlotMonitor {
 public:
  SlotMonitor(relay::PipelineStats& stats, std::string dsn, std::string slot,
              std::chrono::milliseconds interval);
  ~SlotMonitor();
  void start();
  void stop();

 private:
  void run();

  relay::PipelineStats& stats_;
  std::string dsn_;
  std::string slot_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace app
