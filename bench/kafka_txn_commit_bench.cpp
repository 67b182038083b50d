// What one Kafka transaction costs, phase by phase, with the checkpoint
// carried either as a transactional offset commit (what the relay does) or as
// one record in a compacted checkpoint topic (the KIP-618 design, Kafka
// Connect's exactly-once source connectors). Runs against a real broker and
// uses librdkafka's C API only, so that the same source builds against any
// librdkafka (the system's, or one in a cache prefix).
//
// Each cycle: begin_transaction, produce K records to a 6-partition topic,
// wait for their delivery reports (the "produce" phase), commit the
// checkpoint (the "checkpoint" phase), commit_transaction (the "commit"
// phase). With --visible, a read_committed consumer assigned to the output
// topic then waits for the cycle's records, timed from commit_transaction's
// return. Nothing but the timing is printed; the records are filler.
//
//   kafka_txn_commit_bench --brokers 127.0.0.1:PORT [--mode offsets|record|none|alo]
//       [--records 1] [--cycles 300] [--warmup 30] [--value-bytes 256]
//       [--partitions 6] [--linger-ms 5] [--retry-backoff-ms N] [--gap-ms 0]
//       [--flush-first 1] [--visible] [--count-retries] [--label TEXT]
//       [--prefix NAME]
//
// Modes: offsets = send_offsets_to_transaction of offset 0 with the checkpoint
// as metadata, for one partition of a compacted topic; record = one record
// (key = slot name) to that partition in the same transaction; none = the
// transaction without a checkpoint; alo = an idempotent producer without
// transactions (produce and wait for the acks), the at-least-once baseline.
// Either checkpoint is two requests: AddOffsetsToTxn and TxnOffsetCommit, or
// AddPartitionsToTxn (for the checkpoint partition) and Produce; the record's
// "checkpoint" phase waits for its delivery report.
// --flush-first 0 sends the checkpoint while the records may still be in
// flight, as the relay can (commit_transaction then waits for them).
// --prefix: names of the topics, transactional.id and groups (default: a
// fresh one per run, so that nothing of an earlier run is fenced or resumed).
// --count-retries turns on librdkafka's "eos" debug log and counts the
// coordinator's CONCURRENT_TRANSACTIONS answers per request type.
// --stall-freeze CMD --stall-thaw CMD: after the warm-up, one transaction
// whose send_offsets_to_transaction (timeout --stall-timeout-ms, 1000) runs
// while CMD has frozen the broker, with socket.timeout.ms
// --stall-socket-timeout-ms (10000): how long the call blocks when the
// coordinator does not answer. CMD runs through the shell.
// --trace: librdkafka's "eos" and "protocol" debug logs and the phase
// boundaries on stderr, in ms since start (use with a few cycles).
// --consumer-protocol consumer: before the cycles, a consumer with
// group.protocol=consumer (KIP-848) subscribes to the output topic and
// reports whether it joins; librdkafka 2.4+ only.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "kafka_txn_commit_bench: %s\n", what.c_str());
  std::exit(1);
}

enum class Mode { kOffsets, kRecord, kNone, kAlo };

struct Options {
  std::string brokers;
  Mode mode = Mode::kOffsets;
  int records = 1;
  int cycles = 300;
  int warmup = 30;
  size_t value_bytes = 256;
  int partitions = 6;
  int linger_ms = 5;
  int retry_backoff_ms = -1;  // librdkafka's default
  int gap_ms = 0;
  bool flush_first = true;
  bool visible = false;
  bool count_retries = false;
  bool trace = false;
  std::string consumer_protocol;
  std::string stall_freeze;
  std::string stall_thaw;
  int stall_timeout_ms = 1000;
  int stall_socket_timeout_ms = 10000;
  std::string label;
  std::string prefix;
};

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kOffsets: return "offsets";
    case Mode::kRecord: return "record";
    case Mode::kNone: return "none";
    case Mode::kAlo: return "alo";
  }
  return "?";
}

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) die(std::string("missing value of ") + argv[i]);
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--brokers") o.brokers = value(i);
    else if (a == "--mode") {
      const std::string m = value(i);
      if (m == "offsets") o.mode = Mode::kOffsets;
      else if (m == "record") o.mode = Mode::kRecord;
      else if (m == "none") o.mode = Mode::kNone;
      else if (m == "alo") o.mode = Mode::kAlo;
      else die("unknown mode " + m);
    } else if (a == "--records") o.records = std::stoi(value(i));
    else if (a == "--cycles") o.cycles = std::stoi(value(i));
    else if (a == "--warmup") o.warmup = std::stoi(value(i));
    else if (a == "--value-bytes") o.value_bytes = std::stoul(value(i));
    else if (a == "--partitions") o.partitions = std::stoi(value(i));
    else if (a == "--linger-ms") o.linger_ms = std::stoi(value(i));
    else if (a == "--retry-backoff-ms") o.retry_backoff_ms = std::stoi(value(i));
    else if (a == "--gap-ms") o.gap_ms = std::stoi(value(i));
    else if (a == "--flush-first") o.flush_first = std::stoi(value(i)) != 0;
    else if (a == "--visible") o.visible = true;
    else if (a == "--count-retries") o.count_retries = true;
    else if (a == "--trace") o.trace = true;
    else if (a == "--consumer-protocol") o.consumer_protocol = value(i);
    else if (a == "--stall-freeze") o.stall_freeze = value(i);
    else if (a == "--stall-thaw") o.stall_thaw = value(i);
    else if (a == "--stall-timeout-ms") o.stall_timeout_ms = std::stoi(value(i));
    else if (a == "--stall-socket-timeout-ms") o.stall_socket_timeout_ms = std::stoi(value(i));
    else if (a == "--label") o.label = value(i);
    else if (a == "--prefix") o.prefix = value(i);
    else die("unknown argument " + std::string(a));
  }
  if (o.brokers.empty()) die("--brokers is required");
  if (o.records < 1 || o.cycles < 1 || o.warmup < 0 || o.partitions < 1) die("bad counts");
  if (o.stall_freeze.empty() != o.stall_thaw.empty()) die("--stall-freeze needs --stall-thaw");
  if (!o.stall_freeze.empty() && o.mode != Mode::kOffsets) die("the stall test is for offsets");
  if (o.prefix.empty()) {
    // Fresh names per run: a transactional.id or group left by an earlier
    // run must not be fenced or resumed here.
    o.prefix = "txnbench-" +
               std::to_string(std::chrono::system_clock::now().time_since_epoch().count() /
                              1000000) +
               "-" + mode_name(o.mode);
  }
  return o;
}

// The coordinator's CONCURRENT_TRANSACTIONS answers, by the log facility
// that reported them (ADDPARTS: AddPartitionsToTxn, ADDOFFSETS:
// AddOffsetsToTxn, TXNOFFSETCOMMIT ...). librdkafka logs them only at debug
// level "eos", with the error's description or its name.
struct RetryCounts {
  std::atomic<int> add_partitions{0};
  std::atomic<int> add_offsets{0};
  std::atomic<int> other{0};
  int total() const { return add_partitions + add_offsets + other; }
};
RetryCounts g_retries;

// The first "not supported" the KIP-848 probe's debug log names: librdkafka
// keeps retrying an unsupported ConsumerGroupHeartbeat without telling the
// application.
std::mutex g_note_mutex;
std::string g_unsupported_note;

bool g_trace = false;
const Clock::time_point g_start = Clock::now();

double trace_ms() {
  return std::chrono::duration<double, std::milli>(Clock::now() - g_start).count();
}

void trace(const char* what, int cycle) {
  if (g_trace) std::fprintf(stderr, "%10.3f bench: cycle %d: %s\n", trace_ms(), cycle, what);
}

void on_log(const rd_kafka_t*, int level, const char* fac, const char* buf) {
  if (std::strstr(buf, "not supported") != nullptr) {
    std::lock_guard lock(g_note_mutex);
    if (g_unsupported_note.empty()) g_unsupported_note = std::string(fac) + ": " + buf;
  }
  const bool concurrent = std::strstr(buf, "CONCURRENT_TRANSACTIONS") != nullptr ||
                          std::strstr(buf, "another concurrent operation") != nullptr;
  if (concurrent) {
    if (std::strcmp(fac, "ADDPARTS") == 0) ++g_retries.add_partitions;
    else if (std::strcmp(fac, "ADDOFFSETS") == 0) ++g_retries.add_offsets;
    else ++g_retries.other;
  }
  if (g_trace) std::fprintf(stderr, "%10.3f %s %s\n", trace_ms(), fac, buf);
  else if (level <= 4) std::fprintf(stderr, "librdkafka %s: %s\n", fac, buf);
}

rd_kafka_conf_t* make_conf(const Options& o,
                           std::initializer_list<std::pair<const char*, std::string>> props) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const char* k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      die(std::string("setting ") + k + ": " + err);
    }
  };
  set("bootstrap.servers", o.brokers);
  for (const auto& [k, v] : props) set(k, v);
  rd_kafka_conf_set_log_cb(conf, on_log);
  return conf;
}

void check(rd_kafka_error_t* e, const char* what) {
  if (!e) return;
  const std::string msg = std::string(what) + ": " + rd_kafka_error_name(e) + ": " +
                          rd_kafka_error_string(e);
  rd_kafka_error_destroy(e);
  die(msg);
}

void create_topics(const Options& o, const std::string& output, const std::string& checkpoints) {
  char err[512];
  rd_kafka_t* admin = rd_kafka_new(RD_KAFKA_PRODUCER, make_conf(o, {}), err, sizeof err);
  if (!admin) die(err);
  rd_kafka_NewTopic_t* topics[2];
  topics[0] = rd_kafka_NewTopic_new(output.c_str(), o.partitions, 1, err, sizeof err);
  topics[1] = rd_kafka_NewTopic_new(checkpoints.c_str(), 1, 1, err, sizeof err);
  if (!topics[0] || !topics[1]) die(err);
  if (rd_kafka_NewTopic_set_config(topics[1], "cleanup.policy", "compact")) die("topic config");
  rd_kafka_queue_t* q = rd_kafka_queue_new(admin);
  rd_kafka_CreateTopics(admin, topics, 2, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  if (!ev) die("CreateTopics timed out");
  if (rd_kafka_event_error(ev)) die(std::string("CreateTopics: ") + rd_kafka_event_error_string(ev));
  size_t n = 0;
  const rd_kafka_topic_result_t** res =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      die(std::string("creating ") + rd_kafka_topic_result_name(res[i]) + ": " +
          rd_kafka_topic_result_error_string(res[i]));
    }
  }
  rd_kafka_event_destroy(ev);
  rd_kafka_NewTopic_destroy_array(topics, 2);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(admin);
}

std::atomic<int> g_failed_reports{0};

void on_delivery(rd_kafka_t*, const rd_kafka_message_t* m, void*) {
  if (m->err) {
    ++g_failed_reports;
    std::fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
  }
}

// Same shape as the relay's checkpoint text (~95 bytes), so that the offset
// metadata and the checkpoint record weigh what they would in production.
std::string checkpoint_text(int cycle) {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "v3 systemid=7312345678901234567 tli=2 end_lsn=16/%08X last_row=whole "
                "sel=8bde11117f5abc10",
                static_cast<unsigned>(0xB3000000u + static_cast<unsigned>(cycle) * 64u));
  return buf;
}

// The cycle number is the first bytes of each value, so that the consumer
// knows which transaction a record belongs to.
void fill_value(std::string& v, int cycle) {
  char head[24];
  const int n = std::snprintf(head, sizeof head, "%010d:", cycle);
  std::memcpy(v.data(), head, std::min<size_t>(static_cast<size_t>(n), v.size()));
}

int cycle_of(const rd_kafka_message_t* m) {
  if (m->len < 10) return -1;
  const char* p = static_cast<const char*>(m->payload);
  int c = 0;
  for (int i = 0; i < 10; ++i) {
    if (p[i] < '0' || p[i] > '9') return -1;
    c = c * 10 + (p[i] - '0');
  }
  return c;
}

rd_kafka_t* make_consumer(const Options& o, const std::string& output) {
  char err[512];
  rd_kafka_conf_t* conf = make_conf(o, {{"group.id", o.prefix + "-reader"},
                                        {"enable.auto.commit", "false"},
                                        {"isolation.level", "read_committed"},
                                        {"fetch.wait.max.ms", "5"},
                                        {"fetch.error.backoff.ms", "5"},
                                        {"auto.offset.reset", "latest"}});
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c) die(err);
  rd_kafka_poll_set_consumer(c);
  // The topic is this run's own, so reading it from the start misses
  // nothing; an end offset resolved after the first commit would.
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(o.partitions);
  for (int p = 0; p < o.partitions; ++p) {
    rd_kafka_topic_partition_list_add(parts, output.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  }
  if (rd_kafka_assign(c, parts)) die("assign");
  rd_kafka_topic_partition_list_destroy(parts);
  return c;
}

// Waits until the consumer has read `count` records of `cycle`; records of
// other cycles are skipped. Returns false after `limit`.
bool await_visible(rd_kafka_t* consumer, int cycle, int count, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  int seen = 0;
  while (seen < count) {
    if (Clock::now() > deadline) return false;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 100);
    if (!m) continue;
    if (!m->err && cycle_of(m) == cycle) ++seen;
    else if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::fprintf(stderr, "consumer: %s\n", rd_kafka_err2str(m->err));
    }
    rd_kafka_message_destroy(m);
  }
  return true;
}

// KIP-848: the broker-side assignor. librdkafka refuses the property before
// 2.4; 2.14.2 sends ConsumerGroupHeartbeat v1 only and documents Kafka 4.0+
// as the requirement.
void try_consumer_protocol(const Options& o, const std::string& output) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(conf, on_log);
  const std::pair<const char*, std::string> props[] = {
      {"bootstrap.servers", o.brokers},
      {"group.id", o.prefix + "-kip848"},
      {"group.protocol", o.consumer_protocol},
      {"debug", "cgrp"},
  };
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      std::printf("group.protocol=%s: refused by librdkafka %s: %s\n", o.consumer_protocol.c_str(),
                  rd_kafka_version_str(), err);
      rd_kafka_conf_destroy(conf);
      return;
    }
  }
  rd_kafka_t* c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!c) {
    std::printf("group.protocol=%s: rd_kafka_new failed: %s\n", o.consumer_protocol.c_str(), err);
    return;
  }
  rd_kafka_poll_set_consumer(c);
  rd_kafka_topic_partition_list_t* topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, output.c_str(), RD_KAFKA_PARTITION_UA);
  const rd_kafka_resp_err_t serr = rd_kafka_subscribe(c, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (serr) std::printf("group.protocol=%s: subscribe: %s\n", o.consumer_protocol.c_str(),
                        rd_kafka_err2str(serr));
  const auto start = Clock::now();
  bool assigned = false;
  std::string last_error;
  while (Clock::now() - start < 20s) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c, 200);
    if (m) {
      if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        last_error = std::string(rd_kafka_err2name(m->err)) + ": " + rd_kafka_message_errstr(m);
      }
      rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_t* a = nullptr;
    if (!rd_kafka_assignment(c, &a) && a) {
      assigned = a->cnt > 0;
      rd_kafka_topic_partition_list_destroy(a);
    }
    if (assigned || !last_error.empty()) break;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::string note;
  {
    std::lock_guard lock(g_note_mutex);
    note = g_unsupported_note;
  }
  std::printf("group.protocol=%s with librdkafka %s: %s after %.1f s%s%s%s%s\n",
              o.consumer_protocol.c_str(), rd_kafka_version_str(),
              assigned ? "joined, partitions assigned" : "no assignment", secs,
              last_error.empty() ? "" : "; error: ", last_error.c_str(),
              note.empty() ? "" : "; debug log: ", note.c_str());
  rd_kafka_consumer_close(c);
  rd_kafka_destroy(c);
}

struct Series {
  const char* name;
  std::vector<double> ms;
};

double pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // Nearest rank.
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

void run_shell(const std::string& cmd) {
  if (std::system(cmd.c_str()) != 0) die("command failed: " + cmd);
}

// One transaction whose checkpoint is sent while the broker is frozen.
void stall_test(const Options& o, rd_kafka_t* rk, rd_kafka_consumer_group_metadata_t* group,
                const std::string& output, const std::string& checkpoints) {
  check(rd_kafka_begin_transaction(rk), "begin_transaction");
  const std::string value(o.value_bytes, 's');
  if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(output.c_str()),
                        RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) {
    die("produce");
  }
  if (rd_kafka_flush(rk, 30000)) die("flush timed out");
  run_shell(o.stall_freeze);
  rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* tp = rd_kafka_topic_partition_list_add(offsets, checkpoints.c_str(), 0);
  tp->offset = 0;
  const auto t0 = Clock::now();
  rd_kafka_error_t* e = rd_kafka_send_offsets_to_transaction(rk, offsets, group, o.stall_timeout_ms);
  const double blocked = ms_since(t0);
  rd_kafka_topic_partition_list_destroy(offsets);
  std::printf("stall: librdkafka %s send_offsets_to_transaction(timeout %d ms), socket.timeout.ms "
              "%d, broker frozen: returned after %.0f ms: %s%s%s\n",
              rd_kafka_version_str(), o.stall_timeout_ms, o.stall_socket_timeout_ms, blocked,
              e ? rd_kafka_error_name(e) : "NO_ERROR", e ? " " : "", e ? rd_kafka_error_string(e) : "");
  if (e) {
    std::printf("stall: retriable=%d txn_requires_abort=%d fatal=%d\n",
                rd_kafka_error_is_retriable(e), rd_kafka_error_txn_requires_abort(e),
                rd_kafka_error_is_fatal(e));
    rd_kafka_error_destroy(e);
  }
  run_shell(o.stall_thaw);
  const auto t1 = Clock::now();
  rd_kafka_error_t* a = rd_kafka_abort_transaction(rk, 60000);
  std::printf("stall: abort_transaction after thaw: %.0f ms: %s\n", ms_since(t1),
              a ? rd_kafka_error_string(a) : "ok");
  if (a) rd_kafka_error_destroy(a);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const std::string output = o.prefix + "-out";
  const std::string checkpoints = o.prefix + "-checkpoints";
  const std::string slot = "orders_slot";
  create_topics(o, output, checkpoints);

  if (!o.consumer_protocol.empty()) try_consumer_protocol(o, output);

  const bool txn = o.mode != Mode::kAlo;
  // The relay's producer settings (src/kafka/producer.cpp), the linger apart.
  std::vector<std::pair<const char*, std::string>> props = {
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"partitioner", "murmur2_random"},
      {"linger.ms", std::to_string(o.linger_ms)},
      {"compression.type", "lz4"},
      {"socket.timeout.ms",
       std::to_string(o.stall_freeze.empty() ? 2000 : o.stall_socket_timeout_ms)},
  };
  if (txn) {
    props.emplace_back("transactional.id", o.prefix + "-" + slot);
    props.emplace_back("transaction.timeout.ms", "60000");
  }
  if (o.retry_backoff_ms >= 0) props.emplace_back("retry.backoff.ms", std::to_string(o.retry_backoff_ms));
  g_trace = o.trace;
  if (o.trace) props.emplace_back("debug", "eos,protocol");
  else if (o.count_retries) props.emplace_back("debug", "eos");

  char err[512];
  rd_kafka_conf_t* conf = make_conf(o, {});
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      die(std::string("setting ") + k + ": " + err);
    }
  }
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(err);
  if (txn) check(rd_kafka_init_transactions(rk, 30000), "init_transactions");

  rd_kafka_consumer_group_metadata_t* group =
      rd_kafka_consumer_group_metadata_new((o.prefix + "-group").c_str());
  rd_kafka_t* consumer = o.visible ? make_consumer(o, output) : nullptr;

  Series produce{"produce+flush", {}}, ckpt{"checkpoint", {}}, commit{"commit_transaction", {}},
      cycle{"cycle", {}}, visible{"visible", {}};
  // Cycles in which the coordinator answered CONCURRENT_TRANSACTIONS (the
  // previous transaction still completing, or a request of this one still
  // being written) against the others.
  Series cycle_retried{"cycle, retried", {}}, cycle_clean{"cycle, not retried", {}};
  int retried_cycles = 0;
  std::string value(o.value_bytes, 'x');
  for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>('a' + i % 26);

  const int total = o.warmup + (o.stall_freeze.empty() ? o.cycles : 0);
  const auto run_start = Clock::now();
  for (int c = 0; c < total; ++c) {
    const bool measured = c >= o.warmup;
    const int retries_before = g_retries.total();
    const auto t0 = Clock::now();
    trace("begin", c);
    if (txn) check(rd_kafka_begin_transaction(rk), "begin_transaction");
    for (int r = 0; r < o.records; ++r) {
      fill_value(value, c);
      const std::string key = "customer-" + std::to_string((c * o.records + r) % 1000);
      for (;;) {
        const rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(output.c_str()), RD_KAFKA_V_KEY(key.data(), key.size()),
            RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(std::string("produce: ") + rd_kafka_err2str(e));
        rd_kafka_poll(rk, 1);
      }
    }
    if (o.flush_first || !txn) {
      if (rd_kafka_flush(rk, 30000)) die("flush timed out");
    } else {
      rd_kafka_poll(rk, 0);
    }
    const auto t1 = Clock::now();
    trace("records delivered, checkpoint", c);

    const std::string text = checkpoint_text(c);
    if (o.mode == Mode::kOffsets) {
      rd_kafka_topic_partition_list_t* offsets = rd_kafka_topic_partition_list_new(1);
      rd_kafka_topic_partition_t* tp =
          rd_kafka_topic_partition_list_add(offsets, checkpoints.c_str(), 0);
      tp->offset = 0;
      tp->metadata = strdup(text.c_str());
      tp->metadata_size = text.size();
      check(rd_kafka_send_offsets_to_transaction(rk, offsets, group, 30000),
            "send_offsets_to_transaction");
      rd_kafka_topic_partition_list_destroy(offsets);
    } else if (o.mode == Mode::kRecord) {
      const rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(checkpoints.c_str()), RD_KAFKA_V_PARTITION(0),
          RD_KAFKA_V_KEY(slot.data(), slot.size()), RD_KAFKA_V_VALUE(const_cast<char*>(text.data()), text.size()),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (e) die(std::string("produce checkpoint: ") + rd_kafka_err2str(e));
      if (o.flush_first && rd_kafka_flush(rk, 30000)) die("flush timed out");
    }
    const auto t2 = Clock::now();
    trace("commit_transaction", c);
    if (txn) check(rd_kafka_commit_transaction(rk, 30000), "commit_transaction");
    const auto t3 = Clock::now();
    trace("committed", c);
    if (g_failed_reports) die("a record was refused");

    double vis = 0;
    if (consumer) {
      if (!await_visible(consumer, c, o.records, 10s)) die("records not visible after 10 s");
      vis = ms_since(t3);
    }
    if (measured) {
      const auto d = [](Clock::time_point a, Clock::time_point b) {
        return std::chrono::duration<double, std::milli>(b - a).count();
      };
      produce.ms.push_back(d(t0, t1));
      ckpt.ms.push_back(d(t1, t2));
      commit.ms.push_back(d(t2, t3));
      cycle.ms.push_back(d(t0, t3));
      if (consumer) visible.ms.push_back(vis);
      const int n = g_retries.total() - retries_before;
      if (n > 0) ++retried_cycles;
      (n > 0 ? cycle_retried : cycle_clean).ms.push_back(d(t0, t3));
    }
    if (o.gap_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.gap_ms));
  }
  const double run_s = std::chrono::duration<double>(Clock::now() - run_start).count();
  if (!o.stall_freeze.empty()) {
    stall_test(o, rk, group, output, checkpoints);
    rd_kafka_consumer_group_metadata_destroy(group);
    rd_kafka_destroy(rk);
    return 0;
  }

  std::printf("librdkafka %s  mode=%s records=%d value=%zu partitions=%d linger.ms=%d "
              "retry.backoff.ms=%s gap_ms=%d flush_first=%d cycles=%d warmup=%d%s%s\n",
              rd_kafka_version_str(), mode_name(o.mode), o.records, o.value_bytes, o.partitions,
              o.linger_ms,
              o.retry_backoff_ms >= 0 ? std::to_string(o.retry_backoff_ms).c_str() : "default",
              o.gap_ms, o.flush_first ? 1 : 0, o.cycles, o.warmup, o.label.empty() ? "" : "  ",
              o.label.c_str());
  std::printf("%-20s %8s %8s %8s %8s %8s  (ms)\n", "phase", "p50", "p90", "p99", "max", "mean");
  std::vector<const Series*> all = {&produce, &ckpt, &commit, &cycle};
  if (consumer) all.push_back(&visible);
  if (o.count_retries) {
    all.push_back(&cycle_retried);
    all.push_back(&cycle_clean);
  }
  for (const Series* s : all) {
    if (s->ms.empty()) {
      std::printf("%-20s %8s\n", s->name, "none");
      continue;
    }
    double sum = 0;
    for (double x : s->ms) sum += x;
    std::printf("%-20s %8.2f %8.2f %8.2f %8.2f %8.2f\n", s->name, pct(s->ms, 50), pct(s->ms, 90),
                pct(s->ms, 99), pct(s->ms, 100), sum / static_cast<double>(s->ms.size()));
  }
  std::printf("cycles/s (all %d, gaps and visibility waits included): %.1f\n", total,
              total / run_s);
  if (o.count_retries) {
    std::printf("CONCURRENT_TRANSACTIONS answers (all cycles): AddPartitionsToTxn %d, "
                "AddOffsetsToTxn %d, other %d; measured cycles with any: %d of %d\n",
                g_retries.add_partitions.load(), g_retries.add_offsets.load(),
                g_retries.other.load(), retried_cycles, o.cycles);
  }
  // One line per run for collating tables: p50/p99 of each phase.
  auto pp = [](const Series& s) {
    char b[48];
    std::snprintf(b, sizeof b, "%.1f / %.1f", pct(s.ms, 50), pct(s.ms, 99));
    return std::string(b);
  };
  std::printf("ROW | %s | %s | %d | %d | %s | %d | %d | %s | %s | %s | %s | %s |\n",
              rd_kafka_version_str(), mode_name(o.mode), o.records, o.linger_ms,
              o.retry_backoff_ms >= 0 ? std::to_string(o.retry_backoff_ms).c_str() : "default",
              o.gap_ms, o.flush_first ? 1 : 0, pp(produce).c_str(), pp(ckpt).c_str(),
              pp(commit).c_str(), pp(cycle).c_str(), consumer ? pp(visible).c_str() : "-");

  if (consumer) {
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
  }
  rd_kafka_consumer_group_metadata_destroy(group);
  rd_kafka_flush(rk, 10000);
  rd_kafka_destroy(rk);
  return 0;
}
