#include "kafka/errc.h"

namespace kafka {

namespace {

struct Category final : std::error_category {
  const char* name() const noexcept override { return "kafka"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_config:
        return "invalid Kafka client configuration";
      case errc::unavailable:
        return "Kafka cluster unavailable";
      case errc::rejected:
        return "refused by the Kafka cluster";
      case errc::topic_exists:
        return "topic already exists";
      case errc::too_few_partitions:
        return "coordination topic has too few partitions";
    }
    return "kafka::errc " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& error_category() {
  static const Category c;
  return c;
}

}  // namespace kafka
