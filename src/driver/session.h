#pragma once

#include <atomic>
#include <chrono>
#include <string_view>

#include "common/result.h"
#include "config/config.h"
#include "driver/checkpoint_offers.h"
#include "relay/publisher.h"
#include "relay/stats.h"
#include "wal/lsn.h"
#include "wal/pgoutput.h"

namespace pg {
class ReplicationStream;
}
namespace relay {
class SlotCore;
}

namespace driver {

// What a session borrows from its pipeline, which outlives it.
struct SessionContext {
  const config::Config& cfg;
  relay::Publisher& publisher;
  relay::PipelineStats& stats;
  const std::atomic<bool>& stop;
  int stop_fd;
  CheckpointOffers& checkpoints;
};

// One connection's worth of streaming, once START_REPLICATION succeeded:
// moves bytes between the replication connection and the slot core, and
// sends the feedback the core decides. Runs on the calling thread until the
// pipeline is stopped or the session fails; either way it drains Kafka,
// sends a final status update and closes the stream.
class Session {
 public:
  using Clock = std::chrono::steady_clock;

  Session(SessionContext context, pg::ReplicationStream& stream, relay::SlotCore& core);

  common::Result<void> run();

 private:
  common::Result<void> turn();
  common::Result<void> handle_copy_data(std::string_view data);
  common::Result<void> send_feedback(bool force, bool ask_reply = false);
  common::Result<void> check_receive_timeout();
  common::Result<void> wait_for_io(bool read_socket, std::chrono::milliseconds timeout);
  common::Result<void> finish(common::Result<void> result);

  SessionContext ctx_;
  const config::Config& cfg_;
  pg::ReplicationStream& stream_;
  relay::SlotCore& core_;
  wal::PgOutputDecoder decoder_;
  wal::Lsn received_;
  bool output_pending_ = false;
  // When the server last sent anything, and whether it has been asked for a
  // reply since.
  Clock::time_point last_received_at_ = Clock::now();
  bool reply_asked_ = false;
  // Ended by postgres.receive_timeout: nothing sent now would arrive.
  bool path_dead_ = false;
};

}  // namespace driver
