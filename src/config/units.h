#pragma once

// Parsing and formatting of the scalar notations the configuration accepts
// (integers, booleans, durations, byte sizes). Pure functions, no YAML, so
// that the exact grammar is unit-tested on its own.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace config {

// A decimal integer with an optional sign; no underscores, no hex, no
// exponent, so that "1e6" or "0x10" are reported instead of misread.
common::Result<int64_t> parse_integer(std::string_view text);

// YAML 1.2 core-schema booleans only (true/false in three casings). yes/no
// and on/off are refused: YAML 1.1 reads them as booleans, other tools as
// strings, and a config should not depend on which.
common::Result<bool> parse_bool(std::string_view text);

// "500ms", "10s", "2m", "1h", or a bare integer meaning milliseconds.
common::Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// A bare integer of bytes, or an integer followed by a unit: B, kB/KB, MB,
// GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), optionally
// separated by one space. Units are case-insensitive ("64mb" is 64 MB).
common::Result<uint64_t> parse_size(std::string_view text);

// The largest unit that divides the value exactly, so that the output parses
// back to the same value: 1000ms -> "1s", 1500ms -> "1500ms".
std::string format_duration(std::chrono::milliseconds d);

// The shortest exact spelling of a size, binary units winning ties:
// 268435456 -> "256MiB", 64000000 -> "64MB", 3072 -> "3KiB", 1500 -> "1500".
std::string format_size(uint64_t bytes);

}  // namespace config
