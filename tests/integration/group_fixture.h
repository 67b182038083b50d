#pragma once

// Several relay instances sharing slots through a consumer group: one
// database per slot, one topic for every slot's rows, a free HTTP port per
// instance, and the observations the scenarios assert on (who holds a slot
// according to PostgreSQL, who leads according to each relay, who produced a
// record according to its instance header).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "relay_fixture.h"
#include "test_rows.h"

namespace itest {

struct GroupSlot {
  OutboxDb db;
  std::string slot;
  int first_row = 0;  // this slot's rows are numbered from here
};

struct Instance {
  std::unique_ptr<harness::Process> process;
  std::string http_host = "127.0.0.1";
  int http_port = 0;
  std::string config_path;
};

// GET http://host:port/path (host an IPv4 address); the body, or nullopt
// when nothing answered within a second (a frozen or dead instance).
inline std::optional<std::string> http_get(const std::string& host, int port,
                                           const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return std::nullopt;
  }
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) < 0) {
    ::close(fd);
    return std::nullopt;
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  auto body = resp.find("\r\n\r\n");
  if (body == std::string::npos) return std::nullopt;
  return resp.substr(body + 4);
}

inline std::optional<std::string> http_get(int port, const std::string& path) {
  return http_get("127.0.0.1", port, path);
}

inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline std::string readyz(const Instance& in) {
  return http_get(in.http_host, in.http_port, "/readyz").value_or("");
}

// The slots an instance says it streams ("leader slots=a,b").
inline std::set<std::string> leading_slots(const Instance& in) {
  std::set<std::string> out;
  const std::string body = readyz(in);
  const std::string prefix = "leader slots=";
  if (body.rfind(prefix, 0) != 0) return out;
  std::string list = body.substr(prefix.size());
  while (!list.empty() && (list.back() == '\n' || list.back() == '\r')) list.pop_back();
  size_t start = 0;
  while (start < list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (comma > start) out.insert(list.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// What a group scenario shares: its slots, the group and the topic every
// slot's rows go to.
struct GroupScene {
  std::vector<GroupSlot> slots;
  std::string group;
  std::string topic;
};

class GroupTest : public RelayTest {
 protected:
  static constexpr int kRowsPerSlotRange = 1000000;

  // `n` slots, a group and a three-partition topic, none seen by another test.
  GroupScene new_group_scene(int n) {
    GroupScene s{make_slots(n), unique("grp"), unique("events")};
    kafka().create_topic(s.topic, 3);
    return s;
  }

  std::vector<GroupSlot> make_slots(int n) {
    std::vector<GroupSlot> slots;
    for (int i = 0; i < n; ++i) {
      GroupSlot s;
      s.db = make_outbox_db();
      s.slot = unique("slot");
      s.first_row = i * kRowsPerSlotRange;
      slots.push_back(std::move(s));
    }
    return slots;
  }

  // The group and slots sections of an instance's configuration.
  // `slot_extra`: more postgres settings of each slot, indented six spaces.
  static std::string group_and_slots(const std::string& group_id,
                                     const std::vector<GroupSlot>& slots,
                                     const std::string& group_extra = "",
                                     const std::string& slot_extra = "") {
    std::string body =
        "group:\n  id: " + group_id + "\n  session_timeout: 6s\n" + group_extra + "slots:\n";
    for (const auto& s : slots) {
      body +=
          "  - postgres:\n"
          "      dsn: \"" +
          s.db.dsn +
          "\"\n"
          "      slot: " +
          s.slot +
          "\n"
          "      status_interval: 200ms\n"
          "      reconnect_backoff: {min: 100ms, max: 500ms}\n" +
          slot_extra;
    }
    return body;
  }

  std::string group_config(const std::string& group_id, const std::vector<GroupSlot>& slots,
                           int http_port, const std::string& group_extra = "") {
    std::string body = group_and_slots(group_id, slots, group_extra);
    body +=
        "kafka:\n"
        "  brokers: \"" +
        kafka().bootstrap() +
        "\"\n"
        "  create_topics: true\n"
        "  drain_timeout: 5s\n"
        "http:\n"
        "  listen: \"127.0.0.1:" +
        std::to_string(http_port) +
        "\"\n"
        "log:\n"
        "  level: info\n";
    return body;
  }

  Instance start_instance(const std::string& group_id, const std::vector<GroupSlot>& slots,
                          const std::string& group_extra = "") {
    Instance in;
    in.http_port = harness::free_port();
    in.config_path = write_config(group_config(group_id, slots, in.http_port, group_extra));
    in.process = start_relay(in.config_path);
    return in;
  }

  static std::string readyz(const Instance& in) { return itest::readyz(in); }
  static std::set<std::string> leading(const Instance& in) { return leading_slots(in); }

  // The application_name of the walsender holding the slot, per
  // PostgreSQL; nullopt while the slot is free.
  std::optional<std::string> holder(const GroupSlot& s) {
    return pg().query_scalar(
        "SELECT a.application_name FROM pg_replication_slots r JOIN pg_stat_activity a "
        "ON a.pid = r.active_pid WHERE r.slot_name = '" +
            s.slot + "'",
        s.db.name);
  }

 public:
  // "outbox-relay/<id>" of an instance, from its start-up line.
  static std::string application_name(const harness::Process& p) {
    const std::string log = p.log_contents();
    const std::string key = "instance_id=";
    auto at = log.find(key);
    if (at == std::string::npos) return "";
    auto end = log.find_first_of(" \n", at + key.size());
    return "outbox-relay/" + log.substr(at + key.size(), end - at - key.size());
  }

 protected:
  bool wait_held_by(const GroupSlot& s, const harness::Process& p,
                    std::chrono::milliseconds deadline) {
    return harness::wait_until([&] { return holder(s) == application_name(p); }, deadline, 20ms);
  }

  // Confirmed up to the database's current WAL end: every row inserted so
  // far has been acknowledged by Kafka.
  bool wait_all_confirmed(const std::vector<GroupSlot>& slots, std::chrono::milliseconds deadline) {
    std::vector<std::string> ends;
    for (const auto& s : slots) ends.push_back(current_wal_lsn(s.db));
    return harness::wait_until(
        [&] {
          for (size_t i = 0; i < slots.size(); ++i) {
            if (!slot_confirmed_at_least(slots[i].db, slots[i].slot, ends[i])) return false;
          }
          return true;
        },
        deadline, 100ms);
  }

  // Inserts transactions of `rows_per_txn` rows round-robin over the slots'
  // databases until stopped; counts rows inserted per slot.
  class Loader {
   public:
    Loader(GroupTest& t, std::vector<GroupSlot> slots, std::string topic, int rows_per_txn = 50,
           std::chrono::milliseconds pause = std::chrono::milliseconds(10), int keys = 17)
        : slots_(std::move(slots)), inserted_(slots_.size(), 0) {
      thread_ = std::thread([this, &t, topic, rows_per_txn, pause, keys] {
        size_t i = 0;
        while (!stop_.load()) {
          const size_t s = i++ % slots_.size();
          t.pg().exec(
              insert_rows_sql(topic, slots_[s].first_row + inserted_[s], rows_per_txn, 64, keys),
              slots_[s].db.name);
          {
            std::lock_guard lock(mutex_);
            inserted_[s] += rows_per_txn;
          }
          std::this_thread::sleep_for(pause);
        }
      });
    }
    ~Loader() { stop(); }
    void stop() {
      stop_.store(true);
      if (thread_.joinable()) thread_.join();
    }
    std::vector<int> inserted() {
      std::lock_guard lock(mutex_);
      return inserted_;
    }

   private:
    std::vector<GroupSlot> slots_;
    std::vector<int> inserted_;
    std::mutex mutex_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

  struct Delivered {
    std::map<std::string, int> count;           // row id → deliveries
    std::map<std::string, std::string> lsn_of;  // row id → commit LSN
    size_t total = 0;
  };

  Delivered delivered(const std::vector<harness::ConsumedRecord>& records) {
    Delivered d;
    for (const auto& r : records) {
      auto id = header(r, "outbox-id");
      if (!id || !*id) continue;
      ++d.count[**id];
      d.lsn_of[**id] = header(r, "outbox-lsn").value_or(std::nullopt).value_or("");
      ++d.total;
    }
    return d;
  }

  // Every row inserted into every slot arrived at least once.
  void expect_nothing_lost(const Delivered& d, const std::vector<GroupSlot>& slots,
                           const std::vector<int>& inserted) {
    int lost = 0;
    for (size_t s = 0; s < slots.size(); ++s) {
      for (int i = 0; i < inserted[s]; ++i) {
        if (!d.count.count(row_id(slots[s].first_row + i)) && ++lost <= 5) {
          ADD_FAILURE() << row_id(slots[s].first_row + i) << " lost";
        }
      }
    }
    EXPECT_EQ(lost, 0);
  }

  static std::string instance_header(const harness::ConsumedRecord& r) {
    return header(r, "outbox-relay-instance").value_or(std::nullopt).value_or("");
  }
  static bool produced_by(const harness::ConsumedRecord& r, const harness::Process& p) {
    return instance_header(r).find("/" + std::to_string(p.pid()) + "/") != std::string::npos;
  }

  // What a relay that lost its slot produced too late: records after the new
  // owner's first record in the same partition, and records from
  // `woke_at_ms` on.
  struct LateRecords {
    std::map<int32_t, int64_t> first_of_new_owner;  // partition → offset
    int after_move = 0;
    int after_wake = 0;
  };
  static LateRecords late_records(const std::vector<harness::ConsumedRecord>& got,
                                  const harness::Process& old_owner,
                                  const harness::Process& new_owner, int64_t woke_at_ms) {
    LateRecords late;
    for (const auto& r : got) {
      if (produced_by(r, new_owner) && !late.first_of_new_owner.count(r.partition)) {
        late.first_of_new_owner[r.partition] = r.offset;
      }
    }
    for (const auto& r : got) {
      if (!produced_by(r, old_owner)) continue;
      auto first = late.first_of_new_owner.find(r.partition);
      if (first != late.first_of_new_owner.end() && r.offset > first->second) ++late.after_move;
      if (r.timestamp_ms >= woke_at_ms) ++late.after_wake;
    }
    return late;
  }
};

}  // namespace itest
