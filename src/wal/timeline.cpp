#include "wal/timeline.h"

#include <algorithm>
#include <charconv>
#include <string>

#include "wal/errc.h"

namespace wal {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

std::string_view skip_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  return s;
}

// The next run of non-space characters, removed from `s`.
std::string_view take_field(std::string_view& s) {
  s = skip_space(s);
  size_t n = 0;
  while (n < s.size() && !is_space(s[n])) ++n;
  std::string_view field = s.substr(0, n);
  s.remove_prefix(n);
  return field;
}

common::Error bad_line(size_t number, std::string_view line, std::string_view why) {
  std::string shown(line.substr(0, 200));
  std::replace_if(shown.begin(), shown.end(), [](char c) { return c < 0x20 || c == 0x7f; }, '?');
  return make_error(errc::invalid_value, "timeline history line " + std::to_string(number) + " '" +
                                             shown + "': " + std::string(why));
}

}  // namespace

common::Result<std::vector<TimelineSwitch>> parse_timeline_history(std::string_view content) {
  std::vector<TimelineSwitch> history;
  size_t number = 0;
  while (!content.empty()) {
    const size_t newline = content.find('\n');
    const std::string_view line = content.substr(0, newline);
    content.remove_prefix(newline == std::string_view::npos ? content.size() : newline + 1);
    ++number;
    std::string_view rest = skip_space(line);
    if (rest.empty() || rest.front() == '#') continue;

    const std::string_view tli_text = take_field(rest);
    TimelineId tli = 0;
    auto [end, ec] = std::from_chars(tli_text.data(), tli_text.data() + tli_text.size(), tli);
    if (ec != std::errc() || end != tli_text.data() + tli_text.size() || tli == 0) {
      return bad_line(number, line, "expected a timeline ID first");
    }
    const std::string_view lsn_text = take_field(rest);
    const std::optional<Lsn> switchpoint = Lsn::parse(lsn_text);
    if (!switchpoint) return bad_line(number, line, "expected a switch point (X/X) second");
    // readTimeLineHistory() refuses the same: the file is written oldest
    // first, and a timeline has one end.
    if (!history.empty() && tli <= history.back().tli) {
      return bad_line(number, line, "timeline IDs must increase");
    }
    if (!history.empty() && *switchpoint < history.back().switchpoint) {
      return bad_line(number, line, "switch points must not go back");
    }
    history.push_back({tli, *switchpoint});
  }
  return history;
}

HistoryVerdict judge_position(Lsn position, TimelineId recorded_tli, TimelineId server_tli,
                              Lsn server_wal_end, const std::vector<TimelineSwitch>& history) {
  HistoryVerdict verdict;
  if (recorded_tli != server_tli) {
    const auto ancestor =
        std::find_if(history.begin(), history.end(),
                     [&](const TimelineSwitch& s) { return s.tli == recorded_tli; });
    if (recorded_tli > server_tli || ancestor == history.end()) {
      verdict.divergence = Divergence::kNotAncestor;
      return verdict;
    }
    verdict.switchpoint = ancestor->switchpoint;
    if (position > ancestor->switchpoint) {
      verdict.divergence = Divergence::kBeyondSwitchPoint;
      return verdict;
    }
  }
  // Checked on the same timeline too: a server restored from a snapshot
  // keeps its timeline, and its WAL ends before what was read from the
  // history it lost.
  if (position > server_wal_end) verdict.divergence = Divergence::kBeyondWalEnd;
  return verdict;
}

const char* to_string(Divergence divergence) {
  switch (divergence) {
    case Divergence::kBeyondWalEnd:
      return "beyond the server's WAL end";
    case Divergence::kNotAncestor:
      return "timeline not in the server's history";
    case Divergence::kBeyondSwitchPoint:
      return "beyond the switch point";
  }
  return "diverged";
}

}  // namespace wal
