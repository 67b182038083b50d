#pragma once

// The CopyBoth sub-protocol of a replication connection after
// START_REPLICATION ("Streaming Replication Protocol" in the PostgreSQL
// docs; walsender.c writes it, pg_recvlogical.c reads it). Each CopyData
// payload starts with one type byte; integers are big-endian.
//
//   server -> client
//   'w' XLogData                wal_start:Int64 wal_end:Int64 send_time:Int64
//                               data:Byte(n)   one pgoutput message
//   'k' Primary keepalive       wal_end:Int64 send_time:Int64 reply_requested:Byte1
//
//   client -> server
//   'r' Standby status update   write:Int64 flush:Int64 apply:Int64
//                               client_time:Int64 reply_requested:Byte1
//
// Pure: the caller supplies the clock and owns the bytes.

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "common/result.h"
#include "wal/errc.h"
#include "wal/lsn.h"

namespace wal {

struct XLogData {
  static constexpr char kType = 'w';
  // Where the WAL carried by this message starts. In logical replication it
  // is the LSN the decoder assigned to the message, not a position to confirm.
  Lsn wal_start;
  Lsn wal_end;  // the server's current end of WAL
  PgTimestamp send_time;
  // Borrows the CopyData buffer passed to parse_copy_data().
  std::string_view data;
};

struct PrimaryKeepalive {
  static constexpr char kType = 'k';
  Lsn wal_end;
  PgTimestamp send_time;
  // The walsender asks after wal_sender_timeout/2 without feedback and ends
  // the connection at wal_sender_timeout: answer at once.
  bool reply_requested = false;
};

using CopyMessage = std::variant<XLogData, PrimaryKeepalive>;

// One CopyData payload from the server.
common::Result<CopyMessage> parse_copy_data(std::string_view payload);

inline constexpr size_t kStandbyStatusUpdateSize = 1 + 8 + 8 + 8 + 8 + 1;

// The walsender moves the slot's confirmed_flush_lsn to `flush` (a zero flush
// is ignored); write and apply only feed pg_stat_replication.
std::string encode_standby_status_update(Lsn write, Lsn flush, Lsn apply, PgTimestamp now,
                                         bool reply_requested);

}  // namespace wal
