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
#include <set>
#include <thread>
#include <variant>

#include "app/http_server.h"
#include "app/logging.h"
#include "app/slot_monitor.h"
#include "config/config.h"
#include "kafka/group_member.h"
#include "kafka/producer.h"
#include "relay/pipeline.h"
#include "relay/supervisor.h"
#include "wal/replication_slot_stats.h"
#include "wal/replication_stream.h"

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
  if (auto r = wal::check_conninfo(cfg.postgres.dsn); !r) {
    std::cerr << path << ": " << r.error().describe() << '\n' << path << ": 1 error\n";
    return kExitUsage;
  }
  return std::get<config::Config>(std::move(loaded));
}

// Checks that the dead-letter topic exists before the first bad row needs
// it; a missing one would otherwise turn the dead-letter policy into a halt.
bool ensure_dead_letter_topic(kafka::Producer& producer, const config::Config& cfg) {
  if (cfg.outbox.on_bad_row != config::BadRowPolicy::kDeadLetter) return true;
  const auto& topic = cfg.outbox.dead_letter_topic;
  auto exists = producer.topic_exists(topic, std::chrono::seconds(10));
  if (!exists) {
    spdlog::warn("cannot check dead-letter topic={}: {}", topic, exists.error().describe());
    return true;
  }
  if (*exists) return true;
  if (!cfg.kafka.create_topics) {
    spdlog::error("dead-letter topic={} does not exist and kafka.create_topics is false", topic);
    return false;
  }
  if (auto r = producer.create_topic(topic, 1, std::chrono::seconds(30)); !r) {
    spdlog::error("cannot create dead-letter topic={}: {}", topic, r.error().describe());
    return false;
  }
  spdlog::info("created dead-letter topic={}", topic);
  return true;
}

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

kafka::ProducerOptions producer_options(const config::Config& cfg) {
  kafka::ProducerOptions po;
  po.brokers = cfg.kafka.brokers;
  po.properties = cfg.kafka.properties;
  po.max_inflight_messages = cfg.limits.max_inflight_messages;
  po.max_inflight_bytes = cfg.limits.max_inflight_bytes;
  return po;
}

// Every slot's dead-letter topic, checked once at start-up with a producer
// used for nothing else.
int check_dead_letter_topics(const config::Config& cfg) {
  auto producer = kafka::Producer::create(producer_options(cfg));
  if (!producer) {
    spdlog::error("{}", producer.error().describe());
    return kExitUsage;
  }
  std::set<std::string> checked;
  for (const auto& slot : config::slots_of(cfg)) {
    if (!checked.insert(slot.outbox.dead_letter_topic).second) continue;
    if (!ensure_dead_letter_topic(**producer, config::for_slot(cfg, slot))) return kExitRuntime;
  }
  return kExitOk;
}

app::BuildInfo build_info() {
  return app::BuildInfo{OUTBOX_RELAY_VERSION, kafka::library_version(), wal::libpq_version()};
}

// Starts the endpoints unless http.listen is empty; false when it cannot.
bool start_http(app::HttpServer& http, const config::HttpConfig& cfg) {
  if (cfg.listen.empty()) return true;
  if (auto r = http.start(cfg.listen); !r) {
    spdlog::error("{}", r.error().describe());
    return false;
  }
  // With port 0 the kernel picks one; name it so that callers can find it.
  spdlog::info("http listening on {}:{}", cfg.listen.substr(0, cfg.listen.rfind(':')),
               http.port());
  return true;
}

app::HttpServer::Ownership ownership_of(const relay::Supervisor& supervisor,
                                        const kafka::GroupMember& member) {
  app::HttpServer::Ownership o;
  o.joined = [&member] { return member.joined(); };
  o.rebalances = [&member] { return member.rebalances(); };
  o.slots = [&supervisor] {
    std::vector<app::HttpServer::SlotOwnership> out;
    for (const auto& v : supervisor.view()) {
      out.push_back({v.slot, v.assigned,
                     v.state == static_cast<int>(relay::PipelineState::kStreaming)});
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

// Several instances share the slots through a consumer group: this one
// streams the slots whose coordination partitions it is assigned.
int run_group(const config::Config& cfg) {
  const auto identity = relay::InstanceIdentity::of_this_process();
  app::setup_logging(cfg.log, identity.describe());
  install_signal_handlers();
  const config::GroupConfig& group = *cfg.group;
  const auto slots = config::slots_of(cfg);
  spdlog::info("outbox-relay {} starting group={} slots={} host={} pid={} instance_id={}",
               OUTBOX_RELAY_VERSION, group.id, slots.size(), identity.host, identity.pid,
               identity.id);
  if (int code = check_dead_letter_topics(cfg); code != kExitOk) return code;

  relay::Lease lease;
  relay::Supervisor supervisor(cfg, lease, identity);
  // The retained WAL of each slot, and its publication checked, only while
  // this instance is assigned it.
  supervisor.set_companion([](const config::Config& slot, relay::PipelineStats& stats) {
    auto monitor = std::make_shared<app::SlotMonitor>(
        stats, slot.postgres.dsn, slot.postgres.slot, kSlotMonitorInterval,
        app::PublicationCheck{slot.outbox.table, slot.postgres.publication,
                              slot.postgres.publication_check_interval});
    monitor->start();
    return std::shared_ptr<void>(std::move(monitor));
  });
  kafka::GroupOptions go;
  go.brokers = cfg.kafka.brokers;
  go.properties = cfg.kafka.properties;
  go.group_id = group.id;
  go.topic = group.coordination_topic;
  go.slots = static_cast<int>(slots.size());
  go.session_timeout = group.session_timeout;
  go.instance = identity.describe();
  auto member = kafka::GroupMember::create(go, lease, supervisor);
  if (!member) {
    spdlog::error("{}", member.error().describe());
    return kExitUsage;
  }
  auto partitions = (*member)->ensure_topic(std::chrono::seconds(30));
  if (!partitions) {
    spdlog::error("{}", partitions.error().describe());
    // A topic too small for the slots is a configuration to fix, like a bad
    // file; an unreachable cluster is a runtime failure.
    return partitions.error().code == kafka::group_errc::too_few_partitions ? kExitUsage
                                                                             : kExitRuntime;
  }
  if (*partitions > static_cast<int>(slots.size())) {
    spdlog::warn("coordination topic={} has {} partitions for {} slots; the extra ones are idle",
                 group.coordination_topic, *partitions, slots.size());
  }

  relay::PipelineStats stats;
  app::HttpServer http(stats, group.id, build_info());
  http.set_ownership(ownership_of(supervisor, **member));
  if (!start_http(http, cfg.http)) return kExitRuntime;
  if (auto r = (*member)->subscribe(); !r) {
    spdlog::error("{}", r.error().describe());
    return kExitRuntime;
  }

  bool ready_sent = false;
  int64_t last_watchdog = 0;
  while (!g_stop.load() && !supervisor.failure()) {
    (*member)->poll(std::chrono::milliseconds(100));
    const int64_t now = unix_ms_now();
    stats.last_loop_unix_ms = now;
    if (!ready_sent && (*member)->joined()) {
      sd_notify(0, "READY=1\nSTATUS=member of the group");
      ready_sent = true;
    }
    if (now - last_watchdog >= 500) {
      sd_notify(0, "WATCHDOG=1");
      last_watchdog = now;
    }
  }
  sd_notify(0, "STOPPING=1");
  // Slots first (drained, confirmed, connections closed), then the group:
  // the next owner is assigned a slot only once it is released here.
  supervisor.stop_all();
  (*member)->close();
  http.stop();
  if (auto failure = supervisor.failure()) {
    spdlog::error("group={} stopped: {}", group.id, failure->describe());
    return kExitRuntime;
  }
  if (auto unacknowledged = supervisor.unacknowledged_at_stop()) {
    spdlog::error("group={} stopped: {}", group.id, unacknowledged->describe());
    return kExitRuntime;
  }
  spdlog::info("group={} stopped cleanly", group.id);
  return kExitOk;
}

int run(const std::string& config_path) {
  auto loaded = load_config(config_path);
  if (auto* code = std::get_if<int>(&loaded)) return *code;
  const config::Config cfg = std::get<config::Config>(std::move(loaded));
  if (cfg.group) return run_group(cfg);
  app::setup_logging(cfg.log);
  install_signal_handlers();
  spdlog::info("outbox-relay {} starting slot={} publication={} table={}", OUTBOX_RELAY_VERSION,
               cfg.postgres.slot, cfg.postgres.publication, cfg.outbox.table);

  kafka::ProducerOptions po;
  po.brokers = cfg.kafka.brokers;
  po.properties = cfg.kafka.properties;
  po.max_inflight_messages = cfg.limits.max_inflight_messages;
  po.max_inflight_bytes = cfg.limits.max_inflight_bytes;
  auto producer = kafka::Producer::create(po);
  if (!producer) {
    spdlog::error("{}", producer.error().describe());
    return kExitUsage;
  }
  if (!ensure_dead_letter_topic(**producer, cfg)) return kExitRuntime;

  relay::PipelineStats stats;
  app::HttpServer http(stats, cfg.postgres.slot, build_info());
  if (!start_http(http, cfg.http)) return kExitRuntime;

  app::SlotMonitor slot_monitor(stats, cfg.postgres.dsn, cfg.postgres.slot, kSlotMonitorInterval,
                                app::PublicationCheck{cfg.outbox.table, cfg.postgres.publication,
                                                      cfg.postgres.publication_check_interval});
  slot_monitor.start();

  std::atomic<bool> pipeline_done{false};
  std::thread notifier([&] {
    bool ready_sent = false;
    int last_state = -1;
    while (!pipeline_done.load()) {
      const int state = stats.state.load();
      const bool streaming = state == static_cast<int>(relay::PipelineState::kStreaming);
      if (!ready_sent && streaming) {
        sd_notify(0, "READY=1\nSTATUS=streaming");
        ready_sent = true;
      } else if (state != last_state && ready_sent) {
        sd_notify(0, streaming ? "STATUS=streaming" : "STATUS=reconnecting");
      }
      last_state = state;
      // The watchdog is fed only while the relay's own loop keeps turning,
      // so WatchdogSec= restarts a relay stuck anywhere in it.
      if (!stats.loop_stalled(std::chrono::system_clock::now())) sd_notify(0, "WATCHDOG=1");
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  });

  relay::Pipeline pipeline(cfg, **producer, stats, g_stop, g_stop_fd);
  auto result = pipeline.run();
  pipeline_done = true;
  sd_notify(0, "STOPPING=1");
  notifier.join();
  slot_monitor.stop();
  http.stop();
  if (!result) {
    spdlog::error("slot={} stopped: {}", cfg.postgres.slot, result.error().describe());
    return kExitRuntime;
  }
  spdlog::info("slot={} stopped cleanly", cfg.postgres.slot);
  return kExitOk;
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
  try {
    cli.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return kExitUsage;
  }
  if (run_cmd->parsed()) return run(config_path);
  if (check_cmd->parsed()) return check_config(check_path);
  return kExitUsage;
}
