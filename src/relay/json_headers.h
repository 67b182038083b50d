#pragma once

// The outbox row's headers column: a JSON document read into Kafka headers.
//
// Two shapes, read in document order:
//   {"k": "v", "n": null, "x": 1.50, "o": {"a": [1]}}
//   [{"key": "k", "value": "v"}, {"key": "n", "value": null}, {"key": "n"}]
// The document of a jsonb column is PostgreSQL's text of it: object keys
// sorted (shorter first, then bytewise) with a repeated key kept once, so
// only the array shape, or a json or text column, keeps the written order.
// A string value is the header value as is; null is a null header value;
// numbers, booleans, objects and arrays become their minified JSON text.
// Anything else (another shape, invalid JSON, content after the document) is
// errc::bad_row, with a reason that starts "headers is not a JSON object or
// [{key,value}] array: ".

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "relay/record.h"

namespace relay {

// simdjson's parser behind a pointer, so that includers need not see
// simdjson. Its buffers are scratch, reused from row to row: a copy starts
// with fresh ones.
class JsonHeaderReader {
 public:
  JsonHeaderReader();
  ~JsonHeaderReader();
  JsonHeaderReader(const JsonHeaderReader&);
  JsonHeaderReader& operator=(const JsonHeaderReader&);
  JsonHeaderReader(JsonHeaderReader&&) noexcept;
  JsonHeaderReader& operator=(JsonHeaderReader&&) noexcept;

  // The buffer to write the document into, empty; read() parses it there,
  // so that the column's text is not copied again.
  std::string& document();
  // Appends the headers of the document in document() to `out`.
  common::Result<void> read(std::vector<Header>& out);

 private:
  struct State;
  State& state();

  std::unique_ptr<State> state_;
};

}  // namespace relay
