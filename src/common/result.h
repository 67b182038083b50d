#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace common {

// A recoverable failure: a module's error code plus a message for humans that
// names the offending value.
struct Error {
  std::error_code code;
  std::string message;

  std::string describe() const { return message.empty() ? code.message() : message; }
};

[[noreturn]] inline void invariant_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "invariant violated: %s (%s:%d)\n", expr, file, line);
  std::abort();
}

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { check_ok(); return std::get<0>(v_); }
  const T& value() const& { check_ok(); return std::get<0>(v_); }
  T&& value() && { check_ok(); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    if (ok()) invariant_failed("error() on a value", __FILE__, __LINE__);
    return std::get<1>(v_);
  }

 private:
  void check_ok() const {
    if (!ok()) invariant_failed(std::get<1>(v_).describe().c_str(), __FILE__, __LINE__);
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT

  bool ok() const { return !error_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const {
    if (ok()) invariant_failed("error() on a value", __FILE__, __LINE__);
    return *error_;
  }

 private:
  // Empty on success, so that a success constructs no error_code (a call
  // into libstdc++) and no string.
  std::optional<Error> error_;
};

inline Error make_error(std::error_code code, std::string message) {
  return Error{code, std::move(message)};
}

}  // namespace common

// Stays on in release builds: a broken invariant of our own is a bug, and
// continuing could confirm a WAL position that Kafka never acknowledged.
#define OUTBOX_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::common::invariant_failed(#expr, __FILE__, __LINE__))
