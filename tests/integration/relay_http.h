// The relay's HTTP endpoints, for scenarios that run it with
// `http.listen: "127.0.0.1:0"`.
#pragma once

#include <chrono>
#include <regex>
#include <string>

#include <httplib.h>

#include "harness/harness.h"

// The port the kernel gave the relay, as its log names it; -1 when the
// relay exits or names none within 30 s.
inline int wait_http_port(harness::Process& relay) {
  static const std::regex re(R"(http listening on 127\.0\.0\.1:([0-9]+))");
  int port = -1;
  harness::wait_until(
      [&] {
        std::smatch m;
        const std::string log = relay.log_contents();
        if (std::regex_search(log, m, re)) port = std::stoi(m[1]);
        return port > 0 || !relay.running();
      },
      std::chrono::seconds(30));
  return port;
}

// The body of GET `path`; "" when the relay does not answer.
inline std::string http_body(int port, const char* path) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(2);
  auto r = c.Get(path);
  return r ? r->body : std::string();
}
