#pragma once

namespace harness {

// A loopback TCP port nothing listens on: bound to port 0, then released.
// Another process may take it before the caller binds it.
int free_port();

}  // namespace harness
