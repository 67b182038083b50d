#pragma once

#include <chrono>
#include <functional>

namespace harness {

using namespace std::chrono_literals;

// Polls `condition` every `poll` until it holds or `deadline` has passed;
// true if it held. The condition is checked once more at the deadline, so a
// slow poll never turns a success into a timeout.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds deadline,
                std::chrono::milliseconds poll = 50ms);

}  // namespace harness
