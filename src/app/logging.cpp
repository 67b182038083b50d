#include "app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <vector>
#include <string>

#include "app/json_text.h"

namespace app {

namespace {

bool is_field_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

// Fields whose value is free text: written last in a message, they take the
// rest of it.
bool takes_rest(std::string_view name) { return name == "reason" || name == "error"; }

// Messages are written as "key=value ... free text key=value ...". Every
// key=value token becomes a JSON field (the first one of a name wins, and
// time, level and msg are never overwritten) so that log pipelines can filter
// on slot, lsn, xid or id; msg is the text after the leading fields.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(std::string instance) : instance_(std::move(instance)) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string out = "{\"time\":";
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch())
                  .count() % 1000;
    char tbuf[96];
    std::tm tm;
    gmtime_r(&t, &tm);
    std::snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    append_json_string(out, tbuf);
    out += ",\"level\":";
    auto lv = spdlog::level::to_string_view(msg.level);
    append_json_string(out, std::string_view(lv.data(), lv.size()));
    if (!instance_.empty()) {
      out += ",\"instance\":";
      append_json_string(out, instance_);
    }
    std::string_view text(msg.payload.data(), msg.payload.size());
    std::vector<std::string_view> seen = {"time", "level", "msg", "instance"};
    size_t free_text_start = std::string_view::npos;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find(' ', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view tok = text.substr(pos, end - pos);
      size_t eq = tok.find('=');
      std::string_view name = eq == std::string_view::npos ? "" : tok.substr(0, eq);
      if (is_field_name(name)) {
        std::string_view value = takes_rest(name) ? text.substr(pos + eq + 1) : tok.substr(eq + 1);
        if (std::find(seen.begin(), seen.end(), name) == seen.end()) {
          seen.push_back(name);
          out += ',';
          append_json_string(out, name);
          out += ':';
          append_json_string(out, value);
        }
        if (takes_rest(name)) break;
      } else if (free_text_start == std::string_view::npos) {
        free_text_start = pos;
      }
      pos = end + 1;
    }
    out += ",\"msg\":";
    append_json_string(out, free_text_start == std::string_view::npos
                                ? std::string_view()
                                : text.substr(free_text_start));
    out += "}\n";
    dest.append(out.data(), out.data() + out.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(instance_);
  }

 private:
  std::string instance_;
};

}  // namespace

void setup_logging(const config::LogConfig& cfg, const std::string& instance) {
  auto logger = spdlog::stderr_logger_mt("outbox-relay");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(cfg.level));
  if (cfg.format == config::LogFormat::kJson) {
    spdlog::set_formatter(std::make_unique<JsonFormatter>(instance));
  } else if (!instance.empty()) {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l instance=" + instance + " %v",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  spdlog::flush_on(spdlog::level::info);
}

}  // namespace app
