#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace kafka {

// Why a Kafka client or an admin request failed, decided once from
// librdkafka's error code where the call is made; the message that travels
// with the code keeps librdkafka's own words and names the topic or property.
enum class errc {
  // A property librdkafka refuses, or a client it cannot create from them.
  invalid_config = 1,
  // The cluster did not answer in time, or could not be reached.
  unavailable,
  // The cluster answered no: authorization, an invalid topic setting.
  rejected,
  // CreateTopics for a topic that is already there.
  topic_exists,
  // The coordination topic cannot give every slot a partition.
  too_few_partitions,
};

const std::error_category& error_category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), error_category()};
}

inline common::Error make_error(errc e, std::string message) {
  return common::Error{make_error_code(e), std::move(message)};
}

}  // namespace kafka

template <>
struct std::is_error_code_enum<kafka::errc> : std::true_type {};
