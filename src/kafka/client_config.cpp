#include "kafka/client_config.h"

#include <spdlog/spdlog.h>

#include "kafka/errc.h"

namespace kafka::detail {

namespace {

// client= is the client's name, "<client.id>#<type>-<n>": the producer's
// client.id names its slot (outbox-relay-<slot>), so that a broker problem
// the library reports can be told apart per slot.
void on_log(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  spdlog::level::level_enum lv = spdlog::level::debug;
  if (level <= 2) {
    lv = spdlog::level::critical;
  } else if (level == 3) {
    lv = spdlog::level::err;
  } else if (level == 4) {
    lv = spdlog::level::warn;
  } else if (level <= 6) {
    lv = spdlog::level::info;
  }
  spdlog::log(lv, "component=librdkafka client={} facility={} {}", rk ? rd_kafka_name(rk) : "?",
              facility, message);
}

}  // namespace

common::Result<OwnedConf> new_conf(const std::map<std::string, std::string>& properties) {
  OwnedConf conf(rd_kafka_conf_new());
  char errstr[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
      return make_error(errc::invalid_config, "kafka property '" + key + "': " + errstr);
    }
  }
  return conf;
}

void route_logs_to_spdlog(rd_kafka_conf_t* conf) {
  rd_kafka_conf_set_log_cb(conf, on_log);
}

common::Result<rd_kafka_t*> new_client(rd_kafka_type_t type, OwnedConf conf,
                                       const std::string& what) {
  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), errstr, sizeof errstr);
  if (!rk) return make_error(errc::invalid_config, "cannot create " + what + ": " + errstr);
  conf.release();
  return rk;
}

}  // namespace kafka::detail
