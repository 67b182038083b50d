#pragma once

// "did you mean" for unknown keys.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace config {

// Edit distance counting insertions, deletions, substitutions and swaps of
// two adjacent characters (optimal string alignment), so that the common
// typo "slto" is one edit from "slot", not two.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` within `max_distance` edits; the first of
// equally close candidates wins, so the schema's order breaks ties.
std::optional<std::string_view> closest_match(std::string_view word,
                                              std::span<const std::string_view> candidates,
                                              size_t max_distance = 2);

}  // namespace config
