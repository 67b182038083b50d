#pragma once

// The position a transactional producer commits inside each Kafka
// transaction, as the metadata string of an offset committed to the
// checkpoint group (see checkpoint_store.h):
//
//   v3 systemid=7312345678901234567 tli=2 end_lsn=16/B374D848 last_row=whole sel=5b1e0c7f3a9d2e41
//   v3 systemid=7312345678901234567 tli=2 end_lsn=16/B374D848 last_row=41 sel=5b1e0c7f3a9d2e41
//
// The first: every row up to that commit; the second: ... and rows 0..41 of
// the next. systemid is the server's system identifier and tli its timeline
// (IDENTIFY_SYSTEM), in decimal as PostgreSQL prints them; sel, 16 hex
// digits, the fingerprint of the outbox selection that counted last_row
// (relay::selection_fingerprint), written when known. A checkpoint that does
// not know the timeline, or the system, is written, and read, in the forms
// earlier relays wrote:
//
//   v2 systemid=7312345678901234567 end_lsn=16/B374D848 last_row=whole
//   v1 end_lsn=16/B374D848 last_row=whole
//
// end_lsn is the end LSN of the last PostgreSQL transaction whose rows are
// all in committed Kafka transactions: the position the slot may be
// confirmed to. A PostgreSQL transaction too large for one Kafka transaction
// spans several; until its Commit is included, last_row is the index (from
// 0, in stream order) of its last row already committed, so that a resume,
// which PostgreSQL restarts at that transaction's Begin, skips exactly
// those. Text, so that an operator can read it with kafka-consumer-groups.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "relay/checkpoint.h"
#include "wal/lsn.h"

namespace kafka {

using Checkpoint = relay::Checkpoint;

std::string encode_checkpoint(const Checkpoint& checkpoint);

// txn_errc::malformed_checkpoint, naming the text, when it is not exactly
// what encode_checkpoint() writes.
common::Result<Checkpoint> parse_checkpoint(std::string_view text);

}  // namespace kafka
