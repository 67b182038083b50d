#pragma once

// Routing for logical decoding messages (outbox.source: messages or both):
// one message's envelope (relay/message_envelope.h) becomes one Kafka
// record, under a row's rules. The topic must be a valid Kafka topic name,
// the partition -1 (by key, murmur2) or at least 0, the headers the same
// JSON as a row's headers column; the record carries outbox-id, outbox-lsn
// and outbox-xid after its own headers. outbox-id is the envelope's id or,
// without one, the message's own LSN: it is where the message sits in the
// WAL, so every replay of the message carries the same id.
//
// A null payload is a tombstone under outbox.null_payload: tombstone, as for
// a row. Every fault of a message is the data's, never the protocol's: a
// malformed envelope, a field a row would be refused for, or a
// non-transactional message that was not allowed comes back as a BadRow for
// the bad-row policy, with the content when nothing else could be read of
// it.

#include <string>
#include <string_view>

#include "config/config.h"
#include "relay/json_headers.h"
#include "relay/record.h"
#include "relay/router.h"
#include "wal/pgoutput.h"

namespace relay {

class MessageRouter {
 public:
  explicit MessageRouter(const config::OutboxConfig& cfg);

  // Whether the message is the relay's: its prefix is outbox.message_prefix.
  bool ours(const wal::Message& message) const { return message.prefix == prefix_; }

  // One message of ours. `ctx` is its transaction's (commit_lsn, xid), or
  // for a non-transactional message its own LSN as commit_lsn and xid 0.
  // Non-const: the header parser's buffers are reused from message to
  // message.
  RouteOutcome route(const wal::Message& message, const RowContext& ctx);

 private:
  std::string prefix_;
  bool allow_non_transactional_;
  config::NullPayloadPolicy null_payload_;
  JsonHeaderReader header_reader_;
  RelayHeaders relay_headers_;
  std::string last_valid_topic_;
};

}  // namespace relay
