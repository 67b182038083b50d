#include "harness/scripts.h"

#include <unistd.h>

#include <stdexcept>

namespace harness::detail {

std::string run_script(const std::string& script, const std::vector<std::string>& args,
                       std::map<std::string, std::string> env) {
  std::vector<std::string> argv{script_path(script)};
  argv.insert(argv.end(), args.begin(), args.end());
  env["HARNESS_OWNER_PID"] = std::to_string(::getpid());
  CommandResult r = run_command(argv, env);
  if (r.exit_code != 0) {
    std::string what = script;
    for (const auto& a : args) what += " " + a;
    throw std::runtime_error(what + " exited with " + std::to_string(r.exit_code) + ":\n" + r.err +
                             r.out);
  }
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
  return r.out;
}

}  // namespace harness::detail
