// libFuzzer target for the message envelope (relay::parse_envelope) and the
// router that reads it (relay::MessageRouter). The content of a logical
// decoding message is whatever the application wrote, so besides not
// crashing they must keep these promises on any input:
//   - every view points inside the content;
//   - an envelope that parses is written back byte for byte from its fields
//     (the layout has one encoding), has no proper prefix that parses, and
//     rejects one extra byte;
//   - a failed parse returns errc::bad_row with a message;
//   - routing never fails: a record whose topic is a valid topic name and
//     whose headers end with outbox-id, outbox-lsn, outbox-xid, or a bad row
//     with a reason, carrying the whole content when the envelope did not
//     parse.
//
// Input: one selector byte, then the content.
//   bit 0  the message is transactional
//   bit 1  non-transactional messages are allowed

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "../unit/envelope_writer.h"
#include "config/names.h"
#include "relay/errc.h"
#include "relay/message_envelope.h"
#include "relay/message_router.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "message_envelope_fuzz: broken promise: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

volatile uint8_t g_sink;

void check_view(std::string_view buffer, const std::optional<std::string_view>& v) {
  if (!v || v->empty()) return;
  const auto lo = reinterpret_cast<uintptr_t>(buffer.data());
  const auto p = reinterpret_cast<uintptr_t>(v->data());
  check(p >= lo && p + v->size() <= lo + buffer.size(), "view outside the content");
  uint8_t x = 0;
  for (char c : *v) x ^= static_cast<uint8_t>(c);
  g_sink = x;
}

std::optional<std::string> owned(const std::optional<std::string_view>& v) {
  return v ? std::optional<std::string>(*v) : std::nullopt;
}

void check_parse(std::string_view content) {
  auto e = relay::parse_envelope(content);
  if (!e.ok()) {
    check(e.error().code == relay::make_error_code(relay::errc::bad_row), "error is not bad_row");
    check(!e.error().message.empty(), "error without a message");
    return;
  }
  for (const auto* v : {&e->topic, &e->key, &e->id, &e->headers, &e->payload}) {
    check_view(content, *v);
  }
  relay::testing::EnvelopeFields f{owned(e->topic), owned(e->key),     e->partition,
                                   owned(e->id),    owned(e->headers), owned(e->payload)};
  check(relay::testing::write_envelope(f) == content, "envelope not written back as read");
  const size_t step = content.size() <= 256 ? 1 : content.size() / 64;
  for (size_t len = 0; len < content.size(); len += step) {
    check(!relay::parse_envelope(content.substr(0, len)).ok(), "a proper prefix parsed");
  }
  check(!relay::parse_envelope(std::string(content) + '\0').ok(), "a trailing byte was accepted");
}

void check_route(std::string_view content, uint8_t selector) {
  config::OutboxConfig cfg;
  cfg.source = config::OutboxSource::kMessages;
  cfg.allow_non_transactional_messages = (selector & 2) != 0;
  relay::MessageRouter router(cfg);
  wal::Message m;
  m.flags = (selector & 1) != 0 ? wal::Message::kTransactional : 0;
  m.lsn = wal::Lsn(0x1509D38);
  m.prefix = cfg.message_prefix;
  m.content = content;
  check(router.ours(m), "the configured prefix is not ours");
  const relay::RowContext ctx{wal::Lsn(0x1509E30), m.lsn, 737, {}};
  relay::RouteOutcome out = router.route(m, ctx);
  if (auto* bad = std::get_if<relay::BadRow>(&out)) {
    check(!bad->reason.empty(), "bad row without a reason");
    check(bad->message_prefix.has_value(), "bad message without its prefix");
    if (!relay::parse_envelope(content).ok()) {
      check(bad->payload == std::optional<std::string>(content), "malformed content not kept");
    }
    relay::OutboxRecord dlq = relay::Router::dead_letter(*bad, ctx, "outbox.dead-letter");
    check(dlq.topic == "outbox.dead-letter", "dead letter to another topic");
    return;
  }
  const auto& r = std::get<relay::OutboxRecord>(out);
  check(config::check_topic_name(r.topic).ok(), "record with an invalid topic");
  check(r.partition >= -1, "record with a negative partition");
  const size_t n = r.headers.size();
  check(n >= 3 && r.headers[n - 3].key == "outbox-id" && r.headers[n - 2].key == "outbox-lsn" &&
            r.headers[n - 1].key == "outbox-xid",
        "relay headers missing or out of place");
  check(m.transactional() || cfg.allow_non_transactional_messages,
        "a non-transactional message was published without being allowed");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const std::string_view content(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_parse(content);
  check_route(content, selector);
  return 0;
}
