#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace app {

// Appends `s` as a JSON string: quotes, backslashes and control characters
// escaped; UTF-8 passes through.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

// "2024-05-01T12:00:00.123Z", UTC with milliseconds, as the JSON log lines
// write their time.
std::string format_utc_ms(int64_t unix_ms);

}  // namespace app
