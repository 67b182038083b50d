#pragma once

#include <string>
#include <system_error>

#include "common/result.h"

namespace wal {

// Why a replication message could not be decoded. Every one of these means
// the bytes are not what the negotiated protocol allows: the caller reports
// it with the message's LSN and reconnects, and never skips the message.
enum class errc {
  // The message ends before a field it must contain.
  truncated = 1,
  // A message type byte this protocol does not define.
  unknown_message,
  // A field holds a value the protocol does not allow (a negative length,
  // an unknown column kind, flags PostgreSQL never sets, an unset LSN).
  invalid_value,
  // Valid on the wire, but not in the negotiated proto_version.
  unsupported,
  // A well-formed message the stream state forbids (Stream Stop outside a
  // stream, Stream Commit inside one, unchanged TOAST in an INSERT).
  protocol_violation,
  // Bytes left over after a complete message: the layout we read is not the
  // one the server wrote, so nothing we read from it can be trusted.
  trailing_data,
};

const std::error_category& category();

inline std::error_code make_error_code(errc e) {
  return {static_cast<int>(e), category()};
}

inline common::Error make_error(errc e, std::string message) {
  return common::Error{make_error_code(e), std::move(message)};
}

}  // namespace wal

template <>
struct std::is_error_code_enum<wal::errc> : std::true_type {};
