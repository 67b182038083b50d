#pragma once

// librdkafka client configuration shared by the kafka module's clients (the
// producer, the admin and the group member). Internal to src/kafka.

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

#include "common/result.h"

namespace kafka::detail {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
// Owned until rd_kafka_new() succeeds, which takes it over (release() then).
using OwnedConf = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

// A configuration with `properties` set; errc::invalid_config naming the
// first property librdkafka refuses.
common::Result<OwnedConf> new_conf(const std::map<std::string, std::string>& properties);

// librdkafka logs with syslog levels, from its own threads; spdlog's logger
// is thread-safe, so its lines join ours in the same format instead of going
// raw to stderr.
void route_logs_to_spdlog(rd_kafka_conf_t* conf);

// rd_kafka_new() that takes `conf` over on success; errc::invalid_config
// with librdkafka's reason (what it names is a setting) on failure.
common::Result<rd_kafka_t*> new_client(rd_kafka_type_t type, OwnedConf conf,
                                       const std::string& what);

}  // namespace kafka::detail
