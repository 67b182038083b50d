#include "relay/checkpoint.h"

#include <string_view>

namespace relay {

namespace {

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// Each field with its name and a NUL after it, so that no two selections
// spell the same bytes.
void mix(uint64_t& hash, std::string_view name, std::string_view value) {
  for (std::string_view part : {name, std::string_view("=", 1), value, std::string_view("\0", 1)}) {
    for (char c : part) {
      hash ^= static_cast<unsigned char>(c);
      hash *= kFnvPrime;
    }
  }
}

}  // namespace

uint64_t selection_fingerprint(const config::OutboxConfig& outbox) {
  uint64_t hash = kFnvOffset;
  switch (outbox.source) {
    case config::OutboxSource::kTable:
      mix(hash, "source", "table");
      break;
    case config::OutboxSource::kMessages:
      mix(hash, "source", "messages");
      break;
    case config::OutboxSource::kBoth:
      mix(hash, "source", "both");
      break;
  }
  if (outbox.reads_table()) mix(hash, "table", outbox.table);
  if (outbox.reads_messages()) mix(hash, "prefix", outbox.message_prefix);
  return hash;
}

}  // namespace relay
