#include "kafka/txn_errc.h"

namespace kafka {

namespace {

struct TxnCategory : std::error_category {
  const char* name() const noexcept override { return "kafka-transaction"; }
  std::string message(int ev) const override {
    switch (static_cast<txn_errc>(ev)) {
      case txn_errc::aborted:
        return "transaction aborted";
      case txn_errc::record_too_large:
        return "transaction aborted: a record is too large";
      case txn_errc::record_rejected:
        return "transaction aborted: a record was rejected";
      case txn_errc::fenced:
        return "fenced by a newer producer or group generation";
      case txn_errc::fatal:
        return "fatal producer error";
      case txn_errc::unauthorized:
        return "not authorized";
      case txn_errc::unsupported:
        return "transactions not supported";
      case txn_errc::timed_out:
        return "timed out";
      case txn_errc::malformed_checkpoint:
        return "malformed checkpoint";
      case txn_errc::invalid_config:
        return "invalid configuration";
    }
    return "unknown transaction error " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& txn_category() {
  static TxnCategory c;
  return c;
}

}  // namespace kafka
