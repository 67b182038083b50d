#include "driver/errc.h"

#include "kafka/txn_errc.h"
#include "pg/replication_stream.h"
#include "relay/errc.h"

namespace driver {

namespace {

struct Category : std::error_category {
  const char* name() const noexcept override { return "driver"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::retriable:
        return "retriable failure";
      case errc::halted:
        return "halted at a bad row";
      case errc::fatal:
        return "fatal failure";
      case errc::unacknowledged:
        return "records left unacknowledged";
      case errc::fenced:
        return "fenced by a newer producer of the slot";
    }
    return "unknown driver error";
  }
};

}  // namespace

const std::error_category& error_category() {
  static Category c;
  return c;
}

errc disposition(const common::Error& error) {
  if (error.code.category() == error_category()) return static_cast<errc>(error.code.value());
  if (error.code.category() == kafka::txn_category()) {
    // The transaction was aborted: replay from the checkpoint.
    if (kafka::is_aborted(error.code)) return errc::retriable;
    if (error.code == kafka::txn_errc::fenced) return errc::fenced;
    // A commit whose outcome is unknown leaves the producer unusable; so do
    // fatal, unauthorized and configuration errors. A restart resolves the
    // first from the checkpoint; the others need an operator.
    return errc::fatal;
  }
  if (error.code.category() == relay::error_category()) {
    switch (static_cast<relay::errc>(error.code.value())) {
      case relay::errc::halted:
        return errc::halted;
      case relay::errc::unacknowledged:
        return errc::unacknowledged;
      // The mapping or the server's stream is not what the relay can read:
      // reconnecting would meet it again.
      case relay::errc::invalid_mapping:
      case relay::errc::invalid_config:
      case relay::errc::unmapped_relation:
      case relay::errc::unknown_relation:
      case relay::errc::unsupported_message:
      case relay::errc::producer_failed:
        return errc::fatal;
      default:
        // A value or message the relay could not read is read again from the
        // confirmed position after a reconnect; skipping it could lose a row.
        return errc::retriable;
    }
  }
  // The publication vanished under the slot: reconnecting would skip what it
  // should have carried.
  if (error.code == pg::replication_errc::publication_missing) return errc::fatal;
  return errc::retriable;
}

}  // namespace driver
