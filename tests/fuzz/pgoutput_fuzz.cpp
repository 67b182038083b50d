// libFuzzer target for the replication stream decoders (wal::PgOutputDecoder
// and wal::parse_copy_data). Both take bytes straight from the network, so
// besides not crashing they must keep these promises on any input:
//   - every view in an event points inside the decoded buffer;
//   - a decoded event's type is the message's first byte;
//   - a message that decodes has no proper prefix that decodes (every layout
//     is self-delimiting), and rejects one extra byte;
//   - a failed decode returns a wal error with a message and leaves the
//     decoder's stream state untouched.
//
// Input: one selector byte, then the message.
//   bits 0-1  proto_version - 1
//   bit  2    streaming = parallel (only with proto_version 4)
//   bit  3    decode inside a streamed chunk (a Stream Start is fed first)
// The rest is also parsed as a CopyData payload, and an XLogData's payload is
// decoded in turn.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "wal/copy_protocol.h"
#include "wal/errc.h"
#include "wal/pgoutput.h"

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "pgoutput_fuzz: broken promise: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Reads every byte of the view, so ASan sees a dangling or out-of-range one.
volatile uint8_t g_sink;

void check_view(std::string_view buffer, std::string_view v) {
  if (v.empty()) return;
  const auto lo = reinterpret_cast<uintptr_t>(buffer.data());
  const auto hi = lo + buffer.size();
  const auto p = reinterpret_cast<uintptr_t>(v.data());
  check(p >= lo && p + v.size() <= hi, "view outside the decoded buffer");
  uint8_t x = 0;
  for (char c : v) x ^= static_cast<uint8_t>(c);
  g_sink = x;
}

void check_tuple(std::string_view buffer, const wal::TupleData& t) {
  for (const auto& v : t.values) {
    switch (v.kind) {
      case wal::ColumnKind::null:
      case wal::ColumnKind::unchanged_toast:
        check(v.data.empty(), "null or unchanged column with a value");
        break;
      case wal::ColumnKind::text:
      case wal::ColumnKind::binary:
        check_view(buffer, v.data);
        break;
      default:
        fail("column kind outside the enum");
    }
  }
}

void check_event(std::string_view buffer, const wal::Event& ev) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, wal::Insert>) {
          check_tuple(buffer, m.new_tuple);
        } else if constexpr (std::is_same_v<T, wal::Update>) {
          check(m.old_kind.has_value() || m.old_tuple.values.empty(), "old tuple without kind");
          check_tuple(buffer, m.old_tuple);
          check_tuple(buffer, m.new_tuple);
        } else if constexpr (std::is_same_v<T, wal::Delete>) {
          check_tuple(buffer, m.old_tuple);
        } else if constexpr (std::is_same_v<T, wal::Message>) {
          check_view(buffer, m.prefix);
          check_view(buffer, m.content);
        } else if constexpr (std::is_same_v<T, wal::StreamAbort>) {
          check(m.abort_lsn.has_value() == m.abort_time.has_value(), "half of the abort info");
        }
      },
      ev);
}

void check_error(const common::Error& e) {
  check(e.code.category() == wal::category(), "error outside the wal category");
  check(!e.message.empty(), "error without a message");
}

void decode_one(wal::PgOutputDecoder& d, std::string_view msg) {
  const wal::PgOutputDecoder before = d;
  auto ev = d.decode(msg);
  if (!ev.ok()) {
    check_error(ev.error());
    check(d.in_stream() == before.in_stream() && d.stream_xid() == before.stream_xid(),
          "failed decode changed the stream state");
    return;
  }
  check(!msg.empty() && wal::message_type(*ev) == msg[0], "event type is not the first byte");
  check_event(msg, *ev);

  // Prefixes: all of them for small messages, a spread for large ones, to
  // keep each run fast.
  const size_t step = msg.size() <= 256 ? 1 : msg.size() / 64;
  for (size_t len = 0; len < msg.size(); len += step) {
    wal::PgOutputDecoder probe = before;
    auto r = probe.decode(msg.substr(0, len));
    check(!r.ok() && r.error().code == wal::errc::truncated, "a proper prefix decoded");
  }
  wal::PgOutputDecoder probe = before;
  const std::string longer = std::string(msg) + '\0';
  auto r = probe.decode(longer);
  check(!r.ok() && r.error().code == wal::errc::trailing_data, "a trailing byte was accepted");
}

wal::PgOutputDecoder make_decoder(uint8_t selector) {
  const int proto = 1 + (selector & 3);
  const bool parallel = proto == 4 && (selector & 4) != 0;
  wal::PgOutputDecoder d(wal::DecoderOptions{proto, parallel});
  if ((selector & 8) != 0 && proto >= 2) {
    static const char kStreamStart[] = {'S', 0, 0, 0, 1, 1};
    check(d.decode(std::string_view(kStreamStart, sizeof kStreamStart)).ok(),
          "Stream Start did not open a chunk");
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t selector = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  wal::PgOutputDecoder d = make_decoder(selector);
  decode_one(d, rest);

  auto copy = wal::parse_copy_data(rest);
  if (!copy.ok()) {
    check_error(copy.error());
    return 0;
  }
  if (const auto* x = std::get_if<wal::XLogData>(&*copy)) {
    check_view(rest, x->data);
    check(x->data.size() + 25 == rest.size(), "XLogData header is not 25 bytes");
    wal::PgOutputDecoder inner = make_decoder(selector);
    decode_one(inner, x->data);
  } else {
    check(rest.size() == 18, "keepalive is not 18 bytes");
  }
  return 0;
}
