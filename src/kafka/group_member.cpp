#include "kafka/group_member.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "kafka/admin.h"
#include "kafka/checkpoint.h"
#include "kafka/client_config.h"

namespace kafka {

namespace {

using std::chrono::milliseconds;
using Nanos = relay::Lease::Nanos;

// librdkafka's default is 3 s; a tenth of the session leaves the coordinator
// nine heartbeats to miss before it expels us, and bounds how stale the
// newest heartbeat can be when a commit proves membership.
milliseconds heartbeat_interval(milliseconds session) {
  return std::clamp(session / 10, milliseconds(100), milliseconds(3000));
}

std::vector<int> partition_ids(const rd_kafka_topic_partition_list_t* list) {
  std::vector<int> ids;
  for (int i = 0; i < list->cnt; ++i) ids.push_back(list->elems[i].partition);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string join(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out.empty() ? "-" : out;
}

}  // namespace

struct GroupMember::Handle {
  rd_kafka_t* rk = nullptr;
  ~Handle() {
    if (rk) rd_kafka_destroy(rk);
  }
};

common::Result<std::unique_ptr<GroupMember>> GroupMember::create(const GroupOptions& options,
                                                                 relay::Lease& lease,
                                                                 GroupListener& listener) {
  std::map<std::string, std::string> props = options.properties;
  // Ours win over the user's: these decide who owns a slot.
  const std::map<std::string, std::string> group_props = {
      {"bootstrap.servers", options.brokers},
      {"client.id", "outbox-relay-group"},
      {"group.id", options.group_id},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {"session.timeout.ms", std::to_string(options.session_timeout.count())},
      {"heartbeat.interval.ms",
       std::to_string(heartbeat_interval(options.session_timeout).count())},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"enable.partition.eof", "false"},
      {"auto.offset.reset", "latest"},
  };
  for (const auto& [k, v] : group_props) props[k] = v;
  auto conf = detail::new_conf(props);
  if (!conf) return conf.error();
  std::unique_ptr<GroupMember> m(new GroupMember(options, lease, listener));
  rd_kafka_conf_set_opaque(conf->get(), m.get());
  rd_kafka_conf_set_rebalance_cb(conf->get(), [](rd_kafka_t* rk, rd_kafka_resp_err_t err,
                                                 rd_kafka_topic_partition_list_t* parts,
                                                 void* op) { on_rebalance(rk, err, parts, op); });
  rd_kafka_conf_set_offset_commit_cb(
      conf->get(),
      [](rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets,
         void* op) { on_commit(rk, err, offsets, op); });
  auto client = detail::new_client(RD_KAFKA_CONSUMER, std::move(*conf), "group member");
  if (!client) return client.error();
  rd_kafka_t* rk = *client;
  m->handle_ = std::make_unique<Handle>();
  m->handle_->rk = rk;
  // Rebalance and commit callbacks are then served by consumer_poll(), on
  // the group thread.
  rd_kafka_poll_set_consumer(rk);
  return m;
}

GroupMember::GroupMember(const GroupOptions& options, relay::Lease& lease, GroupListener& listener)
    : options_(options),
      lease_(lease),
      listener_(listener),
      checkpoint_written_(std::make_unique<std::atomic<uint64_t>[]>(
          static_cast<size_t>(std::max(options.slots, 1)))) {}

GroupMember::~GroupMember() {
  close();
}

milliseconds GroupMember::lease_validity_for(milliseconds session) {
  return session - heartbeat_interval(session) - session / 5;
}

common::Result<int> GroupMember::ensure_topic(milliseconds timeout) {
  auto admin = Admin::create({options_.brokers, options_.properties, "outbox-relay-group"});
  if (!admin) return admin.error();
  const Nanos deadline = relay::Lease::now() + timeout;
  bool created = false;
  while (true) {
    auto partitions = admin->partition_count(options_.topic, timeout);
    if (!partitions) return partitions.error();
    if (*partitions >= options_.slots) return *partitions;
    if (*partitions > 0) {
      return make_error(errc::too_few_partitions,
                        "coordination topic '" + options_.topic + "' has " +
                            std::to_string(*partitions) + " partitions but " +
                            std::to_string(options_.slots) +
                            " slots are configured; each slot needs its own partition: add "
                            "partitions to the topic (kafka-topics --alter --partitions " +
                            std::to_string(options_.slots) +
                            ") or use another "
                            "group.coordination_topic");
    }
    if (created) {
      // A new topic reaches the metadata of every broker a moment later.
      if (relay::Lease::now() > deadline) break;
      std::this_thread::sleep_for(milliseconds(200));
      continue;
    }
    created = true;
    auto r = admin->create_topic(NewTopic{options_.topic, options_.slots}, timeout);
    // Another instance creating it at the same moment is fine.
    if (r) {
      spdlog::info("created coordination topic={} partitions={}", options_.topic, options_.slots);
    } else if (r.error().code != errc::topic_exists) {
      return r.error();
    }
  }
  return make_error(errc::unavailable,
                    "coordination topic '" + options_.topic + "' not visible after creation");
}

common::Result<void> GroupMember::subscribe() {
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, options_.topic.c_str(), RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(handle_->rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) {
    return make_error(errc::rejected, std::string("subscribing to '") + options_.topic +
                                          "': " + rd_kafka_err2str(err));
  }
  spdlog::info("joining group={} coordination_topic={} session_timeout={}ms", options_.group_id,
               options_.topic, options_.session_timeout.count());
  return {};
}

void GroupMember::poll(milliseconds timeout) {
  maybe_commit();
  maybe_commit_checkpoints();
  rd_kafka_message_t* msg = rd_kafka_consumer_poll(handle_->rk, static_cast<int>(timeout.count()));
  if (msg) {
    if (msg->err && msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      spdlog::warn(
          "group={} consumer error: {}; librdkafka retries on its own (the lease runs out if "
          "the coordinator stays silent)",
          options_.group_id, rd_kafka_message_errstr(msg));
    }
    rd_kafka_message_destroy(msg);
  }
  maybe_commit();
}

// One commit at a time, so that each result is matched with its send time.
void GroupMember::maybe_commit() {
  if (assigned_.empty() || commit_in_flight_ || closed_) return;
  const Nanos now = relay::Lease::now();
  if (now < next_commit_at_) return;
  rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_topic_partition_list_new(static_cast<int>(assigned_.size()));
  for (int p : assigned_) {
    rd_kafka_topic_partition_t* tp =
        rd_kafka_topic_partition_list_add(offsets, options_.topic.c_str(), p);
    tp->offset = 0;
    // Who owns the slot, readable with kafka-consumer-groups --describe --verbose.
    tp->metadata = strdup(options_.instance.c_str());
    tp->metadata_size = options_.instance.size();
  }
  commit_sent_at_ = now;
  rd_kafka_resp_err_t err = rd_kafka_commit(handle_->rk, offsets, 1);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (err) {
    commit_result(err);
    return;
  }
  commit_in_flight_ = true;
}

void GroupMember::offer_checkpoint(int slot, const relay::Checkpoint& checkpoint) {
  if (options_.checkpoint_topic.empty() || slot < 0 || slot >= options_.slots) return;
  std::lock_guard lock(checkpoint_mutex_);
  checkpoint_waiting_[slot] = checkpoint;
}

uint64_t GroupMember::checkpoint_written(int slot) const {
  if (slot < 0 || slot >= options_.slots) return 0;
  return checkpoint_written_[slot].load();
}

// One checkpoint commit at a time, apart from the lease's, so that a refusal
// of the checkpoint topic never counts against membership. Only for slots
// this member holds (and, right after on_revoked() returned, the slots it
// just gave up: their final position).
void GroupMember::maybe_commit_checkpoints(bool revoked_too) {
  if (closed_ || options_.checkpoint_topic.empty()) return;
  rd_kafka_topic_partition_list_t* offsets = nullptr;
  {
    std::lock_guard lock(checkpoint_mutex_);
    if (revoked_too) {
      // Revoked slots whose last position waits: sent once, held or not.
      for (const auto& [slot, checkpoint] : checkpoint_waiting_) checkpoint_parting_.insert(slot);
    }
    if (!checkpoint_in_flight_.empty() || checkpoint_waiting_.empty()) return;
    for (auto it = checkpoint_waiting_.begin(); it != checkpoint_waiting_.end();) {
      const bool held =
          std::find(assigned_.begin(), assigned_.end(), it->first) != assigned_.end();
      const bool parting = checkpoint_parting_.erase(it->first) > 0;
      if (!held && !parting) {
        it = checkpoint_waiting_.erase(it);
        continue;
      }
      checkpoint_in_flight_.insert(*it);
      it = checkpoint_waiting_.erase(it);
    }
    if (checkpoint_in_flight_.empty()) return;
    offsets = rd_kafka_topic_partition_list_new(static_cast<int>(checkpoint_in_flight_.size()));
    for (const auto& [slot, checkpoint] : checkpoint_in_flight_) {
      rd_kafka_topic_partition_t* tp =
          rd_kafka_topic_partition_list_add(offsets, options_.checkpoint_topic.c_str(), slot);
      tp->offset = 0;
      const std::string text = encode_checkpoint(checkpoint);
      tp->metadata = strdup(text.c_str());
      tp->metadata_size = text.size();
    }
  }
  rd_kafka_resp_err_t err = rd_kafka_commit(handle_->rk, offsets, 1);
  rd_kafka_topic_partition_list_destroy(offsets);
  if (err) checkpoint_result(err, nullptr);
}

void GroupMember::checkpoint_result(int err, const void* offsets_ptr) {
  const auto* offsets = static_cast<const rd_kafka_topic_partition_list_t*>(offsets_ptr);
  std::string failure;
  {
    std::lock_guard lock(checkpoint_mutex_);
    for (const auto& [slot, checkpoint] : checkpoint_in_flight_) {
      auto code = static_cast<rd_kafka_resp_err_t>(err);
      if (!code && offsets) {
        for (int i = 0; i < offsets->cnt; ++i) {
          if (offsets->elems[i].partition == slot) code = offsets->elems[i].err;
        }
      }
      if (!code) {
        if (checkpoint.end_lsn.value() > checkpoint_written_[slot].load()) {
          checkpoint_written_[slot] = checkpoint.end_lsn.value();
        }
        continue;
      }
      if (failure.empty()) {
        failure = "slot " + std::to_string(slot) + " lsn=" + checkpoint.end_lsn.to_string() +
                  ": " + rd_kafka_err2name(code) + ": " + rd_kafka_err2str(code);
      }
      // Tried again with the next poll, unless a newer one waits; a slot no
      // longer held is not tried again.
      if (std::find(assigned_.begin(), assigned_.end(), slot) != assigned_.end()) {
        checkpoint_waiting_.try_emplace(slot, checkpoint);
      }
    }
    checkpoint_in_flight_.clear();
  }
  const Nanos now = relay::Lease::now();
  if (!failure.empty() && now - last_checkpoint_warning_ >= std::chrono::seconds(30)) {
    last_checkpoint_warning_ = now;
    spdlog::warn(
        "group={} checkpoint not written to topic={} ({}); written with the next confirmed "
        "position, but until then a slot lost meanwhile cannot be told from a first start",
        options_.group_id, options_.checkpoint_topic, failure);
  }
}

void GroupMember::on_commit(void* /*rk*/, int err, void* offsets, void* opaque) {
  auto* self = static_cast<GroupMember*>(opaque);
  const auto* list = static_cast<const rd_kafka_topic_partition_list_t*>(offsets);
  if (list && list->cnt > 0 && !self->options_.checkpoint_topic.empty() &&
      self->options_.checkpoint_topic == list->elems[0].topic) {
    self->checkpoint_result(err, offsets);
    return;
  }
  self->commit_result(err);
}

void GroupMember::commit_result(int err) {
  commit_in_flight_ = false;
  const auto code = static_cast<rd_kafka_resp_err_t>(err);
  next_commit_at_ = commit_sent_at_ + heartbeat_interval(options_.session_timeout);
  if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
    lease_.renew(commit_sent_at_, lease_validity());
    return;
  }
  if (code == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || code == RD_KAFKA_RESP_ERR__FENCED ||
      code == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID) {
    // Expelled: whatever the assignment still says, the slots are gone.
    lease_.revoke();
  }
  const Nanos now = relay::Lease::now();
  if (now - last_commit_warning_ >= std::chrono::seconds(5)) {
    last_commit_warning_ = now;
    spdlog::warn(
        "group={} membership not confirmed: {}; lease ends in {} ms, then this instance's slots "
        "stop until the group coordinator answers again (check the brokers)",
        options_.group_id, rd_kafka_err2str(code),
                 std::max<int64_t>(
                     0, std::chrono::duration_cast<milliseconds>(lease_.expires() - now).count()));
  }
}

void GroupMember::on_rebalance(void* /*rk*/, int err, void* partitions, void* opaque) {
  static_cast<GroupMember*>(opaque)->rebalance(err, partitions);
}

void GroupMember::rebalance(int err, void* partitions_ptr) {
  rd_kafka_t* rk = handle_->rk;
  auto* parts = static_cast<rd_kafka_topic_partition_list_t*>(partitions_ptr);
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  std::vector<int> ids = partition_ids(parts);
  std::vector<int> slots;
  for (int id : ids) {
    if (id < options_.slots) slots.push_back(id);
  }
  joined_ = true;
  ++rebalances_;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    rd_kafka_error_t* e = nullptr;
    if (cooperative) {
      e = rd_kafka_incremental_assign(rk, parts);
    } else {
      rd_kafka_assign(rk, parts);
    }
    if (e) {
      spdlog::error("group={} assign failed: {}", options_.group_id, rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    // A partition beyond the configured slots belongs to no slot.
    for (int id : ids) {
      if (std::find(assigned_.begin(), assigned_.end(), id) == assigned_.end()) {
        assigned_.push_back(id);
      }
    }
    std::sort(assigned_.begin(), assigned_.end());
    spdlog::info("group={} assigned partitions={} now holding={}", options_.group_id, join(ids),
                 join(assigned_));
    next_commit_at_ = Nanos(0);
    if (!slots.empty()) listener_.on_assigned(slots);
    return;
  }
  // Revoked or lost: the slots stop before the rebalance may complete, so the
  // next owner never finds them still streaming here.
  const bool lost = rd_kafka_assignment_lost(rk);
  spdlog::info("group={} {} partitions={}", options_.group_id, lost ? "lost" : "revoked",
               join(ids));
  if (lost) lease_.revoke();
  if (!slots.empty()) listener_.on_revoked(slots, lost);
  if (lost) {
    std::lock_guard lock(checkpoint_mutex_);
    for (int id : ids) checkpoint_waiting_.erase(id);
  } else {
    // The stopped pipelines' last positions, while still a member of this
    // generation.
    maybe_commit_checkpoints(true);
  }
  for (int id : ids)
    assigned_.erase(std::remove(assigned_.begin(), assigned_.end(), id), assigned_.end());
  if (cooperative) {
    rd_kafka_error_t* e = rd_kafka_incremental_unassign(rk, parts);
    if (e) rd_kafka_error_destroy(e);
  } else {
    rd_kafka_assign(rk, nullptr);
  }
}

void GroupMember::leave() {
  if (closed_ || !handle_) return;
  if (rd_kafka_resp_err_t err = rd_kafka_unsubscribe(handle_->rk)) {
    spdlog::warn("group={} leaving: {}", options_.group_id, rd_kafka_err2str(err));
    return;
  }
  joined_ = false;
}

void GroupMember::close() {
  if (closed_ || !handle_) return;
  // The stopped slots' last positions go out while this member is still in
  // the group.
  maybe_commit_checkpoints(true);
  const Nanos deadline = relay::Lease::now() + std::chrono::seconds(2);
  while (relay::Lease::now() < deadline) {
    {
      std::lock_guard lock(checkpoint_mutex_);
      if (checkpoint_in_flight_.empty()) break;
    }
    if (rd_kafka_message_t* msg = rd_kafka_consumer_poll(handle_->rk, 50)) {
      rd_kafka_message_destroy(msg);
    }
  }
  closed_ = true;
  rd_kafka_consumer_close(handle_->rk);
  spdlog::info("group={} left", options_.group_id);
}

}  // namespace kafka
