#pragma once

#include <cstdio>
#include <string>

namespace itest {

inline std::string row_id(int n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", n);
  return buf;
}

inline int row_number(const std::string& id) { return std::stoi(id.substr(24)); }

// Rows [first, first + count) as one INSERT statement; row n has key
// "k<n % keys>", so a key's rows are numbered in insertion order.
inline std::string insert_rows_sql(const std::string& topic, int first, int count,
                                   int payload_bytes = 64, int keys = 17) {
  return "INSERT INTO outbox (id, topic, key, payload) SELECT "
         "('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, '" +
         topic + "', 'k' || (g % " + std::to_string(keys) + "), convert_to(repeat('p', " +
         std::to_string(payload_bytes) + "), 'UTF8') FROM generate_series(" +
         std::to_string(first) + ", " + std::to_string(first + count - 1) + ") g;";
}

}  // namespace itest
