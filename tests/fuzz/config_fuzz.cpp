// libFuzzer target for the configuration loader: arbitrary bytes must give a
// Config or diagnostics, never a crash, a hang or an escaping exception.
//
// It also checks two properties of what loads:
// - describe() output loads again (it is what check-config prints, and what
//   an operator may paste back into a file);
// - describing that reloaded config gives the same text, so redaction,
//   ${ escaping and unit formatting are stable.
//
// Seeds: tests/fuzz/corpus/config/ (the example and test fixtures).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <variant>

#include "common/result.h"
#include "config/config.h"

namespace {

// A fixed environment, so that a crash reproduces from its input alone.
std::optional<std::string> fuzz_env(const std::string& name) {
  if (name == "PG_PASSWORD") return "fuzz-secret";
  if (name == "EMPTY") return "";
  if (name == "NUMBER") return "42";
  return std::nullopt;
}

void check_diagnostics(const config::LoadFailure& failure) {
  OUTBOX_ASSERT(!failure.diagnostics.empty());
  for (const config::Diagnostic& d : failure.diagnostics) {
    OUTBOX_ASSERT(d.line >= 0 && d.column >= 0);
    OUTBOX_ASSERT(!d.message.empty());
    OUTBOX_ASSERT(!d.format().empty());
  }
}

void check_describe_round_trip(const config::Config& cfg) {
  const std::string first = config::describe(cfg);
  auto reloaded = config::load_string(first, "describe", fuzz_env);
  if (auto* failure = std::get_if<config::LoadFailure>(&reloaded)) {
    for (const auto& d : failure->diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
    std::fprintf(stderr, "describe() output that failed to load:\n%s\n", first.c_str());
    OUTBOX_ASSERT(!"describe() output must load");
  }
  const std::string second = config::describe(std::get<config::Config>(reloaded));
  if (second != first) {
    std::fprintf(stderr, "describe() output:\n%s\ndescribe() of that, loaded again:\n%s\n",
                 first.c_str(), second.c_str());
  }
  OUTBOX_ASSERT(second == first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto loaded = config::load_string(input, "fuzz.yaml", fuzz_env);
  if (auto* failure = std::get_if<config::LoadFailure>(&loaded)) {
    check_diagnostics(*failure);
  } else {
    check_describe_round_trip(std::get<config::Config>(loaded));
  }
  // The redactor sees raw DSNs from users; it must take any bytes.
  (void)config::redact_dsn(input);
  return 0;
}
