#include "relay/errc.h"

namespace relay {

namespace {

struct Category final : std::error_category {
  const char* name() const noexcept override { return "relay"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::malformed_value:
        return "malformed column value";
      case errc::out_of_range:
        return "column value out of range";
      case errc::unsupported_type:
        return "unsupported column type";
      case errc::invalid_mapping:
        return "outbox mapping does not fit the relation";
      case errc::unknown_relation:
        return "row for an unknown relation";
      case errc::protocol_violation:
        return "protocol violation";
      case errc::bad_row:
        return "bad outbox row";
      case errc::invalid_config:
        return "invalid outbox configuration";
      case errc::stream_out_of_order:
        return "transaction messages out of order";
      case errc::unsupported_message:
        return "unsupported replication message";
      case errc::delivery_failed:
        return "delivery failed";
      case errc::halted:
        return "halted at a bad row";
      case errc::producer_failed:
        return "Kafka producer failed";
      case errc::fenced:
        return "fenced";
      case errc::unacknowledged:
        return "records left unacknowledged";
      case errc::unmapped_relation:
        return "relation in the stream not mapped to the outbox";
    }
    return "relay::errc " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& error_category() {
  static const Category c;
  return c;
}

}  // namespace relay
