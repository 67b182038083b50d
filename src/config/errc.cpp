#include "config/errc.h"

namespace config {
namespace {

class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "config"; }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::malformed:
        return "malformed value";
      case errc::out_of_range:
        return "value out of range";
      case errc::invalid_name:
        return "invalid name";
      case errc::unset_variable:
        return "environment variable not set";
    }
    return "unknown config error " + std::to_string(value);
  }
};

}  // namespace

const std::error_category& error_category() {
  static const ErrorCategory category;
  return category;
}

}  // namespace config
