#include "relay/pipeline.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <utility>

#include "relay/ack_tracker.h"
#include "relay/log_budget.h"
#include "relay/router.h"
#include "wal/copy_protocol.h"
#include "wal/pgoutput.h"
#include "wal/replication_stream.h"

namespace relay {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct PipelineCategory : std::error_category {
  const char* name() const noexcept override { return "pipeline"; }
  std::string message(int ev) const override {
    switch (static_cast<pipeline_errc>(ev)) {
      case pipeline_errc::retriable: return "retriable failure";
      case pipeline_errc::halted: return "halted at a bad row";
      case pipeline_errc::fatal: return "fatal failure";
      case pipeline_errc::unacknowledged: return "records left unacknowledged";
    }
    return "unknown pipeline error";
  }
};

common::Error failure(pipeline_errc code, std::string message) {
  return common::Error{make_error_code(code), std::move(message)};
}

bool is_retriable(const common::Error& e) {
  return e.code == make_error_code(pipeline_errc::retriable) ||
         e.code == make_error_code(pipeline_errc::unacknowledged);
}

// Status updates go out at least this often even when nothing moved, well
// inside the default wal_sender_timeout of 60 s.
constexpr milliseconds kForcedStatusInterval{10000};
// Messages read from the socket before serving delivery reports again, so
// that acknowledgements (and with them, feedback) never starve under load.
constexpr int kReadBudget = 4096;
constexpr uint64_t kTokenSeqBits = 40;
// How long a fenced session still waits for acknowledgements before it
// releases the slot.
constexpr milliseconds kFencedDrain{300};
constexpr milliseconds kFencedPurgeWait{200};

}  // namespace

OutboxRecord dead_letter_from_failed(OutboxRecord original, const std::string& reason,
                                     const std::string& dlq_topic, bool drop_payload);

namespace {

RelationDesc to_relation_desc(const wal::Relation& r) {
  RelationDesc d;
  d.relid = r.relid;
  d.nspname = r.nspname;
  d.relname = r.relname;
  d.columns.reserve(r.columns.size());
  for (const auto& c : r.columns) d.columns.push_back(ColumnDesc{c.name, c.type_oid, c.type_modifier});
  return d;
}

}  // namespace

const std::error_category& pipeline_category() {
  static PipelineCategory c;
  return c;
}

// One connection's worth of streaming: everything here is reset on reconnect
// (relation cache, decoder state, tracker), because the server resends
// Relation messages and restarts at the confirmed position.
class Pipeline::Session {
 public:
  // The router outlives sessions (it remembers which columns the table has
  // had); its relation bindings do not, as the server sends them again.
  Session(Pipeline& p, std::unique_ptr<wal::ReplicationStream> stream, Router& router,
          wal::Lsn confirmed, uint32_t epoch)
      : p_(p),
        cfg_(p.cfg_),
        stream_(std::move(stream)),
        router_(router),
        decoder_(1),
        tracker_(confirmed),
        last_sent_flush_(confirmed),
        epoch_(epoch),
        topic_counters_(p.stats_.topics) {
    router_.clear_bindings();
  }

  common::Result<void> run();

  // Every transaction up to here is acknowledged by Kafka.
  wal::Lsn watermark() const { return tracker_.watermark(); }

 private:
  common::Result<void> handle_copy_data(std::string_view data);
  common::Result<void> handle_event(const wal::Event& ev, wal::Lsn lsn);
  common::Result<void> handle_insert(const wal::Insert& ins, wal::Lsn lsn);
  common::Result<void> publish(OutboxRecord&& record);
  common::Result<void> bad_row(const BadRow& bad, wal::Lsn lsn, const std::string& source);
  common::Result<void> retry_pending();
  // Hands one record to the producer while the lease is held: true once it
  // is queued there, false when the producer's queue is full. A record Kafka
  // refuses for good becomes its dead-letter record in place, per policy.
  common::Result<bool> offer(OutboxRecord& record, uint64_t& tok);
  void on_report(const DeliveryReport& report);
  // Serves delivery reports; they share one reading of the clock.
  void poll_reports(milliseconds timeout);
  common::Result<void> send_status(bool reply);
  common::Result<void> maybe_send_status();
  bool backpressured() const;
  common::Result<void> wait_for_io(bool read_socket, milliseconds timeout);
  common::Result<void> drain(milliseconds timeout, milliseconds purge_timeout = milliseconds(5000));
  common::Error fence(const char* why);
  uint64_t token(AckTracker::TxnSeq seq) const {
    return (static_cast<uint64_t>(epoch_) << kTokenSeqBits) | seq;
  }

  Pipeline& p_;
  const config::Config& cfg_;
  std::unique_ptr<wal::ReplicationStream> stream_;
  Router& router_;
  wal::PgOutputDecoder decoder_;
  AckTracker tracker_;

  // The open transaction, between Begin and Commit.
  std::optional<AckTracker::TxnSeq> txn_;
  wal::Lsn txn_final_lsn_;
  wal::Xid txn_xid_ = 0;
  wal::PgTimestamp txn_commit_time_;

  // Records the producer's queue had no room for yet, retried from the loop.
  std::deque<std::pair<OutboxRecord, uint64_t>> pending_;
  std::vector<RawValue> scratch_values_;
  // When the reports being served arrived, read once per poll_reports().
  int64_t reports_now_micros_ = 0;

  wal::Lsn received_;
  wal::Lsn last_sent_flush_;
  Clock::time_point last_status_ = Clock::now();
  bool reply_requested_ = false;
  bool output_pending_ = false;

  // Each dead-lettered row is logged with its id and LSN, up to a flood;
  // past it, a count of the lines held back (the records still carry both).
  template <typename... Args>
  void log_dead_letter(fmt::format_string<Args...> format, Args&&... args) {
    if (!dead_letter_log_.allow()) return;
    if (uint64_t held_back = dead_letter_log_.take_suppressed()) {
      spdlog::warn("slot={} suppressed={} dead-letter log lines held back in the last second; "
                   "each record carries its outbox-id and outbox-lsn headers",
                   cfg_.postgres.slot, held_back);
    }
    spdlog::error(format, std::forward<Args>(args)...);
  }
  LogBudget dead_letter_log_{50};

  std::optional<common::Error> stop_error_;  // set from delivery reports
  bool fenced_ = false;
  uint32_t epoch_;
  TopicCountersCache topic_counters_;
};

Pipeline::Pipeline(const config::Config& cfg, Publisher& publisher, PipelineStats& stats,
                   const std::atomic<bool>& stop, int stop_fd, PipelineOptions options)
    : cfg_(cfg),
      publisher_(publisher),
      stats_(stats),
      stop_(stop),
      stop_fd_(stop_fd),
      options_(std::move(options)) {}

Pipeline::~Pipeline() = default;

common::Result<void> Pipeline::run() {
  const auto& pg = cfg_.postgres;
  milliseconds backoff = pg.reconnect_backoff_min;
  auto router_or = Router::create(cfg_.outbox);
  if (!router_or) return failure(pipeline_errc::fatal, router_or.error().describe());

  while (!stop_.load()) {
    stats_.mark_loop_alive();
    if (!wait_for_lease()) break;
    stats_.state = static_cast<int>(PipelineState::kConnecting);
    wal::ReplicationOptions ro;
    ro.application_name = options_.application_name;
    ro.dsn = pg.dsn;
    ro.slot = pg.slot;
    ro.publication = pg.publication;
    ro.table = cfg_.outbox.table;
    ro.create_slot = pg.create_slot;
    ro.create_publication = pg.create_publication;
    ro.binary = pg.binary;
    ro.recreate_lost_slot = pg.on_slot_lost == config::SlotLostPolicy::kRecreate;
    ro.failover_slot = pg.failover_slot;

    common::Result<void> outcome;
    auto stream = wal::ReplicationStream::connect(ro);
    if (!stream) {
      outcome = failure(pipeline_errc::retriable, stream.error().describe());
    } else {
      auto slot = (*stream)->prepare();
      if (!slot) {
        const auto& code = slot.error().code;
        if (code == wal::replication_errc::slot_in_use) {
          stats_.state = static_cast<int>(PipelineState::kWaitingForSlot);
          spdlog::warn("slot={} waiting for the slot: {}", pg.slot, slot.error().describe());
          maybe_take_over(**stream);
          outcome = failure(pipeline_errc::retriable, slot.error().describe());
        } else if (code == wal::replication_errc::query_failed) {
          outcome = failure(pipeline_errc::retriable, slot.error().describe());
        } else {
          return failure(pipeline_errc::fatal, slot.error().describe());
        }
      } else {
        if (slot->recreated_after) {
          ++stats_.slots_recreated;
          spdlog::error(
              "slot={} lost_confirmed_lsn={} the slot had been invalidated (wal_status=lost) and "
              "was dropped and created again (on_slot_lost: recreate): rows committed after the "
              "lost slot's confirmed position and before now were NOT published; compare the "
              "outbox with Kafka from that position",
              pg.slot, slot->recreated_after->to_string());
        } else if (slot->created) {
          spdlog::info("slot={} created replication slot", pg.slot);
        }
        auto guard = RelationGuard::create(cfg_.outbox, (*stream)->outbox(),
                                           GuardContext{pg.slot, pg.publication});
        if (!guard) return failure(pipeline_errc::fatal, guard.error().describe());
        guard_ = std::move(*guard);
        stats_.outbox_oid = guard_->outbox_oid();
        // Resume where Kafka has acknowledged everything before, when this
        // process knows a later position than the slot: the status update
        // that would have confirmed it may have been lost with the
        // connection, or with a restart that kept an older copy of the slot
        // on disk. Asking for less than the slot's position gets the slot's.
        const wal::Lsn from = std::max(slot->confirmed_flush, acked_);
        auto start = (*stream)->start(from, pg.binary, true);
        if (!start) {
          if (start.error().code == wal::replication_errc::slot_in_use) {
            stats_.state = static_cast<int>(PipelineState::kWaitingForSlot);
            spdlog::warn("slot={} waiting for the slot: {}", pg.slot, start.error().describe());
          }
          outcome = failure(pipeline_errc::retriable, start.error().describe());
        } else {
          spdlog::info("slot={} streaming from lsn={} slot_confirmed={} server_version={}",
                       pg.slot, from.to_string(), slot->confirmed_flush.to_string(),
                       (*stream)->server_version());
          stats_.state = static_cast<int>(PipelineState::kStreaming);
          stats_.confirmed_lsn = from.value();
          backoff = pg.reconnect_backoff_min;
          slot_busy_since_.reset();
          takeover_requests_ = 0;
          ++epoch_;
          Session session(*this, std::move(*stream), *router_or, from, epoch_);
          outcome = session.run();
          acked_ = std::max(acked_, session.watermark());
        }
      }
    }
    if (outcome.ok()) break;
    if (!is_retriable(outcome.error())) return outcome;
    if (stop_.load()) {
      // Not a clean stop: say so, so that the exit status does.
      if (outcome.error().code == make_error_code(pipeline_errc::unacknowledged)) {
        stats_.state = static_cast<int>(PipelineState::kStopped);
        return outcome;
      }
      break;
    }

    ++stats_.reconnects;
    spdlog::warn("slot={} {}; reconnecting in {} ms", pg.slot, outcome.error().describe(),
                 backoff.count());
    stats_.mark_loop_alive();
    struct pollfd pfd = {stop_fd_, POLLIN, 0};
    ::poll(&pfd, stop_fd_ >= 0 ? 1 : 0, static_cast<int>(backoff.count()));
    backoff = std::min(backoff * 2, pg.reconnect_backoff_max);
  }
  stats_.state = static_cast<int>(PipelineState::kStopped);
  return {};
}

// Without the lease the slot may already belong to another instance: wait,
// connected to nothing, until the membership proves itself again or the
// pipeline is stopped. False when stopped.
bool Pipeline::wait_for_lease() {
  if (lease_held()) return true;
  stats_.state = static_cast<int>(PipelineState::kWaitingForLease);
  spdlog::info("slot={} waiting for proof of group membership before streaming",
               cfg_.postgres.slot);
  while (!stop_.load() && !lease_held()) {
    stats_.mark_loop_alive();
    struct pollfd pfd = {stop_fd_, POLLIN, 0};
    ::poll(&pfd, stop_fd_ >= 0 ? 1 : 0, 50);
  }
  return !stop_.load();
}

// A previous owner that froze with its connection open keeps the slot until
// wal_sender_timeout; past takeover_after its walsender is terminated, if it
// is a relay's. By then that relay's lease has long run out, so it can no
// longer produce when it wakes.
void Pipeline::maybe_take_over(wal::ReplicationStream& stream) {
  if (!options_.takeover_after) return;
  const auto now = Clock::now();
  if (!slot_busy_since_) slot_busy_since_ = now;
  if (now - *slot_busy_since_ < *options_.takeover_after) return;
  // Asked again on every attempt until the slot is free: a walsender whose
  // client is frozen can be stuck writing to it and end only on a later
  // request.
  auto killed = stream.terminate_relay_holder("outbox-relay");
  if (!killed) {
    spdlog::warn("slot={} cannot take over the slot: {}", cfg_.postgres.slot,
                 killed.error().describe());
  } else if (*killed && takeover_requests_++ % 10 == 0) {
    spdlog::warn("slot={} taking over the slot: terminating relay backend pid={} after {} ms",
                 cfg_.postgres.slot, **killed,
                 std::chrono::duration_cast<milliseconds>(now - *slot_busy_since_).count());
  }
}

void Pipeline::Session::poll_reports(milliseconds timeout) {
  reports_now_micros_ = 0;
  p_.publisher_.poll(timeout, [this](const DeliveryReport& r) { on_report(r); });
}

common::Result<void> Pipeline::Session::run() {
  common::Result<void> result;
  while (true) {
    p_.stats_.mark_loop_alive();
    if (!p_.lease_held()) {
      result = fence("lease expired");
      break;
    }
    if (p_.stop_.load()) break;

    poll_reports(milliseconds(0));
    if (stop_error_) {
      result = *stop_error_;
      break;
    }
    if (auto alarm = p_.stats_.catalog_alarm.take()) {
      result = failure(pipeline_errc::fatal, *alarm);
      break;
    }
    if (auto r = retry_pending(); !r) {
      result = r;
      break;
    }

    int read = 0;
    bool socket_drained = false;
    while (!backpressured() && read < kReadBudget) {
      auto msg = stream_->read();
      if (!msg) {
        const bool fatal = msg.error().code == wal::replication_errc::publication_missing;
        result = failure(fatal ? pipeline_errc::fatal : pipeline_errc::retriable,
                         msg.error().describe());
        break;
      }
      if (!*msg) {
        socket_drained = true;
        break;
      }
      ++read;
      if (auto r = handle_copy_data((*msg)->view()); !r) {
        result = r;
        break;
      }
    }
    if (!result.ok()) break;
    if (stop_error_) {
      result = *stop_error_;
      break;
    }
    if (auto r = maybe_send_status(); !r) {
      result = r;
      break;
    }
    p_.stats_.in_flight_records = p_.publisher_.in_flight();
    p_.stats_.in_flight_bytes = p_.publisher_.in_flight_bytes();

    // Keep going at once while the socket has more; otherwise sleep until the
    // socket, Kafka or the next status deadline wakes us.
    if (read == kReadBudget && !backpressured()) continue;
    auto since = Clock::now() - last_status_;
    auto next_status = std::chrono::duration_cast<milliseconds>(cfg_.postgres.status_interval - since);
    milliseconds timeout = std::clamp(next_status, milliseconds(1), milliseconds(100));
    if (auto r = wait_for_io(socket_drained && !backpressured(), timeout); !r) {
      result = r;
      break;
    }
  }

  // Stopping or restarting: serve what Kafka still owes us so the final
  // status update confirms as much as was really delivered.
  bool halted = !result.ok() && result.error().code == make_error_code(pipeline_errc::halted);
  // Stopped because the assignment was lost: records not yet sent must not
  // go out now that another instance may own the slot.
  if (result.ok() && !p_.lease_held()) result = fence("stopped without the lease");
  // Once fenced, the slot is released promptly rather than held for acks:
  // the next owner redelivers whatever was not confirmed.
  auto drained = fenced_ ? drain(kFencedDrain, kFencedPurgeWait) : drain(cfg_.kafka.drain_timeout);
  if (auto r = send_status(false); r.ok()) {
    for (int i = 0; i < 50; ++i) {
      auto f = stream_->flush();
      if (!f || *f) break;
      std::this_thread::sleep_for(milliseconds(10));
    }
  }
  spdlog::info("slot={} {} with confirmed lsn={} ({} records still in flight)",
               cfg_.postgres.slot, halted ? "halted" : (result.ok() ? "stopped" : "paused"),
               tracker_.watermark().to_string(), p_.publisher_.in_flight());
  stream_->close();
  if (!drained.ok() && result.ok()) return drained;
  return result;
}

// Ownership can no longer be proven: records not yet handed to a broker are
// dropped before librdkafka sends them (they are replayed from the slot by
// whoever owns it next), and the session ends without reading further.
common::Error Pipeline::Session::fence(const char* why) {
  fenced_ = true;
  p_.publisher_.purge();
  pending_.clear();
  spdlog::warn("slot={} fencing: {}; stopped producing with {} records in flight",
               cfg_.postgres.slot, why, p_.publisher_.in_flight());
  return failure(pipeline_errc::retriable, std::string("fenced: ") + why);
}

common::Result<void> Pipeline::Session::drain(milliseconds timeout, milliseconds purge_timeout) {
  auto deadline = Clock::now() + timeout;
  while (p_.publisher_.in_flight() > 0 && Clock::now() < deadline) {
    poll_reports(milliseconds(50));
  }
  if (p_.publisher_.in_flight() > 0) {
    // Unconfirmed records are replayed from the slot on the next start, so
    // dropping them here loses nothing.
    spdlog::warn(
        "slot={} Kafka did not acknowledge {} records within {} ms; they stay unconfirmed and "
        "are streamed again from lsn={}",
        cfg_.postgres.slot, p_.publisher_.in_flight(), timeout.count(),
        tracker_.watermark().to_string());
    p_.publisher_.purge();
    auto purge_deadline = Clock::now() + purge_timeout;
    while (p_.publisher_.in_flight() > 0 && Clock::now() < purge_deadline) {
      poll_reports(milliseconds(50));
    }
    return failure(pipeline_errc::unacknowledged,
                   "Kafka did not acknowledge all records within drain_timeout");
  }
  return {};
}

bool Pipeline::Session::backpressured() const {
  return !pending_.empty() ||
         p_.publisher_.in_flight() >= cfg_.limits.max_inflight_messages ||
         p_.publisher_.in_flight_bytes() >= cfg_.limits.max_inflight_bytes;
}

common::Result<void> Pipeline::Session::wait_for_io(bool read_socket, milliseconds timeout) {
  struct pollfd fds[3];
  nfds_t n = 0;
  short pg_events = static_cast<short>((read_socket ? POLLIN : 0) | (output_pending_ ? POLLOUT : 0));
  fds[n++] = {stream_->socket(), pg_events, 0};
  if (p_.publisher_.wakeup_fd() >= 0) fds[n++] = {p_.publisher_.wakeup_fd(), POLLIN, 0};
  if (p_.stop_fd_ >= 0) fds[n++] = {p_.stop_fd_, POLLIN, 0};
  // Without a Kafka wakeup descriptor, poll Kafka briefly instead of sleeping.
  if (p_.publisher_.wakeup_fd() < 0 && p_.publisher_.in_flight() > 0) {
    timeout = std::min(timeout, milliseconds(5));
  }
  int r = ::poll(fds, n, static_cast<int>(timeout.count()));
  if (r < 0 && errno != EINTR) {
    return failure(pipeline_errc::retriable, std::string("poll: ") + std::strerror(errno));
  }
  if (r > 0 && (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) && !(fds[0].revents & POLLIN)) {
    return failure(pipeline_errc::retriable, "connection to PostgreSQL lost");
  }
  if (output_pending_) {
    auto f = stream_->flush();
    if (!f) return failure(pipeline_errc::retriable, f.error().describe());
    output_pending_ = !*f;
  }
  return {};
}

common::Result<void> Pipeline::Session::handle_copy_data(std::string_view data) {
  auto msg = wal::parse_copy_data(data);
  if (!msg) return failure(pipeline_errc::retriable, msg.error().describe());
  if (const auto* ka = std::get_if<wal::PrimaryKeepalive>(&*msg)) {
    if (ka->wal_end > received_) received_ = ka->wal_end;
    p_.stats_.received_lsn = received_.value();
    if (!txn_) tracker_.observe_wal_end(ka->wal_end);
    // The server asks after wal_sender_timeout/2 of silence and drops us at
    // wal_sender_timeout: answer now, not on the timer.
    if (ka->reply_requested) return send_status(true);
    return {};
  }
  const auto& x = std::get<wal::XLogData>(*msg);
  if (x.wal_start > received_) received_ = x.wal_start;
  p_.stats_.received_lsn = received_.value();
  auto ev = decoder_.decode(x.data);
  if (!ev) {
    // An unknown or malformed message: reconnecting re-reads it from the
    // confirmed position; skipping it could lose an outbox row.
    return failure(pipeline_errc::retriable,
                   "pgoutput decoding failed at lsn=" + x.wal_start.to_string() + ": " +
                       ev.error().describe());
  }
  return handle_event(*ev, x.wal_start);
}

common::Result<void> Pipeline::Session::handle_event(const wal::Event& ev, wal::Lsn lsn) {
  return std::visit(
      [&](const auto& m) -> common::Result<void> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wal::Begin>) {
          if (txn_) {
            return failure(pipeline_errc::retriable,
                           "Begin inside an open transaction at lsn=" + lsn.to_string());
          }
          txn_ = tracker_.begin(m.commit_time);
          txn_final_lsn_ = m.final_lsn;
          txn_xid_ = m.xid;
          txn_commit_time_ = m.commit_time;
          return {};
        } else if constexpr (std::is_same_v<T, wal::Commit>) {
          if (!txn_) {
            return failure(pipeline_errc::retriable,
                           "Commit without Begin at lsn=" + lsn.to_string());
          }
          // Confirm the Commit's end LSN: that is where a restart resumes.
          tracker_.commit(*txn_, m.end_lsn);
          txn_.reset();
          ++p_.stats_.transactions;
          return {};
        } else if constexpr (std::is_same_v<T, wal::Relation>) {
          // Not the outbox: its rows stop the slot, unless it is listed in
          // outbox.ignore_relations.
          auto desc = p_.guard_->on_relation(to_relation_desc(m));
          if (!desc) return {};
          if (auto r = router_.bind(*desc); !r) {
            return failure(pipeline_errc::fatal, r.error().describe());
          }
          return {};
        } else if constexpr (std::is_same_v<T, wal::Insert>) {
          return handle_insert(m, lsn);
        } else if constexpr (std::is_same_v<T, wal::Update> || std::is_same_v<T, wal::Delete> ||
                             std::is_same_v<T, wal::Truncate> || std::is_same_v<T, wal::Origin> ||
                             std::is_same_v<T, wal::Type> || std::is_same_v<T, wal::Message>) {
          // The outbox is insert-only; a publication shared with other tables
          // may still carry these, and logical decoding messages are not rows.
          return {};
        } else {
          // Streaming and two-phase are never requested; receiving them means
          // the slot or server does something this relay cannot confirm safely.
          return failure(pipeline_errc::fatal,
                         "unexpected streaming or two-phase message at lsn=" + lsn.to_string());
        }
      },
      ev);
}

common::Result<void> Pipeline::Session::handle_insert(const wal::Insert& ins, wal::Lsn lsn) {
  auto is_outbox = p_.guard_->on_row(ins.relid, lsn);
  if (!is_outbox) return failure(pipeline_errc::fatal, is_outbox.error().describe());
  if (!*is_outbox) return {};
  if (!txn_) {
    return failure(pipeline_errc::retriable, "Insert outside a transaction at lsn=" + lsn.to_string());
  }
  std::vector<RawValue>& values = scratch_values_;
  values.clear();
  for (const auto& v : ins.new_tuple.values) {
    values.push_back(RawValue{static_cast<ValueKind>(v.kind), v.data});
  }
  RowContext ctx{txn_final_lsn_, lsn, txn_xid_, txn_commit_time_};
  auto routed = router_.route(ins.relid, values, ctx);
  if (!routed) return failure(pipeline_errc::retriable, routed.error().describe());
  if (auto* bad = std::get_if<BadRow>(&*routed)) {
    return bad_row(*bad, lsn, cfg_.outbox.table);
  }
  return publish(std::move(std::get<OutboxRecord>(*routed)));
}

namespace {

constexpr uint64_t kDeadLetterFlag = uint64_t{1} << 63;

std::optional<std::string> header_value(const OutboxRecord& r, std::string_view key) {
  for (const auto& h : r.headers) {
    if (h.key == key) return h.value;
  }
  return std::nullopt;
}

}  // namespace

// A record Kafka refused for good becomes a dead-letter record: same key and
// headers, plus why and where it came from. A record too large for the broker
// cannot be dead-lettered with its payload, so the payload is left out and
// its size recorded; the row itself is still in the WAL position named.
OutboxRecord dead_letter_from_failed(OutboxRecord original, const std::string& reason,
                                     const std::string& dlq_topic, bool drop_payload) {
  OutboxRecord dlq;
  dlq.topic = dlq_topic;
  dlq.key = header_value(original, "outbox-id");
  if (!dlq.key) dlq.key = original.key;
  dlq.headers = std::move(original.headers);
  dlq.headers.push_back(Header{"outbox-error", reason});
  dlq.headers.push_back(Header{"outbox-original-topic", original.topic});
  if (drop_payload) {
    dlq.headers.push_back(Header{"outbox-payload-size", std::to_string(original.payload.size())});
  } else {
    dlq.payload = std::move(original.payload);
  }
  return dlq;
}

common::Result<void> Pipeline::Session::publish(OutboxRecord&& record) {
  if (p_.options_.instance_header) record.headers.push_back(*p_.options_.instance_header);
  tracker_.add_record(*txn_);
  uint64_t tok = token(*txn_);
  // Nothing waiting ahead of it: hand it over without queueing it here.
  if (pending_.empty()) {
    auto queued = offer(record, tok);
    if (!queued) return queued.error();
    if (*queued) return {};
  }
  pending_.emplace_back(std::move(record), tok);
  return retry_pending();
}

common::Result<void> Pipeline::Session::retry_pending() {
  while (!pending_.empty()) {
    auto& [record, tok] = pending_.front();
    auto queued = offer(record, tok);
    if (!queued) return queued.error();
    if (!*queued) return {};
    pending_.pop_front();
  }
  return {};
}

common::Result<bool> Pipeline::Session::offer(OutboxRecord& record, uint64_t& tok) {
  while (true) {
    if (!p_.lease_held()) return fence("lease expired before producing");
    ProduceResult r = p_.publisher_.produce(record, tok);
    // A freeze between the check and produce() must not let the record out.
    if (!p_.lease_held()) return fence("lease expired while producing");
    if (r.outcome == ProduceOutcome::kQueued) return true;
    if (r.outcome == ProduceOutcome::kQueueFull) return false;
    if (r.status == DeliveryStatus::kPermanent && !(tok & kDeadLetterFlag) &&
        cfg_.outbox.on_bad_row == config::BadRowPolicy::kDeadLetter) {
      auto id = header_value(record, "outbox-id").value_or("?");
      log_dead_letter("slot={} record rejected by Kafka, dead-lettering: id={} lsn={} reason={}",
                      cfg_.postgres.slot, id, header_value(record, "outbox-lsn").value_or("?"),
                      r.error);
      bool too_large = record.payload.size() > 0 && r.error.find("size") != std::string::npos;
      record = dead_letter_from_failed(std::move(record), r.error, cfg_.outbox.dead_letter_topic,
                                       too_large);
      tok |= kDeadLetterFlag;
      ++p_.stats_.records_dead_lettered;
      continue;
    }
    auto id = header_value(record, "outbox-id").value_or("?");
    auto lsn = header_value(record, "outbox-lsn").value_or("?");
    ++p_.stats_.records_failed;
    ++topic_counters_.get(record.topic).failed;
    if (r.status == DeliveryStatus::kPermanent) {
      spdlog::error("slot={} halting: record rejected by Kafka: id={} lsn={} topic={} reason={}",
                    cfg_.postgres.slot, id, lsn, record.topic, r.error);
      return failure(pipeline_errc::halted, "record id=" + id + " lsn=" + lsn +
                                                " rejected by Kafka: " + r.error);
    }
    if (r.status == DeliveryStatus::kFatal) {
      return failure(pipeline_errc::fatal, "Kafka producer failed: " + r.error);
    }
    return failure(pipeline_errc::retriable, "producing record id=" + id + ": " + r.error);
  }
}

common::Result<void> Pipeline::Session::bad_row(const BadRow& bad, wal::Lsn lsn,
                                                const std::string& source) {
  const std::string id = bad.row_id.empty() ? "?" : bad.row_id;
  if (cfg_.outbox.on_bad_row == config::BadRowPolicy::kHalt) {
    spdlog::error("slot={} halting at bad row: table={} id={} lsn={} xid={} reason={}",
                  cfg_.postgres.slot, source, id, lsn.to_string(), txn_xid_, bad.reason);
    return failure(pipeline_errc::halted,
                   "bad row id=" + id + " lsn=" + lsn.to_string() + ": " + bad.reason);
  }
  log_dead_letter("slot={} dead-lettering bad row: table={} id={} lsn={} xid={} reason={}",
                  cfg_.postgres.slot, source, id, lsn.to_string(), txn_xid_, bad.reason);
  RowContext ctx{txn_final_lsn_, lsn, txn_xid_, txn_commit_time_};
  OutboxRecord dlq = router_.dead_letter(bad, ctx, cfg_.outbox.dead_letter_topic);
  if (p_.options_.instance_header) dlq.headers.push_back(*p_.options_.instance_header);
  ++p_.stats_.records_dead_lettered;
  tracker_.add_record(*txn_);
  pending_.emplace_back(std::move(dlq), token(*txn_) | kDeadLetterFlag);
  return retry_pending();
}

void Pipeline::Session::on_report(const DeliveryReport& report) {
  const uint64_t tok = report.token & ~kDeadLetterFlag;
  if ((tok >> kTokenSeqBits) != epoch_) return;  // a previous session's record
  const AckTracker::TxnSeq seq = tok & ((uint64_t{1} << kTokenSeqBits) - 1);
  const bool is_dead_letter = report.token & kDeadLetterFlag;

  if (report.status == DeliveryStatus::kOk) {
    ++p_.stats_.records_published;
    ++topic_counters_.get(report.topic).published;
    if (reports_now_micros_ == 0) reports_now_micros_ = wal::pg_now().micros;
    p_.stats_.commit_to_ack.observe_micros(reports_now_micros_ - tracker_.commit_time(seq).micros);
    tracker_.ack(seq);
    return;
  }
  ++p_.stats_.records_failed;
  const OutboxRecord empty;
  const OutboxRecord& rec = report.record ? *report.record : empty;
  ++topic_counters_.get(rec.topic.empty() ? report.topic : rec.topic).failed;
  const std::string id = header_value(rec, "outbox-id").value_or("?");
  const std::string lsn = header_value(rec, "outbox-lsn").value_or("?");
  if (stop_error_) return;

  switch (report.status) {
    case DeliveryStatus::kOk:
      break;
    case DeliveryStatus::kPermanent:
      if (!is_dead_letter && cfg_.outbox.on_bad_row == config::BadRowPolicy::kDeadLetter &&
          report.record) {
        log_dead_letter("slot={} delivery failed for good, dead-lettering: id={} lsn={} topic={} "
                        "reason={}",
                        cfg_.postgres.slot, id, lsn, rec.topic, report.error);
        bool too_large = report.error.find("size") != std::string::npos ||
                         report.error.find("too large") != std::string::npos;
        // The replacement carries the same token: its delivery report
        // acknowledges the original record's slot in the transaction.
        pending_.emplace_back(dead_letter_from_failed(*report.record, report.error,
                                                      cfg_.outbox.dead_letter_topic, too_large),
                              report.token | kDeadLetterFlag);
        ++p_.stats_.records_dead_lettered;
        return;
      }
      spdlog::error("slot={} halting: delivery failed for good: id={} lsn={} topic={} reason={}",
                    cfg_.postgres.slot, id, lsn, rec.topic, report.error);
      stop_error_ = failure(pipeline_errc::halted,
                            "record id=" + id + " lsn=" + lsn + " failed: " + report.error);
      return;
    case DeliveryStatus::kRetriable:
      stop_error_ = failure(pipeline_errc::retriable,
                            "delivery of id=" + id + " lsn=" + lsn + " failed (" + report.error +
                                "); restarting from the confirmed position");
      return;
    case DeliveryStatus::kFatal:
      stop_error_ = failure(pipeline_errc::fatal, "Kafka producer failed: " + report.error);
      return;
  }
}

common::Result<void> Pipeline::Session::send_status(bool /*reply*/) {
  // Feedback is monotonic, and flush is what moves confirmed_flush_lsn.
  wal::Lsn w = std::max(tracker_.watermark(), last_sent_flush_);
  auto r = stream_->send_status(w, w, w, wal::pg_now(), false);
  if (!r) return failure(pipeline_errc::retriable, r.error().describe());
  auto f = stream_->flush();
  if (!f) return failure(pipeline_errc::retriable, f.error().describe());
  output_pending_ = !*f;
  if (w != last_sent_flush_) {
    spdlog::debug("slot={} confirmed lsn={}", cfg_.postgres.slot, w.to_string());
  }
  last_sent_flush_ = w;
  last_status_ = Clock::now();
  p_.stats_.confirmed_lsn = w.value();
  return {};
}

common::Result<void> Pipeline::Session::maybe_send_status() {
  auto since = Clock::now() - last_status_;
  // Unconditional, like PostgreSQL's own receivers: the update is what keeps
  // the walsender from timing the connection out while backpressure has
  // stopped reading and the watermark stands still.
  if (since >= std::min<Clock::duration>(cfg_.postgres.status_interval, kForcedStatusInterval)) {
    return send_status(false);
  }
  return {};
}

}  // namespace relay
