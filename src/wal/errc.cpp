#include "wal/errc.h"

namespace wal {

namespace {

struct Category final : std::error_category {
  const char* name() const noexcept override { return "wal"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::truncated:
        return "message truncated";
      case errc::unknown_message:
        return "unknown message type";
      case errc::invalid_value:
        return "invalid field value";
      case errc::unsupported:
        return "not supported by the negotiated protocol version";
      case errc::protocol_violation:
        return "protocol violation";
      case errc::trailing_data:
        return "trailing bytes after message";
    }
    return "wal::errc " + std::to_string(ev);
  }
};

}  // namespace

const std::error_category& category() {
  static const Category c;
  return c;
}

}  // namespace wal
