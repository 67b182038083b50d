#include "driver/session.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "driver/errc.h"
#include "pg/replication_stream.h"
#include "relay/slot_core.h"
#include "wal/copy_protocol.h"

namespace driver {

namespace {

using std::chrono::milliseconds;

// Messages read from the socket before serving delivery reports again, so
// that acknowledgements (and with them, feedback) never starve under load.
constexpr int kReadBudget = 4096;
// How long a fenced session still waits for acknowledgements before it
// releases the slot.
constexpr milliseconds kFencedDrain{300};
constexpr milliseconds kFencedPurgeWait{200};
constexpr milliseconds kPurgeWait{5000};

}  // namespace

Session::Session(SessionContext context, pg::ReplicationStream& stream, relay::SlotCore& core)
    : ctx_(context),
      cfg_(context.cfg),
      stream_(stream),
      core_(core),
      decoder_(pg::ReplicationStream::kProtoVersion) {}

common::Result<void> Session::run() {
  common::Result<void> result;
  while (result.ok()) {
    ctx_.stats.mark_loop_alive();
    if (!core_.lease_held()) {
      result = core_.fence("lease expired");
      break;
    }
    if (ctx_.stop.load()) break;
    result = turn();
  }
  return finish(std::move(result));
}

// One turn of the loop: serve Kafka, read what the socket has (within the
// read budget and the in-flight bounds), send feedback when due, then sleep
// until the socket, Kafka or the next feedback deadline wakes us.
common::Result<void> Session::turn() {
  if (auto r = core_.serve(milliseconds(0)); !r) return r;
  if (auto alarm = ctx_.stats.catalog_alarm.take()) return failure(errc::fatal, *alarm);
  int read = 0;
  bool socket_drained = false;
  while (!core_.backpressured() && read < kReadBudget) {
    auto msg = stream_.read();
    if (!msg) return msg.error();
    if (!*msg) {
      socket_drained = true;
      break;
    }
    ++read;
    if (auto r = handle_copy_data((*msg)->view()); !r) return r;
  }
  if (auto r = core_.maybe_commit(Clock::now(), socket_drained); !r) return r;
  if (auto r = send_feedback(false); !r) return r;
  if (auto r = check_receive_timeout(); !r) return r;
  ctx_.stats.in_flight_records = ctx_.publisher.in_flight();
  ctx_.stats.in_flight_bytes = ctx_.publisher.in_flight_bytes();
  ctx_.checkpoints.serve();

  // Keep going at once while the socket has more.
  if (read == kReadBudget && !core_.backpressured()) return {};
  auto since = Clock::now() - core_.ledger().last_feedback_at();
  auto next_status =
      std::chrono::duration_cast<milliseconds>(cfg_.postgres.status_interval - since);
  milliseconds timeout = std::clamp(next_status, milliseconds(1), milliseconds(100));
  if (auto commit_at = core_.commit_deadline(Clock::now())) {
    const auto until = std::chrono::duration_cast<milliseconds>(*commit_at - Clock::now());
    timeout = std::clamp(until, milliseconds(1), timeout);
  }
  return wait_for_io(socket_drained && !core_.backpressured(), timeout);
}

// Stopping or restarting: serve what Kafka still owes us so the final status
// update confirms as much as was really delivered.
common::Result<void> Session::finish(common::Result<void> result) {
  const bool halted = !result.ok() && disposition(result.error()) == errc::halted;
  // Stopped because the assignment was lost: records not yet sent must not
  // go out now that another instance may own the slot.
  if (result.ok() && !core_.lease_held()) result = core_.fence("stopped without the lease");
  // Exactly once: a clean stop commits what was read; anything else aborts,
  // and the next owner replays it from the checkpoint.
  if (result.ok()) {
    if (auto r = core_.commit_at_stop(cfg_.kafka.drain_timeout); !r) result = r;
  }
  // Never left open: the broker would hold read_committed consumers back
  // until transaction_timeout.
  core_.abort_transaction(std::max(cfg_.kafka.drain_timeout, milliseconds(1000)));
  // Once fenced, the slot is released promptly rather than held for acks:
  // the next owner redelivers whatever was not confirmed.
  auto drained = core_.fenced() ? core_.drain(kFencedDrain, kFencedPurgeWait)
                                : core_.drain(cfg_.kafka.drain_timeout, kPurgeWait);
  // On a dead path (postgres.receive_timeout) the final status update and the
  // CopyDone handshake would only hold the reconnect back, by kCopyDoneWait or
  // until TCP gives up; the slot keeps the position last confirmed.
  if (!path_dead_) {
    if (auto r = send_feedback(true); r.ok()) {
      for (int i = 0; i < 50; ++i) {
        auto f = stream_.flush();
        if (!f || *f) break;
        std::this_thread::sleep_for(milliseconds(10));
      }
    }
  }
  spdlog::info("slot={} {} with confirmed lsn={} ({} records still in flight)", cfg_.postgres.slot,
               halted ? "halted" : (result.ok() ? "stopped" : "paused"),
               core_.watermark().to_string(), ctx_.publisher.in_flight());
  if (path_dead_) {
    stream_.abandon();
  } else {
    stream_.close();
  }
  if (!drained.ok() && result.ok()) return drained;
  return result;
}

common::Result<void> Session::wait_for_io(bool read_socket, milliseconds timeout) {
  struct pollfd fds[3];
  nfds_t n = 0;
  short pg_events =
      static_cast<short>((read_socket ? POLLIN : 0) | (output_pending_ ? POLLOUT : 0));
  fds[n++] = {stream_.socket(), pg_events, 0};
  if (ctx_.publisher.wakeup_fd() >= 0) fds[n++] = {ctx_.publisher.wakeup_fd(), POLLIN, 0};
  if (ctx_.stop_fd >= 0) fds[n++] = {ctx_.stop_fd, POLLIN, 0};
  // Without a Kafka wakeup descriptor, poll Kafka briefly instead of sleeping.
  if (ctx_.publisher.wakeup_fd() < 0 && ctx_.publisher.in_flight() > 0) {
    timeout = std::min(timeout, milliseconds(5));
  }
  int r = ::poll(fds, n, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) {
    return failure(errc::retriable, std::string("poll: ") + std::strerror(errno));
  }
  if (r > 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) && !(fds[0].revents & POLLIN)) {
    return failure(errc::retriable, "connection to PostgreSQL lost");
  }
  if (output_pending_) {
    auto f = stream_.flush();
    if (!f) return failure(errc::retriable, f.error().describe());
    output_pending_ = !*f;
  }
  return {};
}

// A network path that dies without a reset is invisible to the socket until
// TCP gives up, and an idle walsender may legitimately send nothing at all
// once its position is confirmed. So, as PostgreSQL's walreceiver does with
// wal_receiver_timeout: after half the timeout of silence, ask the server for
// a reply; after all of it, give the connection up.
common::Result<void> Session::check_receive_timeout() {
  const auto timeout = cfg_.postgres.receive_timeout;
  const auto silent = Clock::now() - last_received_at_;
  if (silent >= timeout) {
    path_dead_ = true;
    return failure(errc::retriable,
                   fmt::format("no message from the server for {} ms (postgres.receive_timeout), "
                               "confirmed lsn={}; the network path to PostgreSQL is presumed dead",
                               std::chrono::duration_cast<milliseconds>(silent).count(),
                               core_.watermark().to_string()));
  }
  if (silent >= timeout / 2 && !reply_asked_) {
    reply_asked_ = true;
    return send_feedback(true, true);
  }
  return {};
}

common::Result<void> Session::handle_copy_data(std::string_view data) {
  last_received_at_ = Clock::now();
  reply_asked_ = false;
  auto msg = wal::parse_copy_data(data);
  if (!msg) return failure(errc::retriable, msg.error().describe());
  if (const auto* ka = std::get_if<wal::PrimaryKeepalive>(&*msg)) {
    if (ka->wal_end > received_) received_ = ka->wal_end;
    ctx_.stats.received_lsn = received_.value();
    core_.on_keepalive(ka->wal_end);
    // The server asks after wal_sender_timeout/2 of silence and drops us at
    // wal_sender_timeout: answer now, not on the timer.
    if (ka->reply_requested) return send_feedback(true);
    return {};
  }
  const auto& x = std::get<wal::XLogData>(*msg);
  if (x.wal_start > received_) received_ = x.wal_start;
  ctx_.stats.received_lsn = received_.value();
  auto ev = decoder_.decode(x.data);
  if (!ev) {
    // An unknown or malformed message: reconnecting re-reads it from the
    // confirmed position; skipping it could lose an outbox row.
    return failure(errc::retriable, "pgoutput decoding failed at lsn=" + x.wal_start.to_string() +
                                        ": " + ev.error().describe());
  }
  return core_.on_message(*ev, x.wal_start);
}

// Sends the position the ledger decides on, if it decides to send one.
common::Result<void> Session::send_feedback(bool force, bool ask_reply) {
  const auto position = core_.feedback(Clock::now(), force);
  if (!position) return {};
  const wal::Lsn w = *position;
  auto r = stream_.send_status(w, w, w, wal::pg_now(), ask_reply);
  if (!r) return failure(errc::retriable, r.error().describe());
  auto f = stream_.flush();
  if (!f) return failure(errc::retriable, f.error().describe());
  output_pending_ = !*f;
  if (w.value() != ctx_.stats.confirmed_lsn.load()) {
    spdlog::debug("slot={} confirmed lsn={}", cfg_.postgres.slot, w.to_string());
  }
  ctx_.stats.confirmed_lsn = w.value();
  ctx_.checkpoints.offer(w);
  return {};
}

}  // namespace driver
