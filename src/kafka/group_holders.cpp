#include "kafka/group_holders.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "kafka/client_config.h"
#include "kafka/errc.h"

namespace kafka {

namespace {

using std::chrono::milliseconds;

int ms(milliseconds d) { return static_cast<int>(std::clamp<int64_t>(d.count(), 0, INT_MAX)); }

struct Deleter {
  void operator()(rd_kafka_t* rk) const {
    // Never joined: nothing to leave.
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
template <typename T>
using Owned = std::unique_ptr<T, Deleter>;

// Fills `out.slots[i].assigned` from the group's description; on failure
// leaves them unknown and says why in out.describe_error.
void describe(rd_kafka_t* rk, const std::string& group_id, const std::string& topic,
              milliseconds timeout, GroupHolders& out) {
  char errstr[512];
  Owned<rd_kafka_AdminOptions_t> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS));
  rd_kafka_AdminOptions_set_request_timeout(options.get(), ms(timeout), errstr, sizeof errstr);
  Owned<rd_kafka_queue_t> queue(rd_kafka_queue_new(rk));
  const char* groups[] = {group_id.c_str()};
  rd_kafka_DescribeConsumerGroups(rk, groups, 1, options.get(), queue.get());
  Owned<rd_kafka_event_t> ev(rd_kafka_queue_poll(queue.get(), ms(timeout) + 1000));
  if (!ev) {
    out.describe_error = "describing group '" + group_id + "' timed out";
    return;
  }
  if (rd_kafka_resp_err_t err = rd_kafka_event_error(ev.get())) {
    out.describe_error = "describing group '" + group_id + "': " + rd_kafka_err2str(err);
    return;
  }
  const auto* result = rd_kafka_event_DescribeConsumerGroups_result(ev.get());
  size_t n = 0;
  const rd_kafka_ConsumerGroupDescription_t** descs =
      result ? rd_kafka_DescribeConsumerGroups_result_groups(result, &n) : nullptr;
  if (n != 1) {
    out.describe_error = "describing group '" + group_id + "': no description returned";
    return;
  }
  const rd_kafka_ConsumerGroupDescription_t* desc = descs[0];
  if (const rd_kafka_error_t* e = rd_kafka_ConsumerGroupDescription_error(desc)) {
    out.describe_error = "describing group '" + group_id + "': " + rd_kafka_error_string(e);
    return;
  }
  out.state = rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(desc));
  for (auto& s : out.slots) s.assigned = false;
  const size_t members = rd_kafka_ConsumerGroupDescription_member_count(desc);
  for (size_t m = 0; m < members; ++m) {
    const rd_kafka_MemberDescription_t* member = rd_kafka_ConsumerGroupDescription_member(desc, m);
    const rd_kafka_topic_partition_list_t* parts =
        rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(member));
    for (int i = 0; parts && i < parts->cnt; ++i) {
      const auto& tp = parts->elems[i];
      if (topic != tp.topic || tp.partition < 0 ||
          tp.partition >= static_cast<int>(out.slots.size())) {
        continue;
      }
      SlotHolder& slot = out.slots[tp.partition];
      slot.assigned = true;
      const char* host = rd_kafka_MemberDescription_host(member);
      slot.member_host = host ? host : "";
    }
  }
}

}  // namespace

common::Result<GroupHolders> read_group_holders(
    const std::string& brokers, const std::map<std::string, std::string>& properties,
    const std::string& group_id, const std::string& coordination_topic, int slots,
    milliseconds timeout) {
  std::map<std::string, std::string> props = properties;
  props["bootstrap.servers"] = brokers;
  props["client.id"] = "outbox-relay-status";
  props["group.id"] = group_id;
  props["enable.auto.commit"] = "false";
  // A status command prints its own findings; librdkafka's connection
  // errors would only repeat them.
  props["log_level"] = "0";
  auto conf = detail::new_conf(props);
  if (!conf) return conf.error();
  auto client = detail::new_client(RD_KAFKA_CONSUMER, std::move(*conf), "the group reader");
  if (!client) return client.error();
  Owned<rd_kafka_t> rk(*client);
  Owned<rd_kafka_topic_partition_list_t> list(rd_kafka_topic_partition_list_new(slots));
  for (int p = 0; p < slots; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), coordination_topic.c_str(), p);
  }
  if (rd_kafka_resp_err_t err = rd_kafka_committed(rk.get(), list.get(), ms(timeout))) {
    return make_error(errc::unavailable, "reading the committed offsets of group '" + group_id +
                                             "': " + rd_kafka_err2str(err));
  }
  GroupHolders out;
  out.state = "unknown";
  out.slots.resize(static_cast<size_t>(slots));
  for (int i = 0; i < list->cnt; ++i) {
    const auto& tp = list->elems[i];
    if (tp.err || tp.offset == RD_KAFKA_OFFSET_INVALID || tp.partition < 0 ||
        tp.partition >= slots) {
      continue;
    }
    out.slots[tp.partition].last_committed_by =
        std::string(static_cast<const char*>(tp.metadata), tp.metadata_size);
  }
  describe(rk.get(), group_id, coordination_topic, timeout, out);
  return out;
}

}  // namespace kafka
