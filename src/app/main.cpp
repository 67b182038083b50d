#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <set>
#include <thread>
#include <tuple>
#include <variant>

#include "app/http_server.h"
#include "app/kafka_probe.h"
#include "app/status.h"
#include "app/logging.h"
#include "app/slot_monitor.h"
#include "config/config.h"
#include "config/units.h"
#include "kafka/admin.h"
#include "kafka/group_member.h"
#include "kafka/producer.h"
#include "driver/supervisor.h"
#include "pg/replication_slot_stats.h"
#include "pg/replication_stream.h"
#include "relay/yield_guard.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr std::chrono::milliseconds kSlotMonitorInterval{10000};

std::atomic<bool> g_stop{false};
int g_stop_fd = -1;

void on_signal(int) {
  g_stop.store(true);
  uint64_t one = 1;
  // write() is async-signal-safe; the loop polls this descriptor.
  [[maybe_unused]] auto n = write(g_stop_fd, &one, sizeof one);
}

void install_signal_handlers() {
  g_stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::variant<config::Config, int> load_config(const std::string& path) {
  auto loaded = config::load_file(path);
  if (auto* failure = std::get_if<config::LoadFailure>(&loaded)) {
    for (const auto& d : failure->diagnostics) std::cerr << d.format() << '\n';
    std::cerr << path << ": " << failure->diagnostics.size() << " error"
              << (failure->diagnostics.size() == 1 ? "" : "s") << '\n';
    return kExitUsage;
  }
  // The loader knows no libpq; the syntax of the DSN is checked here, so that
  // check-config catches it and run does not retry it forever.
  auto& cfg = std::get<config::Config>(loaded);
  if (auto r = pg::check_conninfo(cfg.postgres.dsn); !r) {
    std::cerr << path << ": " << r.error().describe() << '\n' << path << ": 1 error\n";
    return kExitUsage;
  }
  return std::get<config::Config>(std::move(loaded));
}

// Checks that the dead-letter topic exists before the first bad row needs
// it; a missing one would otherwise turn the dead-letter policy into a halt.
bool ensure_dead_letter_topic(kafka::Admin& admin, const config::Config& cfg) {
  if (cfg.outbox.on_bad_row != config::BadRowPolicy::kDeadLetter) return true;
  const auto& topic = cfg.outbox.dead_letter_topic;
  auto exists = admin.topic_exists(topic, std::chrono::seconds(10));
  if (!exists) {
    spdlog::warn(
        "cannot check dead-letter topic={}: {}; starting anyway: if it is missing, the first "
        "bad row stops the relay instead of being dead-lettered",
        topic, exists.error().describe());
    return true;
  }
  if (*exists) return true;
  if (!cfg.kafka.create_topics) {
    spdlog::error(
        "dead-letter topic={} does not exist and kafka.create_topics is false: create it "
        "(kafka-topics --create --topic {}) or set kafka.create_topics: true",
        topic, topic);
    return false;
  }
  if (auto r = admin.create_topic({topic, 1}, std::chrono::seconds(30));
      !r && r.error().code != kafka::errc::topic_exists) {
    spdlog::error(
        "cannot create dead-letter topic={}: {}; create it by hand, or grant the relay CREATE on "
        "the cluster",
        topic, r.error().describe());
    return false;
  }
  spdlog::info("created dead-letter topic={}", topic);
  return true;
}

// Every slot's dead-letter topic, checked once at start-up.
int check_dead_letter_topics(const config::Config& cfg) {
  auto admin = kafka::Admin::create({cfg.kafka.brokers, cfg.kafka.properties});
  if (!admin) {
    spdlog::error("{}", admin.error().describe());
    return kExitUsage;
  }
  std::set<std::string> checked;
  for (const auto& slot : config::slots_of(cfg)) {
    if (!checked.insert(slot.outbox.dead_letter_topic).second) continue;
    if (!ensure_dead_letter_topic(*admin, config::for_slot(cfg, slot))) return kExitRuntime;
  }
  return kExitOk;
}

// Waits up to `timeout` for a stop signal; true when one came.
bool stop_within(std::chrono::milliseconds timeout) {
  struct pollfd pfd = {g_stop_fd, POLLIN, 0};
  ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  return g_stop.load();
}

// The checkpoints live as committed offsets on a topic of their own, one
// partition per slot in group mode; the broker refuses offsets for
// partitions that do not exist, so the topic exists before any slot starts.
// A broker that cannot be reached (or refuses the credentials) is waited
// for, with backoff, as the pipelines wait for theirs; a configuration or
// authorization error stops the relay. nullopt: stopped while waiting.
std::optional<int> ensure_checkpoint_topic(const config::Config& cfg) {
  const auto place = driver::checkpoint_place(cfg, cfg, 0);
  const int partitions = cfg.group ? static_cast<int>(config::slots_of(cfg).size()) : 1;
  std::chrono::milliseconds backoff = cfg.postgres.reconnect_backoff_min;
  for (;;) {
    auto r = kafka::ensure_checkpoint_topic(cfg.kafka.brokers, cfg.kafka.properties, place.topic,
                                            partitions, std::chrono::seconds(10));
    if (r) return kExitOk;
    const auto& code = r.error().code;
    if (code == make_error_code(kafka::txn_errc::invalid_config) ||
        code == make_error_code(kafka::txn_errc::unauthorized)) {
      spdlog::error(
          "checkpoint topic={}: {}; fix the ACL or kafka.properties it names "
          "(docs/kafka-transactions.md), then start again",
          place.topic, r.error().describe());
      return kExitRuntime;
    }
    spdlog::error(
        "checkpoint topic={}: {}; retrying in {} ms (no slot streams until Kafka answers: "
        "check kafka.brokers and the network path)",
        place.topic, r.error().describe(), backoff.count());
    if (stop_within(backoff)) return std::nullopt;
    backoff = std::min(backoff * 2, cfg.postgres.reconnect_backoff_max);
  }
}

app::BuildInfo build_info() {
  return app::BuildInfo{OUTBOX_RELAY_VERSION, kafka::library_version(), pg::libpq_version()};
}

// Starts the endpoints unless http.listen is empty; false when it cannot.
bool start_http(app::HttpServer& http, const config::HttpConfig& cfg) {
  if (cfg.listen.empty()) return true;
  if (auto r = http.start(cfg.listen); !r) {
    spdlog::error("{}: free the port or change http.listen", r.error().describe());
    return false;
  }
  // With port 0 the kernel picks one; name it so that callers can find it.
  spdlog::info("http listening on {}:{}", cfg.listen.substr(0, cfg.listen.rfind(':')),
               http.port());
  return true;
}

app::HttpServer::Ownership ownership_of(const driver::Supervisor& supervisor,
                                        const kafka::GroupMember& member) {
  app::HttpServer::Ownership o;
  o.joined = [&member] { return member.joined(); };
  o.rebalances = [&member] { return member.rebalances(); };
  o.slots = [&supervisor] {
    std::vector<app::HttpServer::SlotOwnership> out;
    for (const auto& v : supervisor.view()) {
      out.push_back({v.slot, v.assigned,
                     v.state == static_cast<int>(relay::PipelineState::kStreaming), v.stats});
    }
    return out;
  };
  o.stats = [&supervisor] {
    std::vector<app::SlotStats> out;
    for (const auto& v : supervisor.view()) {
      if (v.ever_assigned) out.push_back({v.slot, v.stats});
    }
    return out;
  };
  return o;
}

// Joins the consumer group whose assignment decides which slots this
// instance streams. Null (after logging why) when it cannot; `exit_code`
// then says how to exit.
std::unique_ptr<kafka::GroupMember> join_group(const config::Config& cfg, relay::Lease& lease,
                                               driver::Supervisor& supervisor,
                                               const driver::InstanceIdentity& identity,
                                               int& exit_code) {
  const config::GroupConfig& group = *cfg.group;
  const size_t slots = config::slots_of(cfg).size();
  kafka::GroupOptions go;
  go.brokers = cfg.kafka.brokers;
  go.properties = cfg.kafka.properties;
  go.group_id = group.id;
  go.topic = group.coordination_topic;
  go.slots = static_cast<int>(slots);
  go.session_timeout = group.session_timeout;
  go.instance = identity.describe();
  // Exactly once, each slot's producer commits its checkpoint in its Kafka
  // transactions; at least once, the member does.
  if (cfg.kafka.delivery == config::DeliveryGuarantee::kAtLeastOnce) {
    go.checkpoint_topic = driver::checkpoint_place(cfg, cfg, 0).topic;
  }
  auto member = kafka::GroupMember::create(go, lease, supervisor);
  if (!member) {
    spdlog::error("{}", member.error().describe());
    exit_code = kExitUsage;
    return nullptr;
  }
  auto partitions = (*member)->ensure_topic(std::chrono::seconds(30));
  if (!partitions) {
    spdlog::error("group={} coordination topic={}: {}{}", group.id, group.coordination_topic,
                  partitions.error().describe(),
                  partitions.error().code == kafka::errc::too_few_partitions
                      ? ""
                      : "; check kafka.brokers and that the relay may describe and create the "
                        "topic, then start again");
    // A topic too small for the slots is a configuration to fix, like a bad
    // file; an unreachable cluster is a runtime failure.
    exit_code = partitions.error().code == kafka::errc::too_few_partitions ? kExitUsage
                                                                                  : kExitRuntime;
    return nullptr;
  }
  if (*partitions > static_cast<int>(slots)) {
    spdlog::warn("coordination topic={} has {} partitions for {} slots; the extra ones are idle",
                 group.coordination_topic, *partitions, slots);
  }
  return std::move(*member);
}

// What systemd is told: ready once a group member has joined, or once the
// single slot streams; the watchdog is fed only while no slot's loop is
// stuck, so that WatchdogSec= restarts a relay stuck anywhere in it.
class SystemdNotifier {
 public:
  void update(bool ready, const char* status, bool stalled, int64_t now_ms) {
    if (ready && !ready_sent_) {
      sd_notify(0, fmt::format("READY=1\nSTATUS={}", status).c_str());
      ready_sent_ = true;
    } else if (ready_sent_ && status != last_status_) {
      sd_notify(0, fmt::format("STATUS={}", status).c_str());
    }
    last_status_ = status;
    if (!stalled && now_ms - last_watchdog_ms_ >= 500) {
      sd_notify(0, "WATCHDOG=1");
      last_watchdog_ms_ = now_ms;
    }
  }

 private:
  bool ready_sent_ = false;
  const char* last_status_ = nullptr;
  int64_t last_watchdog_ms_ = 0;
};

// Group mode: an assigned slot this instance cannot stream for
// group.yield_after (the server unreachable from here, say) is given up,
// with every other slot of this instance, by leaving the group for a while,
// so that an instance that can reach the server takes it.
class Yielder {
 public:
  Yielder(const config::GroupConfig& group, kafka::GroupMember& member)
      : group_id_(group.id), member_(member) {
    if (group.yield_after) guard_.emplace(*group.yield_after);
  }

  void turn(const std::vector<driver::Supervisor::SlotView>& views) {
    if (!guard_) return;
    const auto now = relay::YieldGuard::Clock::now();
    if (away_until_) {
      if (now < *away_until_) return;
      away_until_.reset();
      spdlog::info("group={} joining again after yielding", group_id_);
      if (auto r = member_.subscribe(); !r) spdlog::error("{}", r.error().describe());
      return;
    }
    std::vector<relay::YieldGuard::Observed> assigned;
    for (size_t i = 0; i < views.size(); ++i) {
      if (!views[i].assigned) continue;
      assigned.push_back({static_cast<int>(i),
                          views[i].state == static_cast<int>(relay::PipelineState::kStreaming)});
    }
    const auto stuck = guard_->observe(now, assigned);
    if (!stuck) return;
    const auto stuck_for = guard_->stuck_for(*stuck, now);
    const auto away = guard_->yielded();
    ++yields_;
    spdlog::warn(
        "group={} slot={} has not streamed for {} ms (group.yield_after): leaving the group for "
        "{} ms so that another instance can take its slots (yield {} in a row)",
        group_id_, views[*stuck].slot, stuck_for.count(), away.count(),
        guard_->consecutive_yields());
    member_.leave();
    away_until_ = now + away;
  }

  uint64_t yields() const { return yields_.load(); }

 private:
  std::string group_id_;
  kafka::GroupMember& member_;
  std::optional<relay::YieldGuard> guard_;
  std::optional<relay::YieldGuard::Clock::time_point> away_until_;
  std::atomic<uint64_t> yields_{0};
};

// The main loop, the same for both modes: the group's poll (its rebalance
// callbacks start and stop slots) or a wait on the stop signal, and what
// systemd is told. Returns on SIGTERM/SIGINT or a slot's failure.
void supervise_until_stopped(driver::Supervisor& supervisor, kafka::GroupMember* member,
                             Yielder* yielder, relay::PipelineStats& group_loop) {
  SystemdNotifier notifier;
  while (!g_stop.load() && !supervisor.failure()) {
    if (member) {
      member->poll(std::chrono::milliseconds(100));
    } else {
      stop_within(std::chrono::milliseconds(100));
    }
    const auto views = supervisor.view();
    if (yielder) yielder->turn(views);
    const int64_t now = relay::unix_ms_now();
    group_loop.last_loop_unix_ms = now;
    bool stalled = false;
    bool streaming = true;
    for (const auto& v : views) {
      if (!v.assigned) continue;
      stalled = stalled || v.stats->loop_stalled(std::chrono::system_clock::now());
      streaming = streaming && v.state == static_cast<int>(relay::PipelineState::kStreaming);
    }
    if (member) {
      notifier.update(member->joined(), "member of the group", stalled, now);
    } else {
      notifier.update(streaming, streaming ? "streaming" : "reconnecting", stalled, now);
    }
  }
}

// One run path for both modes: the supervisor streams the slots assigned to
// this instance, by the group's partition assignment or, without a group,
// the one configured slot for good.
int run(const std::string& config_path) {
  auto loaded = load_config(config_path);
  if (auto* code = std::get_if<int>(&loaded)) return *code;
  const config::Config cfg = std::get<config::Config>(std::move(loaded));
  const auto identity = driver::InstanceIdentity::of_this_process();
  const std::string name = cfg.group ? "group=" + cfg.group->id : "slot=" + cfg.postgres.slot;
  if (cfg.group) {
    app::setup_logging(cfg.log, identity.describe());
  } else {
    app::setup_logging(cfg.log);
  }
  install_signal_handlers();
  if (cfg.group) {
    spdlog::info("outbox-relay {} starting group={} slots={} host={} pid={} instance_id={}",
                 OUTBOX_RELAY_VERSION, cfg.group->id, config::slots_of(cfg).size(),
                 identity.host, identity.pid, identity.id);
  } else {
    spdlog::info("outbox-relay {} starting slot={} publication={} table={}", OUTBOX_RELAY_VERSION,
                 cfg.postgres.slot, cfg.postgres.publication, cfg.outbox.table);
  }
  if (int code = check_dead_letter_topics(cfg); code != kExitOk) return code;

  relay::Lease lease;
  driver::Supervisor supervisor(cfg, cfg.group ? &lease : nullptr, identity);
  // The retained WAL of each slot, and its publication checked, only while
  // this instance streams it.
  supervisor.set_companion([](const config::Config& slot, relay::PipelineStats& stats) {
    // Without an outbox table (outbox.source: messages) there is nothing in
    // the publication to lose track of.
    std::optional<app::PublicationCheck> check;
    if (slot.outbox.reads_table()) {
      check = app::PublicationCheck{slot.outbox.table, slot.postgres.publication,
                                    slot.postgres.publication_check_interval};
    }
    auto monitor = std::make_shared<app::SlotMonitor>(stats, slot.postgres.dsn, slot.postgres.slot,
                                                      kSlotMonitorInterval, std::move(check));
    monitor->start();
    return std::shared_ptr<void>(std::move(monitor));
  });
  std::unique_ptr<kafka::GroupMember> member;
  if (cfg.group) {
    int exit_code = kExitOk;
    member = join_group(cfg, lease, supervisor, identity, exit_code);
    if (!member) return exit_code;
    supervisor.set_group_member(member.get());
  }

  relay::PipelineStats group_loop;
  std::optional<Yielder> yielder;
  if (member) yielder.emplace(*cfg.group, *member);
  std::optional<app::HttpServer> http;
  if (member) {
    http.emplace(group_loop, cfg.group->id, build_info());
    auto ownership = ownership_of(supervisor, *member);
    ownership.yields = [&yielder] { return yielder->yields(); };
    http->set_ownership(std::move(ownership));
  } else {
    http.emplace(supervisor.stats(0), cfg.postgres.slot, build_info());
  }
  // One probe for the process: every slot reaches the same brokers.
  std::optional<app::KafkaProbe> kafka_probe;
  if (cfg.http.ready_kafka_timeout.count() > 0) {
    kafka_probe.emplace(member ? group_loop : supervisor.stats(0), cfg.kafka.brokers,
                        cfg.kafka.properties,
                        app::kafka_probe_interval(cfg.http.ready_kafka_timeout));
    kafka_probe->start();
  }
  http->set_ready_kafka_timeout(cfg.http.ready_kafka_timeout);
  if (member) http->set_instance(identity.describe());
  if (!start_http(*http, cfg.http)) return kExitRuntime;
  if (auto code = ensure_checkpoint_topic(cfg); !code || *code != kExitOk) {
    http->stop();
    return code.value_or(kExitOk);
  }
  if (member) {
    if (auto r = member->subscribe(); !r) {
      spdlog::error("{}", r.error().describe());
      return kExitRuntime;
    }
  } else {
    supervisor.on_assigned({0});
  }

  supervise_until_stopped(supervisor, member.get(), yielder ? &*yielder : nullptr, group_loop);
  sd_notify(0, "STOPPING=1");
  // Slots first (drained, confirmed, connections closed), then the group:
  // the next owner is assigned a slot only once it is released here.
  supervisor.stop_all();
  if (member) member->close();
  http->stop();
  // The supervisor logged each slot's failure as the slot stopped; the exit
  // only says how it ends.
  if (supervisor.failure() || supervisor.unacknowledged_at_stop()) {
    spdlog::info("{} stopped after the failure above; exit status {}", name, kExitRuntime);
    return kExitRuntime;
  }
  spdlog::info("{} stopped cleanly", name);
  return kExitOk;
}

// Exit codes of their own (docs/status.md): a bad file or flag is "cannot
// tell", never mistaken for a lost slot.
int status(app::StatusOptions options, const std::string& max_lag_bytes,
           const std::string& min_safe_wal_bytes, const std::string& timeout) {
  for (auto [text, flag, out] :
       {std::tuple{&max_lag_bytes, "--max-lag-bytes", &options.max_lag_bytes},
        std::tuple{&min_safe_wal_bytes, "--min-safe-wal-bytes", &options.min_safe_wal_bytes}}) {
    auto size = config::parse_size(*text);
    if (!size) {
      std::cerr << flag << ": " << size.error().describe() << '\n';
      return app::kStatusUnknown;
    }
    *out = static_cast<int64_t>(*size);
  }
  auto bound = config::parse_duration(timeout);
  if (!bound || bound->count() <= 0) {
    std::cerr << "--timeout: " << (bound ? "must be positive" : bound.error().describe()) << '\n';
    return app::kStatusUnknown;
  }
  options.timeout = *bound;
  auto loaded = load_config(options.config_path);
  if (std::get_if<int>(&loaded)) return app::kStatusUnknown;
  return app::run_status(options, std::get<config::Config>(loaded));
}

int check_config(const std::string& path) {
  auto loaded = load_config(path);
  if (auto* code = std::get_if<int>(&loaded)) return *code;
  std::cout << path << ": ok\n" << config::describe(std::get<config::Config>(loaded));
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"outbox-relay: publishes rows of a PostgreSQL outbox table to Kafka"};
  cli.set_version_flag("--version", OUTBOX_RELAY_VERSION);
  cli.require_subcommand(1);
  std::string config_path;
  auto* run_cmd = cli.add_subcommand("run", "Run the relay");
  run_cmd->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();
  std::string check_path;
  auto* check_cmd = cli.add_subcommand("check-config", "Validate a configuration file and exit");
  check_cmd->add_option("file", check_path, "Configuration file (YAML)")->required();
  app::StatusOptions status_options;
  std::string max_lag_bytes = "64MiB";
  std::string min_safe_wal_bytes = "256MiB";
  std::string status_timeout = "10s";
  auto* status_cmd = cli.add_subcommand(
      "status",
      "Show each slot's owner, position, lag, WAL safety, checkpoint and last error; exit 0 "
      "healthy, 1 lagging, 2 lost or at risk, 3 cannot tell");
  status_cmd->add_option("-c,--config", status_options.config_path, "Configuration file (YAML)")
      ->required();
  status_cmd->add_flag("--json", status_options.json, "Print JSON (docs/status.md)");
  status_cmd->add_option("--max-lag-bytes", max_lag_bytes, "Lagging beyond this much WAL")
      ->capture_default_str();
  status_cmd
      ->add_option("--max-lag-seconds", status_options.max_lag_seconds,
                   "Lagging once the oldest unconfirmed outbox transaction is older")
      ->capture_default_str();
  status_cmd
      ->add_option("--min-safe-wal-bytes", min_safe_wal_bytes,
                   "At risk once safe_wal_size is below this")
      ->capture_default_str();
  status_cmd->add_option("--timeout", status_timeout, "Bound on each connection and request")
      ->capture_default_str();
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return status_cmd->parsed() ? app::kStatusUnknown : kExitUsage;
  }
  if (run_cmd->parsed()) return run(config_path);
  if (check_cmd->parsed()) return check_config(check_path);
  if (status_cmd->parsed()) {
    return status(status_options, max_lag_bytes, min_safe_wal_bytes, status_timeout);
  }
  return kExitUsage;
}
