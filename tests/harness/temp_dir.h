#pragma once

#include <string>

namespace harness {

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when destroyed, unless OUTBOX_KEEP_TEST_DIRS is set: then it is kept and
// its path printed, for looking at logs after a failure.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "outbox-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // True when OUTBOX_KEEP_TEST_DIRS asks to keep test directories.
  static bool keep_requested();

 private:
  std::string path_;
};

}  // namespace harness
