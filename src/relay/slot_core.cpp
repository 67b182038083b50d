#include "relay/slot_core.h"

#include <spdlog/spdlog.h>

#include <type_traits>

#include "relay/errc.h"

namespace relay {

namespace {

using std::chrono::milliseconds;

// How long a fenced slot tries to abort its open Kafka transaction.
constexpr milliseconds kFencedAbort{1000};

DeliveryLedger::FeedbackTimes feedback_times(const config::Config& cfg) {
  DeliveryLedger::FeedbackTimes t;
  t.status_interval = cfg.postgres.status_interval;
  // Well inside the default wal_sender_timeout of 60 s, and never later than
  // the configured interval.
  t.keepalive_interval = std::min<milliseconds>(cfg.postgres.status_interval, milliseconds(10000));
  return t;
}

RelationDesc to_relation_desc(const wal::Relation& r) {
  RelationDesc d;
  d.relid = r.relid;
  d.nspname = r.nspname;
  d.relname = r.relname;
  d.columns.reserve(r.columns.size());
  for (const auto& c : r.columns)
    d.columns.push_back(ColumnDesc{c.name, c.type_oid, c.type_modifier});
  return d;
}

std::optional<std::string> header_value(const OutboxRecord& r, std::string_view key) {
  for (const auto& h : r.headers) {
    if (h.key == key) return h.value;
  }
  return std::nullopt;
}

}  // namespace

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
    dlq.null_value = original.null_value;
  }
  return dlq;
}

SlotCore::SlotCore(const config::Config& cfg, Router& router, Publisher& publisher,
                   PipelineStats& stats, SlotCoreOptions options)
    : cfg_(cfg),
      router_(router),
      message_router_(cfg.outbox),
      publisher_(publisher),
      txns_(publisher.transactions()),
      stats_(stats),
      options_(std::move(options)),
      cycle_(options_.commit_policy),
      ledger_(cfg.outbox.on_bad_row, feedback_times(cfg), txns_ != nullptr),
      topic_counters_(stats.topics) {
  ledger_.set_selection(selection_fingerprint(cfg.outbox));
}

wal::Lsn SlotCore::start_session(wal::Lsn slot_confirmed, RelationGuard guard) {
  // The server sends Relation messages again on a new connection; the router
  // keeps what it learned about the table's columns.
  router_.clear_bindings();
  guard_ = std::move(guard);
  pending_.clear();
  stop_error_.reset();
  fenced_ = false;
  fence_noted_ = false;
  skipped_message_logged_ = false;
  // What the open Kafka transaction holds is streamed again from the
  // checkpoint; none of it may become visible.
  abort_transaction();
  // Rows held for a transaction never begun are streamed again.
  if (cycle_.idle()) cycle_.reset();
  const wal::Lsn from = ledger_.start_session(slot_confirmed);
  stats_.confirmed_lsn = from.value();
  log_partial_resume();
  return from;
}

// A resume inside a transaction that the checkpoint's index cannot be
// trusted for republishes it whole; say so, since a read_committed reader
// then sees the part Kafka held twice.
void SlotCore::log_partial_resume() const {
  using PartialResume = DeliveryLedger::PartialResume;
  const PartialResume how = ledger_.partial_resume();
  if (how != PartialResume::kRepublishSelectionChanged &&
      how != PartialResume::kRepublishTimelineChanged) {
    return;
  }
  const Checkpoint& checkpoint = *ledger_.last_checkpoint();
  const std::string why =
      how == PartialResume::kRepublishSelectionChanged
          ? fmt::format("outbox.source, outbox.table or outbox.message_prefix changed since it "
                        "was written (selection {:016x}, now {:016x}), so that index would name "
                        "other records",
                        checkpoint.selection.value_or(0), selection_fingerprint(cfg_.outbox))
          : fmt::format("it was written on timeline {} and the server is on another, so the "
                        "transaction after lsn={} in the server's history may not be the one "
                        "counted",
                        checkpoint.timeline.value_or(0), checkpoint.end_lsn.to_string());
  spdlog::warn(
      "slot={} the checkpoint at lsn={} says rows 0..{} of the transaction after it are in "
      "Kafka, but {}: republishing that whole transaction instead of skipping by index; a "
      "read_committed reader sees up to {} of its records twice (same outbox-lsn and outbox-xid "
      "headers), and none is skipped",
      cfg_.postgres.slot, checkpoint.end_lsn.to_string(), *checkpoint.last_row, why,
      *checkpoint.last_row + 1);
}

bool SlotCore::lease_held() const {
  return options_.lease == nullptr || options_.lease->held();
}

template <typename... Args>
void SlotCore::log_dead_letter(fmt::format_string<Args...> format, Args&&... args) {
  if (!dead_letter_log_.allow()) return;
  if (uint64_t held_back = dead_letter_log_.take_suppressed()) {
    spdlog::warn(
        "slot={} suppressed={} dead-letter log lines held back in the last second; "
        "each record carries its outbox-id and outbox-lsn headers",
        cfg_.postgres.slot, held_back);
  }
  spdlog::error(format, std::forward<Args>(args)...);
}

common::Result<void> SlotCore::on_message(const wal::Event& event, wal::Lsn lsn) {
  return std::visit(
      [&](const auto& m) -> common::Result<void> {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wal::Begin>) {
          return ledger_.begin(m.final_lsn, m.xid, m.commit_time, lsn);
        } else if constexpr (std::is_same_v<T, wal::Commit>) {
          auto r = ledger_.commit(m.end_lsn, lsn);
          if (r) ++stats_.transactions;
          return r;
        } else if constexpr (std::is_same_v<T, wal::Relation>) {
          return on_relation(m);
        } else if constexpr (std::is_same_v<T, wal::Insert>) {
          return on_insert(m, lsn);
        } else if constexpr (std::is_same_v<T, wal::Message>) {
          return on_logical_message(m);
        } else if constexpr (std::is_same_v<T, wal::Update> || std::is_same_v<T, wal::Delete> ||
                             std::is_same_v<T, wal::Truncate> || std::is_same_v<T, wal::Origin> ||
                             std::is_same_v<T, wal::Type>) {
          // The outbox is insert-only; a publication shared with other tables
          // may still carry these.
          return {};
        } else {
          // Streaming and two-phase are never requested; receiving them means
          // the slot or server does something this relay cannot confirm safely.
          return make_error(errc::unsupported_message,
                            "unexpected streaming or two-phase message at lsn=" + lsn.to_string());
        }
      },
      event);
}

// Not the outbox: its rows stop the slot, unless it is listed in
// outbox.ignore_relations (RelationGuard::on_row).
common::Result<void> SlotCore::on_relation(const wal::Relation& relation) {
  OUTBOX_ASSERT(guard_.has_value());
  auto desc = guard_->on_relation(to_relation_desc(relation));
  if (!desc) return {};
  return router_.bind(*desc);
}

RowContext SlotCore::row_context(wal::Lsn lsn) const {
  const auto& txn = ledger_.txn();
  return RowContext{txn.final_lsn, lsn, txn.xid, txn.commit_time};
}

common::Result<void> SlotCore::on_insert(const wal::Insert& insert, wal::Lsn lsn) {
  OUTBOX_ASSERT(guard_.has_value());
  auto is_outbox = guard_->on_row(insert.relid, lsn);
  if (!is_outbox) return is_outbox.error();
  if (!*is_outbox) return {};
  if (!ledger_.in_transaction()) {
    return make_error(errc::stream_out_of_order,
                      "Insert outside a transaction at lsn=" + lsn.to_string());
  }
  std::vector<RawValue>& values = scratch_values_;
  values.clear();
  for (const auto& v : insert.new_tuple.values) {
    values.push_back(RawValue{static_cast<ValueKind>(v.kind), v.data});
  }
  auto routed = router_.route(insert.relid, values, row_context(lsn));
  if (!routed) return routed.error();
  return add(std::move(*routed), lsn);
}

// Messages with another prefix are someone else's (another plugin's, an
// application's own), and skipped like a table outside the publication.
common::Result<void> SlotCore::on_logical_message(const wal::Message& message) {
  if (!message_router_.ours(message)) return {};
  if (!cfg_.outbox.reads_messages()) {
    if (!skipped_message_logged_) {
      skipped_message_logged_ = true;
      spdlog::warn(
          "slot={} skipping messages with prefix '{}' (the first at lsn={}): outbox.source is "
          "table; set it to messages or both to publish them",
          cfg_.postgres.slot, cfg_.outbox.message_prefix, message.lsn.to_string());
    }
    return {};
  }
  if (!message.transactional()) return on_non_transactional(message);
  if (!ledger_.in_transaction()) {
    return make_error(
        errc::stream_out_of_order,
        "transactional Message outside a transaction at lsn=" + message.lsn.to_string());
  }
  // Counted by index among its transaction's records, as a row is, so that a
  // resume inside the transaction skips exactly what Kafka holds.
  return add(message_router_.route(message, row_context(message.lsn)), message.lsn);
}

// Decoded when its WAL record is, between transactions, and sent again
// after a restart only from a position at or before it. So it is a
// transaction of its own whose end is just past the message: confirming that
// end never streams it again, and passes nothing that follows it.
common::Result<void> SlotCore::on_non_transactional(const wal::Message& message) {
  if (ledger_.in_transaction()) {
    return make_error(
        errc::unsupported_message,
        "non-transactional Message inside a transaction at lsn=" + message.lsn.to_string());
  }
  const wal::Lsn at = message.lsn;
  const wal::PgTimestamp now = wal::pg_now();
  if (auto r = ledger_.begin(at, 0, now, at); !r) return r;
  if (auto r = add(message_router_.route(message, RowContext{at, at, 0, now}), at); !r) return r;
  return ledger_.commit(wal::Lsn(at.value() + 1), at);
}

common::Result<void> SlotCore::add(RouteOutcome&& routed, wal::Lsn lsn) {
  if (auto* bad = std::get_if<BadRow>(&routed)) return bad_row(*bad, lsn);
  auto token = ledger_.add_record(lsn);
  if (!token) return token.error();
  if (!*token) return {};  // already in a committed Kafka transaction
  return publish(std::move(std::get<OutboxRecord>(routed)), **token);
}

common::Result<void> SlotCore::bad_row(const BadRow& bad, wal::Lsn lsn) {
  const std::string id = bad.row_id.empty() ? "?" : bad.row_id;
  const wal::Xid xid = ledger_.txn().xid;
  const std::string source =
      bad.message_prefix ? "message_prefix=" + *bad.message_prefix : "table=" + cfg_.outbox.table;
  if (cfg_.outbox.on_bad_row == config::BadRowPolicy::kHalt) {
    spdlog::error("slot={} halting at bad row: {} id={} lsn={} xid={} reason={}",
                  cfg_.postgres.slot, source, id, lsn.to_string(), xid, bad.reason);
    // Exactly once, every row before this one is committed with a checkpoint
    // that stops just before it, so readers see what they would have seen at
    // least once, and a restart halts here again.
    if (auto committed = commit_at_stop(options_.commit_slice); !committed) {
      spdlog::warn("slot={} could not commit the rows before the bad row: {}", cfg_.postgres.slot,
                   committed.error().describe());
    }
    return make_error(errc::halted,
                      "bad row id=" + id + " lsn=" + lsn.to_string() + ": " + bad.reason);
  }
  log_dead_letter("slot={} dead-lettering bad row: {} id={} lsn={} xid={} reason={}",
                  cfg_.postgres.slot, source, id, lsn.to_string(), xid, bad.reason);
  OutboxRecord dlq = router_.dead_letter(bad, row_context(lsn), cfg_.outbox.dead_letter_topic);
  auto token = ledger_.add_dead_letter(lsn);
  if (!token) return token.error();
  if (!*token) return {};
  ++stats_.records_dead_lettered;
  return publish(std::move(dlq), **token);
}

SlotCore::RowKey SlotCore::key_of(const OutboxRecord& record) {
  return {header_value(record, "outbox-id").value_or(""),
          header_value(record, "outbox-lsn").value_or("")};
}

common::Result<void> SlotCore::publish(OutboxRecord&& record, DeliveryLedger::Token token) {
  if (options_.instance_header) record.headers.push_back(*options_.instance_header);
  if (!refused_.empty() && !DeliveryLedger::is_dead_letter(token)) {
    if (auto it = refused_.find(key_of(record)); it != refused_.end()) {
      replace_with_dead_letter(record, it->second.first, it->second.second);
      token = DeliveryLedger::as_dead_letter(token);
    }
  }
  // Nothing waiting ahead of it: hand it over without queueing it here.
  // While a commit runs, the producer is the commit's: the record waits for
  // the next Kafka transaction.
  if (txns_) cycle_.note_record(ledger_.txn().commit_time.micros);
  if (cycle_.committing()) {
    pending_bytes_while_committing_ += record.payload.size() + (record.key ? record.key->size() : 0);
    pending_.emplace_back(std::move(record), token);
    return {};
  }
  if (pending_.empty()) {
    auto queued = offer(record, token);
    if (!queued) return queued.error();
    if (*queued) {
      router_.recycle(std::move(record));
      return {};
    }
  }
  pending_.emplace_back(std::move(record), token);
  return retry_pending();
}

common::Result<void> SlotCore::retry_pending() {
  if (cycle_.committing()) return {};
  while (!pending_.empty()) {
    auto& [record, token] = pending_.front();
    auto queued = offer(record, token);
    if (!queued) return queued.error();
    if (!*queued) return {};
    pending_.pop_front();
  }
  return {};
}

void SlotCore::replace_with_dead_letter(OutboxRecord& record, DeliveryReason reason,
                                        const std::string& error) {
  // A record too large for the broker cannot be dead-lettered with its payload.
  const bool drop_payload = reason == DeliveryReason::kTooLarge;
  record = dead_letter_from_failed(std::move(record), error, cfg_.outbox.dead_letter_topic,
                                   drop_payload);
  ++stats_.records_dead_lettered;
}

common::Result<bool> SlotCore::offer(OutboxRecord& record, DeliveryLedger::Token& token) {
  while (true) {
    if (!lease_held()) return fence("lease expired before producing");
    if (txns_ && !cycle_.open()) {
      if (auto opened = open_transaction(); !opened) return opened.error();
    }
    ProduceResult r = publisher_.produce(record, token);
    // A freeze between the check and produce() must not let the record out.
    if (!lease_held()) return fence("lease expired while producing");
    if (r.outcome == ProduceOutcome::kQueued) return true;
    if (r.outcome == ProduceOutcome::kQueueFull) return false;

    const auto id = header_value(record, "outbox-id").value_or("?");
    const auto lsn = header_value(record, "outbox-lsn").value_or("?");
    const auto outcome = ledger_.on_delivery(token, r.status, /*at_produce=*/true);
    if (outcome.verdict == DeliveryLedger::Verdict::kDeadLetter) {
      log_dead_letter(
          "slot={} record rejected by Kafka, dead-lettering: id={} lsn={} reason={} "
          "({})",
          cfg_.postgres.slot, id, lsn, to_string(r.reason), r.error);
      replace_with_dead_letter(record, r.reason, r.error);
      token = outcome.replacement;
      continue;
    }
    ++stats_.records_failed;
    ++topic_counters_.get(record.topic).failed;
    switch (outcome.verdict) {
      case DeliveryLedger::Verdict::kHalt:
        spdlog::error(
            "slot={} halting: record rejected by Kafka: id={} lsn={} topic={} reason={} "
            "({})",
            cfg_.postgres.slot, id, lsn, record.topic, to_string(r.reason), r.error);
        return make_error(errc::halted,
                          "record id=" + id + " lsn=" + lsn + " rejected by Kafka: " + r.error);
      case DeliveryLedger::Verdict::kFatal:
        if (r.reason == DeliveryReason::kFenced) note_fenced();
        return make_error(errc::producer_failed, "Kafka producer failed: " + r.error);
      default:
        // A Kafka transaction doomed by an earlier delivery refuses every
        // record: learn from the reports which one failed before the replay.
        if (txns_) poll_reports(milliseconds(0));
        return make_error(errc::delivery_failed, "producing record id=" + id + ": " + r.error);
    }
  }
}

void SlotCore::on_report(const DeliveryReport& report) {
  const auto outcome = ledger_.on_delivery(report.token, report.status);
  switch (outcome.verdict) {
    case DeliveryLedger::Verdict::kStale:
      return;
    case DeliveryLedger::Verdict::kDelivered:
      ++stats_.records_published;
      ++topic_counters_.get(report.topic).published;
      if (reports_now_micros_ == 0) reports_now_micros_ = wal::pg_now().micros;
      stats_.commit_to_ack.observe_micros(reports_now_micros_ - outcome.commit_time.micros);
      return;
    default:
      break;
  }
  ++stats_.records_failed;
  const OutboxRecord empty;
  const OutboxRecord& rec = report.record ? *report.record : empty;
  ++topic_counters_.get(rec.topic.empty() ? report.topic : rec.topic).failed;
  if (stop_error_) return;
  const std::string id = header_value(rec, "outbox-id").value_or("?");
  const std::string lsn = header_value(rec, "outbox-lsn").value_or("?");
  const char* reason = to_string(report.reason);

  switch (outcome.verdict) {
    case DeliveryLedger::Verdict::kReplayAsDeadLetter:
      if (report.record) {
        log_dead_letter(
            "slot={} delivery failed for good inside a Kafka transaction: id={} lsn={} "
            "topic={} reason={} ({}); aborting it and replaying from the checkpoint "
            "with the record dead-lettered",
            cfg_.postgres.slot, id, lsn, rec.topic, reason, report.error);
        refused_[key_of(*report.record)] = {report.reason, report.error};
        stop_error_ = make_error(errc::delivery_failed, "record id=" + id + " lsn=" + lsn +
                                                            " refused by Kafka (" + reason +
                                                            "); replaying the Kafka transaction");
        return;
      }
      [[fallthrough]];
    case DeliveryLedger::Verdict::kDeadLetter:
      if (report.record) {
        log_dead_letter(
            "slot={} delivery failed for good, dead-lettering: id={} lsn={} topic={} "
            "reason={} ({})",
            cfg_.postgres.slot, id, lsn, rec.topic, reason, report.error);
        OutboxRecord replacement = *report.record;
        replace_with_dead_letter(replacement, report.reason, report.error);
        pending_.emplace_back(std::move(replacement), outcome.replacement);
        return;
      }
      [[fallthrough]];  // nothing to dead-letter: never skip it
    case DeliveryLedger::Verdict::kHalt:
      spdlog::error(
          "slot={} halting: delivery failed for good: id={} lsn={} topic={} reason={} "
          "({})",
          cfg_.postgres.slot, id, lsn, rec.topic, reason, report.error);
      stop_error_ =
          make_error(errc::halted, "record id=" + id + " lsn=" + lsn + " failed: " + report.error);
      return;
    case DeliveryLedger::Verdict::kRestart:
      stop_error_ =
          make_error(errc::delivery_failed, "delivery of id=" + id + " lsn=" + lsn + " failed (" +
                                                reason + ": " + report.error +
                                                "); restarting from the confirmed position");
      return;
    default:
      if (report.reason == DeliveryReason::kFenced) note_fenced();
      stop_error_ = make_error(errc::producer_failed, std::string("Kafka producer failed (") +
                                                          reason + "): " + report.error);
      return;
  }
}

void SlotCore::poll_reports(milliseconds timeout) {
  reports_now_micros_ = 0;
  publisher_.poll(timeout, [this](const DeliveryReport& r) { on_report(r); });
}

common::Result<void> SlotCore::serve(milliseconds timeout) {
  poll_reports(timeout);
  if (stop_error_) return *stop_error_;
  return retry_pending();
}

bool SlotCore::backpressured() const {
  if (cycle_.committing()) {
    return pending_.size() >= max_pending_while_committing() ||
           pending_bytes_while_committing_ >= max_pending_bytes_while_committing();
  }
  return !pending_.empty() ||
         publisher_.in_flight() >= cfg_.limits.max_inflight_messages ||
         publisher_.in_flight_bytes() >= cfg_.limits.max_inflight_bytes;
}

common::Error SlotCore::fence(const char* why) {
  fenced_ = true;
  note_fenced();
  publisher_.purge();
  pending_.clear();
  abort_transaction();
  spdlog::warn("slot={} fencing: {}; stopped producing with {} records in flight",
               cfg_.postgres.slot, why, publisher_.in_flight());
  return make_error(errc::fenced, std::string("fenced: ") + why);
}

common::Result<void> SlotCore::drain(milliseconds timeout, milliseconds purge_timeout) {
  const auto deadline = Clock::now() + timeout;
  while (publisher_.in_flight() > 0 && Clock::now() < deadline) poll_reports(milliseconds(50));
  if (publisher_.in_flight() == 0) return {};
  // Unconfirmed records are replayed from the slot on the next start, so
  // dropping them here loses nothing.
  spdlog::warn(
      "slot={} Kafka did not acknowledge {} records within {} ms; they stay unconfirmed "
      "and are streamed again from lsn={}",
      cfg_.postgres.slot, publisher_.in_flight(), timeout.count(), ledger_.watermark().to_string());
  publisher_.purge();
  const auto purge_deadline = Clock::now() + purge_timeout;
  while (publisher_.in_flight() > 0 && Clock::now() < purge_deadline) {
    poll_reports(milliseconds(50));
  }
  return make_error(errc::unacknowledged,
                    "Kafka did not acknowledge all records within drain_timeout");
}

void SlotCore::note_fenced() {
  if (fence_noted_) return;
  fence_noted_ = true;
  ++stats_.fenced;
  // Whichever noticed first, the lease check or Kafka's refusal, a session
  // fenced without the lease was ended by this instance losing its group
  // membership (frozen, cut off from the coordinator), not by a stray
  // second producer.
  if (!lease_held()) ++stats_.lease_lost;
}

void SlotCore::abort_transaction(std::optional<std::chrono::milliseconds> timeout) {
  if (!txns_) return;
  // A fenced slot has, or is about to have, another owner, whose
  // init_transactions aborts what this one left open. Waiting here for a
  // coordinator that may be unreachable (a partition) would only keep the
  // walsender, and so the slot, from that owner for up to transaction_timeout.
  milliseconds wait = timeout.value_or(options_.transaction_timeout);
  if (fenced_) wait = std::min(wait, kFencedAbort);
  // A commit still running may go through: its outcome is learned first, or
  // the replay would repeat what it made visible.
  if (cycle_.committing()) {
    auto settled = settle_commit(wait);
    if (settled && !*settled) {
      // Neither committed nor aborted in time: only a new producer's
      // init_transactions can tell, and the checkpoint read back after it.
      unresolved_ = "the outcome of a Kafka commit is still unknown after " +
                    std::to_string(wait.count()) + " ms";
      cycle_.reset();
      return;
    }
  }
  if (!cycle_.open() && !cycle_.aborting()) return;
  // Aborted even when the abort fails: the broker aborts what is left open
  // past transaction.timeout.ms.
  if (cycle_.open()) ++stats_.kafka_transactions_aborted;
  cycle_.abort();
  if (auto r = txns_->abort(wait); !r) {
    spdlog::warn(
        "slot={} aborting the Kafka transaction: {}; its records never become visible "
        "once the broker's transaction.timeout.ms passes",
        cfg_.postgres.slot, r.error().describe());
    return;
  }
  cycle_.aborted();
}

common::Result<void> SlotCore::open_transaction() {
  if (cycle_.aborting()) abort_transaction(options_.commit_slice);
  if (!unresolved_ && cycle_.aborting()) {
    unresolved_ = "the previous Kafka transaction could not be aborted";
    cycle_.reset();
  }
  if (unresolved_) {
    return make_error(errc::producer_failed,
                      *std::exchange(unresolved_, std::nullopt) +
                          "; a new producer fences the slot's output and reads the checkpoint");
  }
  if (auto begun = txns_->begin(); !begun) return begun.error();
  cycle_.begin(Clock::now());
  return {};
}

common::Result<bool> SlotCore::settle_commit(milliseconds wait) {
  auto r = txns_->commit(cycle_.checkpoint(), wait);
  if (r) {
    on_committed();
    return true;
  }
  // Kafka is slow or away: the loop goes back to answering the server and
  // reads on, holding what it reads for the next transaction, until this
  // commit is done (backpressured()).
  if (txns_->commit_pending() || txns_->in_transaction()) return false;
  cycle_.failed();
  ++stats_.kafka_transactions_aborted;
  // The deliveries that doomed the transaction are reported now, before
  // the replay makes their tokens stale: the records Kafka refused are
  // learned here, so that the replay sends their dead letters instead.
  poll_reports(milliseconds(0));
  return r.error();
}

common::Result<bool> SlotCore::commit_open(milliseconds wait) {
  cycle_.start_commit(ledger_.begin_commit(), Clock::now());
  pending_bytes_while_committing_ = 0;
  return settle_commit(wait);
}

common::Result<void> SlotCore::commit_at_stop(std::chrono::milliseconds timeout) {
  if (!txns_ || stop_error_ || fenced_) return {};
  const auto deadline = Clock::now() + timeout;
  const auto left = [&] {
    return std::max(milliseconds(0),
                    std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
  };
  const uint64_t records = ledger_.records_since_commit();
  // The commit still running, if one is; then what was read meanwhile goes
  // out and commits in a last Kafka transaction.
  common::Result<bool> committed = true;
  while (committed) {
    if (cycle_.committing()) {
      committed = settle_commit(left());
      if (committed && !*committed) committed = make_error(errc::unacknowledged, "commit running");
      continue;
    }
    while (!pending_.empty() && Clock::now() < deadline) {
      if (auto r = retry_pending(); !r) return r;
      if (!pending_.empty()) poll_reports(milliseconds(10));
    }
    if (!pending_.empty()) {
      committed = make_error(errc::unacknowledged, "records waiting");
      break;
    }
    if (!cycle_.open()) return {};
    committed = commit_open(left());
    if (committed && !*committed) committed = make_error(errc::unacknowledged, "commit running");
  }
  spdlog::warn(
      "slot={} Kafka did not acknowledge {} records within {} ms ({}); they stay "
      "unconfirmed and are streamed again from lsn={}",
      cfg_.postgres.slot, records, timeout.count(), committed.error().describe(),
      ledger_.watermark().to_string());
  return make_error(errc::unacknowledged,
                    "Kafka did not acknowledge all records within drain_timeout");
}

common::Result<void> SlotCore::maybe_commit(Clock::time_point now, bool caught_up, bool force) {
  if (!txns_ || stop_error_ || fenced_) return {};
  const milliseconds wait = force ? options_.commit_slice : options_.commit_wait;
  if (cycle_.committing()) {
    auto settled = settle_commit(wait);
    if (!settled) return settled.error();
    if (!*settled) return {};
    // What was read while it ran opens the next Kafka transaction at once.
    if (auto r = retry_pending(); !r) return r;
    now = Clock::now();
  }
  if (!cycle_.open() || !pending_.empty()) return {};
  // A PostgreSQL transaction half read is not caught up: the rest of it is
  // on its way, and committing now would show a reader part of it.
  const bool at_rest = caught_up && !ledger_.in_transaction();
  if (!force && !cycle_.due(now, ledger_.records_since_commit(), at_rest)) return {};
  if (!lease_held()) return fence("lease expired before committing");
  auto committed = commit_open(wait);
  if (!committed) return committed.error();
  if (!*committed) return {};
  return retry_pending();
}

void SlotCore::on_committed() {
  const TransactionCycle::Committed c = cycle_.committed(Clock::now());
  ledger_.on_committed(c.checkpoint);
  ++stats_.kafka_transactions_committed;
  stats_.kafka_commit.observe_micros(c.took.count());
  const int64_t now = wal::pg_now().micros;
  for (const auto& rows : cycle_.visible()) {
    stats_.commit_to_visible.observe_micros(now - rows.pg_commit_micros, rows.count);
  }
  stats_.checkpoint_lsn = c.checkpoint.end_lsn.value();
  stats_.checkpoint_known = true;
}

void SlotCore::restore(const Checkpoint& checkpoint) {
  ledger_.restore(checkpoint);
  stats_.checkpoint_lsn = checkpoint.end_lsn.value();
  stats_.checkpoint_known = true;
}

void SlotCore::forget_positions() {
  ledger_.forget_positions();
  stats_.checkpoint_known = false;
  stats_.checkpoint_lsn = 0;
}

}  // namespace relay
