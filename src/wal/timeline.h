#pragma once

// Timeline histories, as the walsender sends them for TIMELINE_HISTORY tli
// (the content of pg_wal/<tli>.history), and the judgement of a position
// taken on one timeline against a server on another. Pure: text in, values
// out.
//
// One line per ancestor timeline, oldest first, tab-separated, written by
// writeTimeLineHistory() in PostgreSQL's timeline.c:
//
//   1	0/3000158	no recovery target specified
//   2	0/5000060	before 2024-05-01 10:00:00+00
//
// "timeline 1 ended at 0/3000158, where timeline 2 began; timeline 2 ended at
// 0/5000060". The file's own timeline is not listed: it has not ended. Blank
// lines and lines starting with '#' are comments (readTimeLineHistory()).

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "wal/lsn.h"

namespace wal {

using TimelineId = uint32_t;

// An ancestor timeline and the position where the server's history left it.
struct TimelineSwitch {
  TimelineId tli = 0;
  Lsn switchpoint;

  bool operator==(const TimelineSwitch&) const = default;
};

// The ancestors in the file's order. errc::invalid_value naming the line
// when a line is not `tli<TAB>X/X[<TAB>reason]`, or when the timelines do
// not increase.
common::Result<std::vector<TimelineSwitch>> parse_timeline_history(std::string_view content);

// Why positions recorded on one history cannot be used on the server's.
enum class Divergence {
  // The position is beyond the server's WAL end: the server never wrote
  // it, so it is not in its history (a snapshot restored on the same
  // timeline, an older backup).
  kBeyondWalEnd,
  // The recorded timeline is not one the server's history passed through
  // (a restore of a backup older than the promotion, a sibling standby
  // promoted on its own).
  kNotAncestor,
  // The recorded timeline is an ancestor, but the server's history left it
  // before the position: the WAL between the switch point and the position
  // is another history here (PITR, a lagging standby promoted).
  kBeyondSwitchPoint,
};

struct HistoryVerdict {
  // Unset: the position is in the server's history (same timeline, or an
  // ancestor left at or after it).
  std::optional<Divergence> divergence;
  // Where the server's history left the recorded timeline, when it is an
  // ancestor.
  std::optional<Lsn> switchpoint;

  bool same_history() const { return !divergence; }
};

// Whether `position`, recorded on `recorded_tli`, is in the history of a
// server on `server_tli` whose WAL ends at `server_wal_end` and whose
// timeline history is `history` (empty for timeline 1). A position equal to
// the switch point is shared: the new timeline begins there.
HistoryVerdict judge_position(Lsn position, TimelineId recorded_tli, TimelineId server_tli,
                              Lsn server_wal_end, const std::vector<TimelineSwitch>& history);

const char* to_string(Divergence divergence);

}  // namespace wal
