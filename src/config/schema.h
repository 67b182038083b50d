#pragma once

// The configuration schema: which keys exist at each level, what each holds
// and its bounds. Private to src/config.

#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <string_view>

#include "config/config.h"
#include "config/yaml_reader.h"

namespace config {

// Indexed by the enum's value, so describe() and the reader share one
// spelling.
inline constexpr std::array<std::string_view, 2> kBadRowPolicyNames = {"dead_letter", "halt"};
inline constexpr std::array<std::string_view, 2> kNullPayloadNames = {"dead_letter", "tombstone"};
inline constexpr std::array<std::string_view, 2> kDeliveryNames = {"exactly_once",
                                                                    "at_least_once"};
inline constexpr std::array<std::string_view, 2> kSlotLostPolicyNames = {"fail", "recreate"};
inline constexpr std::array<std::string_view, 2> kLogFormatNames = {"text", "json"};
inline constexpr std::array<std::string_view, 5> kLogLevels = {"trace", "debug", "info", "warn",
                                                               "error"};

// Beyond a day a timer is a mistake, and bounding durations keeps deadline
// arithmetic in nanoseconds (steady_clock) far from overflow.
inline constexpr std::chrono::milliseconds kMaxDuration = std::chrono::hours(24);
// Each in-flight message costs bookkeeping in the ack tracker and a slot in
// librdkafka's queue (queue.buffering.max.messages tops out at 2^31-1).
inline constexpr int64_t kMaxInflightMessages = 10'000'000;

// The broker refuses sessions outside group.min.session.timeout.ms and
// group.max.session.timeout.ms, whose defaults are 6 s and 30 min; a broker
// configured for shorter sessions is allowed down to one second.
inline constexpr std::chrono::milliseconds kMinSessionTimeout = std::chrono::seconds(1);
inline constexpr std::chrono::milliseconds kMaxSessionTimeout = std::chrono::minutes(30);

// Reads the document's root mapping into a Config with defaults for every
// absent key, reporting every problem to `ctx`.
Config read_config(Context& ctx, const YAML::Node& root);

}  // namespace config
