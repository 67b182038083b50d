#include "app/status.h"

#include <httplib.h>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "app/json_text.h"
#include "driver/supervisor.h"
#include "kafka/checkpoint_store.h"
#include "kafka/group_holders.h"
#include "pg/slot_status.h"

namespace app {

namespace {

// What the running instance said of a slot (GET /status on http.listen).
struct InstanceView {
  std::string state;
  std::optional<std::string> last_error;
  std::optional<std::string> last_error_at;
};

struct SlotReport {
  std::string slot;
  std::string database;  // the DSN, redacted
  std::string publication;

  std::optional<std::string> postgres_error;
  std::optional<pg::ServerPosition> position;
  std::optional<pg::SlotRow> row;  // nullopt with no postgres_error: no such slot
  std::optional<int64_t> lag_bytes;
  std::optional<int64_t> retained_bytes;
  std::optional<double> lag_seconds;
  std::optional<wal::Lsn> oldest_pending_commit;
  std::optional<std::string> lag_seconds_error;

  std::optional<relay::Checkpoint> checkpoint;
  std::optional<std::string> checkpoint_error;

  std::optional<kafka::SlotHolder> holder;  // group mode
  std::optional<std::string> owner_error;

  std::optional<InstanceView> instance;
  std::optional<std::string> instance_error;

  std::string status = "healthy";
  int exit_code = kStatusHealthy;
  std::vector<std::string> reasons;
};

// Worse first: a slot at risk outranks one we cannot judge, which outranks
// one lagging.
int severity(int code) {
  switch (code) {
    case kStatusAtRisk: return 3;
    case kStatusUnknown: return 2;
    case kStatusLagging: return 1;
    default: return 0;
  }
}

void add_finding(SlotReport& r, int code, const char* status, std::string reason) {
  r.reasons.push_back(std::move(reason));
  if (severity(code) > severity(r.exit_code)) {
    r.exit_code = code;
    r.status = status;
  }
}

std::string human_bytes(int64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (std::fabs(v) >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", v, kUnits[unit]);
  return buf;
}

void read_postgres(const StatusOptions& o, const config::Config& slot_cfg, SlotReport& r) {
  pg::SlotInspector inspector(slot_cfg.postgres.dsn, o.timeout);
  auto position = inspector.position();
  if (!position) {
    r.postgres_error = position.error().describe();
    return;
  }
  r.position = *position;
  auto row = inspector.slot(slot_cfg.postgres.slot);
  if (!row) {
    r.postgres_error = row.error().describe();
    return;
  }
  r.row = *row;
  if (!r.row) return;
  const wal::Lsn end = position->wal_end;
  if (r.row->confirmed_flush) {
    const wal::Lsn c = *r.row->confirmed_flush;
    r.lag_bytes = end > c ? static_cast<int64_t>(end.value() - c.value()) : 0;
  }
  if (r.row->restart_lsn) {
    const wal::Lsn restart = *r.row->restart_lsn;
    r.retained_bytes = end > restart ? static_cast<int64_t>(end.value() - restart.value()) : 0;
  }
  if (r.row->wal_status == std::optional<std::string>("lost") || !r.row->confirmed_flush) return;
  auto pending =
      inspector.oldest_pending_commit(slot_cfg.postgres.slot, slot_cfg.postgres.publication);
  if (!pending) {
    r.lag_seconds_error = pending.error().describe();
  } else if (!*pending) {
    r.lag_seconds = 0;
  } else {
    const auto& p = **pending;
    r.oldest_pending_commit = p.commit_lsn;
    r.lag_seconds = std::max<int64_t>(0, p.server_now_unix_micros - p.commit_unix_micros) / 1e6;
  }
}

void read_checkpoint(const StatusOptions& o, const config::Config& cfg,
                     const config::Config& slot_cfg, int index, SlotReport& r) {
  const auto place = driver::checkpoint_place(cfg, slot_cfg, index);
  auto checkpoint = kafka::read_checkpoint(cfg.kafka.brokers, cfg.kafka.properties, place,
                                           o.timeout);
  if (!checkpoint) {
    r.checkpoint_error = checkpoint.error().describe();
  } else {
    r.checkpoint = *checkpoint;
  }
}

// The host to ask for http.listen: a wildcard address means this host.
std::optional<std::pair<std::string, int>> instance_address(const config::HttpConfig& http) {
  if (http.listen.empty()) return std::nullopt;
  const auto colon = http.listen.rfind(':');
  std::string host = http.listen.substr(0, colon);
  const int port = std::stoi(http.listen.substr(colon + 1));
  if (port == 0) return std::nullopt;
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "[::]") host = "[::1]";
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, port);
}

// Fills each report's `instance` from the running instance's /status.
void ask_instance(const StatusOptions& o, const config::Config& cfg,
                  std::vector<SlotReport>& reports) {
  const auto address = instance_address(cfg.http);
  auto set_error = [&](const std::string& why) {
    for (auto& r : reports) r.instance_error = why;
  };
  if (!address) {
    set_error("http.listen is empty or port 0: no instance to ask");
    return;
  }
  httplib::Client client(address->first, address->second);
  const auto seconds = std::max<int64_t>(1, o.timeout.count() / 1000);
  client.set_connection_timeout(static_cast<time_t>(seconds));
  client.set_read_timeout(static_cast<time_t>(seconds));
  auto res = client.Get("/status");
  const std::string where = "http://" + cfg.http.listen + "/status";
  if (!res) {
    set_error("no instance answered at " + where + ": " + httplib::to_string(res.error()));
    return;
  }
  if (res->status != 200) {
    set_error(where + " answered " + std::to_string(res->status));
    return;
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(res->body).get(doc) != simdjson::SUCCESS) {
    set_error(where + " answered something that is not JSON");
    return;
  }
  simdjson::dom::array slots;
  if (doc["slots"].get_array().get(slots) != simdjson::SUCCESS) {
    set_error(where + " answered without a slots list");
    return;
  }
  for (auto& r : reports) {
    r.instance_error = "the instance at " + where + " does not serve this slot";
  }
  for (simdjson::dom::element s : slots) {
    std::string_view name;
    if (s["slot"].get_string().get(name) != simdjson::SUCCESS) continue;
    for (auto& r : reports) {
      if (r.slot != name) continue;
      InstanceView v;
      std::string_view state;
      if (s["state"].get_string().get(state) == simdjson::SUCCESS) v.state = state;
      std::string_view message, at;
      if (s["last_error"]["message"].get_string().get(message) == simdjson::SUCCESS) {
        v.last_error = std::string(message);
      }
      if (s["last_error"]["at"].get_string().get(at) == simdjson::SUCCESS) {
        v.last_error_at = std::string(at);
      }
      r.instance = std::move(v);
      r.instance_error.reset();
    }
  }
}

void read_owners(const StatusOptions& o, const config::Config& cfg,
                 std::vector<SlotReport>& reports) {
  if (!cfg.group) return;
  auto holders = kafka::read_group_holders(cfg.kafka.brokers, cfg.kafka.properties, cfg.group->id,
                                           cfg.group->coordination_topic,
                                           static_cast<int>(reports.size()), o.timeout);
  for (size_t i = 0; i < reports.size(); ++i) {
    if (!holders) {
      reports[i].owner_error = holders.error().describe();
    } else {
      reports[i].holder = holders->slots[i];
      if (!holders->describe_error.empty()) reports[i].owner_error = holders->describe_error;
    }
  }
}

// The verdict, from what was read; every reason names what to do.
void judge(const StatusOptions& o, SlotReport& r) {
  if (r.postgres_error) {
    add_finding(r, kStatusUnknown, "unknown",
                "cannot read the slot from PostgreSQL: " + *r.postgres_error);
    return;
  }
  if (!r.row) {
    if (r.checkpoint) {
      add_finding(r, kStatusAtRisk, "lost",
            "the slot does not exist, but Kafka holds its checkpoint at lsn=" +
                r.checkpoint->end_lsn.to_string() +
                ": rows committed after it were never streamed; compare the outbox with Kafka "
                "from that position, then create the slot by hand or set "
                "postgres.on_slot_lost: recreate (docs/errors.md)");
    } else {
      add_finding(r, kStatusAtRisk, "missing",
            std::string("the slot does not exist: nothing captures the outbox's changes until "
                        "the relay creates it, and rows committed before that are never "
                        "published; start the relay") +
                (r.checkpoint_error ? " (the checkpoint could not be read: " +
                                          *r.checkpoint_error + ")"
                                    : ""));
    }
    return;
  }
  const auto& w = r.row->wal_status;
  if (w == std::optional<std::string>("lost")) {
    add_finding(r, kStatusAtRisk, "lost",
          "wal_status=lost: the server removed WAL the slot needed (max_slot_wal_keep_size); "
          "rows after confirmed lsn=" +
              (r.row->confirmed_flush ? r.row->confirmed_flush->to_string() : std::string("?")) +
              " are gone from the stream: compare the outbox with Kafka from there, then set "
              "postgres.on_slot_lost: recreate (docs/errors.md)");
  } else if (w == std::optional<std::string>("unreserved")) {
    add_finding(r, kStatusAtRisk, "at_risk",
          "wal_status=unreserved: the slot is lost at the next checkpoint unless it catches up; "
          "start the relay or raise max_slot_wal_keep_size now");
  }
  if (r.row->safe_wal_size && *r.row->safe_wal_size < o.min_safe_wal_bytes) {
    add_finding(r, kStatusAtRisk, "at_risk",
          "safe_wal_size=" + human_bytes(*r.row->safe_wal_size) + " is below " +
              human_bytes(o.min_safe_wal_bytes) +
              " (--min-safe-wal-bytes): the slot is invalidated once that much more WAL is "
              "written; let the relay catch up or raise max_slot_wal_keep_size");
  }
  if (r.lag_bytes && *r.lag_bytes > o.max_lag_bytes) {
    add_finding(r, kStatusLagging, "lagging",
          "lag " + human_bytes(*r.lag_bytes) + " exceeds " + human_bytes(o.max_lag_bytes) +
              " (--max-lag-bytes)");
  }
  if (r.lag_seconds && *r.lag_seconds > o.max_lag_seconds) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "oldest unconfirmed outbox transaction committed %.1f s ago, over %.1f s "
                  "(--max-lag-seconds)",
                  *r.lag_seconds, o.max_lag_seconds);
    add_finding(r, kStatusLagging, "lagging", buf);
  }
  if (r.exit_code == kStatusLagging && !r.row->active_pid) {
    r.reasons.push_back("no walsender holds the slot: no relay is streaming it; start one");
  }
}

std::string opt_lsn(const std::optional<wal::Lsn>& l) {
  return l ? json_string(l->to_string()) : "null";
}
template <typename T>
std::string opt_num(const std::optional<T>& v) {
  if (!v) return "null";
  std::ostringstream o;
  o << *v;
  return o.str();
}
// Seconds with millisecond precision, whatever their size.
std::string opt_num(const std::optional<double>& v) {
  if (!v) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", *v);
  return buf;
}
std::string opt_str(const std::optional<std::string>& v) { return v ? json_string(*v) : "null"; }

std::string slot_json(const SlotReport& r) {
  std::string o = "{\"slot\":" + json_string(r.slot) + ",\"status\":" + json_string(r.status) +
                  ",\"exit_code\":" + std::to_string(r.exit_code) + ",\"reasons\":[";
  for (size_t i = 0; i < r.reasons.size(); ++i) o += (i ? "," : "") + json_string(r.reasons[i]);
  o += "],\"database\":" + json_string(r.database);
  o += ",\"publication\":" + json_string(r.publication);
  o += ",\"postgres_error\":" + opt_str(r.postgres_error);
  o += ",\"in_recovery\":" +
       (r.position ? std::string(r.position->in_recovery ? "true" : "false") : "null");
  o += ",\"wal_end_lsn\":" +
       (r.position ? opt_lsn(r.position->wal_end) : std::string("null"));
  o += ",\"exists\":" + (r.postgres_error ? std::string("null") : r.row ? "true" : "false");
  const pg::SlotRow* row = r.row ? &*r.row : nullptr;
  o += ",\"active_pid\":" + (row ? opt_num(row->active_pid) : "null");
  o += ",\"walsender_application_name\":" + (row ? opt_str(row->application_name) : "null");
  o += ",\"confirmed_lsn\":" + (row ? opt_lsn(row->confirmed_flush) : "null");
  o += ",\"restart_lsn\":" + (row ? opt_lsn(row->restart_lsn) : "null");
  o += ",\"lag_bytes\":" + opt_num(r.lag_bytes);
  o += ",\"lag_seconds\":" + opt_num(r.lag_seconds);
  o += ",\"oldest_pending_commit_lsn\":" + opt_lsn(r.oldest_pending_commit);
  o += ",\"lag_seconds_error\":" + opt_str(r.lag_seconds_error);
  o += ",\"retained_wal_bytes\":" + opt_num(r.retained_bytes);
  o += ",\"wal_status\":" + (row ? opt_str(row->wal_status) : "null");
  o += ",\"safe_wal_bytes\":" + (row ? opt_num(row->safe_wal_size) : "null");
  o += ",\"checkpoint\":";
  if (r.checkpoint) {
    o += "{\"lsn\":" + json_string(r.checkpoint->end_lsn.to_string()) +
         ",\"last_row\":" + opt_num(r.checkpoint->last_row) + ",\"system_identifier\":" +
         (r.checkpoint->system_identifier
              ? json_string(std::to_string(*r.checkpoint->system_identifier))
              : "null") +
         ",\"timeline\":" + opt_num(r.checkpoint->timeline) + "}";
  } else {
    o += "null";
  }
  o += ",\"checkpoint_error\":" + opt_str(r.checkpoint_error);
  o += ",\"owner\":";
  if (r.holder) {
    o += "{\"instance\":" + opt_str(r.holder->last_committed_by) + ",\"assigned\":" +
         (r.holder->assigned ? std::string(*r.holder->assigned ? "true" : "false") : "null") +
         ",\"member_host\":" +
         (r.holder->member_host.empty() ? "null" : json_string(r.holder->member_host)) + "}";
  } else {
    o += "null";
  }
  o += ",\"owner_error\":" + opt_str(r.owner_error);
  o += ",\"instance\":";
  if (r.instance) {
    o += "{\"state\":" + json_string(r.instance->state) + ",\"last_error\":";
    o += r.instance->last_error ? "{\"message\":" + json_string(*r.instance->last_error) +
                                      ",\"at\":" + opt_str(r.instance->last_error_at) + "}"
                                : "null";
    o += "}";
  } else {
    o += "null";
  }
  o += ",\"instance_error\":" + opt_str(r.instance_error) + "}";
  return o;
}

std::string owner_text(const SlotReport& r) {
  if (!r.holder) return r.owner_error ? "?" : "-";
  if (r.holder->assigned == std::optional<bool>(false)) {
    return r.holder->last_committed_by ? "none (was " + *r.holder->last_committed_by + ")"
                                       : "none";
  }
  return r.holder->last_committed_by.value_or("?");
}

void print_table(const std::vector<SlotReport>& reports, bool group) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"SLOT", "STATUS"};
  if (group) header.push_back("OWNER");
  for (const char* h : {"PID", "CONFIRMED", "LAG", "LAG_S", "RETAINED", "WAL_STATUS", "SAFE_WAL",
                        "CHECKPOINT"}) {
    header.push_back(h);
  }
  rows.push_back(header);
  for (const auto& r : reports) {
    const pg::SlotRow* row = r.row ? &*r.row : nullptr;
    std::vector<std::string> cells = {r.slot, r.status};
    if (group) cells.push_back(owner_text(r));
    cells.push_back(row && row->active_pid ? std::to_string(*row->active_pid) : "-");
    cells.push_back(row && row->confirmed_flush ? row->confirmed_flush->to_string() : "-");
    cells.push_back(r.lag_bytes ? human_bytes(*r.lag_bytes) : "-");
    char secs[32] = "-";
    if (r.lag_seconds) std::snprintf(secs, sizeof secs, "%.1f", *r.lag_seconds);
    cells.push_back(r.lag_seconds_error ? "?" : secs);
    cells.push_back(r.retained_bytes ? human_bytes(*r.retained_bytes) : "-");
    cells.push_back(row && row->wal_status ? *row->wal_status : "-");
    cells.push_back(row && row->safe_wal_size ? human_bytes(*row->safe_wal_size) : "-");
    cells.push_back(r.checkpoint ? r.checkpoint->end_lsn.to_string()
                                 : (r.checkpoint_error ? "?" : "none"));
    rows.push_back(cells);
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& cells : rows) {
    for (size_t i = 0; i < cells.size(); ++i) width[i] = std::max(width[i], cells[i].size());
  }
  for (const auto& cells : rows) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    std::cout << line << '\n';
  }
  for (const auto& r : reports) {
    for (const auto& reason : r.reasons) std::cout << r.slot << ": " << reason << '\n';
    if (r.lag_seconds_error) {
      std::cout << r.slot << ": lag in seconds unknown: " << *r.lag_seconds_error << '\n';
    }
    if (r.checkpoint_error) {
      std::cout << r.slot << ": checkpoint unknown: " << *r.checkpoint_error << '\n';
    }
    if (r.owner_error) std::cout << r.slot << ": owner unknown: " << *r.owner_error << '\n';
    if (r.instance && r.instance->last_error) {
      std::cout << r.slot << ": last error (" << r.instance->last_error_at.value_or("?")
                << "): " << *r.instance->last_error << '\n';
    } else if (r.instance) {
      std::cout << r.slot << ": last error: none (instance state " << r.instance->state << ")\n";
    } else if (r.instance_error) {
      std::cout << r.slot << ": last error unknown: " << *r.instance_error << '\n';
    }
  }
}

}  // namespace

int run_status(const StatusOptions& o, const config::Config& cfg) {
  // The report is the output; librdkafka's own lines would only repeat it.
  spdlog::set_level(spdlog::level::off);
  std::vector<SlotReport> reports;
  const auto slots = config::slots_of(cfg);
  for (size_t i = 0; i < slots.size(); ++i) {
    const config::Config slot_cfg = config::for_slot(cfg, slots[i]);
    SlotReport r;
    r.slot = slot_cfg.postgres.slot;
    r.database = config::redact_dsn(slot_cfg.postgres.dsn);
    r.publication = slot_cfg.postgres.publication;
    read_postgres(o, slot_cfg, r);
    read_checkpoint(o, cfg, slot_cfg, static_cast<int>(i), r);
    reports.push_back(std::move(r));
  }
  read_owners(o, cfg, reports);
  ask_instance(o, cfg, reports);
  int exit_code = kStatusHealthy;
  for (auto& r : reports) {
    judge(o, r);
    if (severity(r.exit_code) > severity(exit_code)) exit_code = r.exit_code;
  }
  if (o.json) {
    std::string out = "{\"format\":1,\"exit_code\":" + std::to_string(exit_code) +
                      ",\"mode\":" + json_string(cfg.group ? "group" : "single") +
                      ",\"group\":" + (cfg.group ? json_string(cfg.group->id) : "null") +
                      ",\"delivery\":" +
                      json_string(cfg.kafka.delivery == config::DeliveryGuarantee::kExactlyOnce
                                      ? "exactly_once"
                                      : "at_least_once") +
                      ",\"slots\":[";
    for (size_t i = 0; i < reports.size(); ++i) out += (i ? "," : "") + slot_json(reports[i]);
    std::cout << out << "]}\n";
  } else {
    print_table(reports, cfg.group.has_value());
  }
  return exit_code;
}

}  // namespace app
