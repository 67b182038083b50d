#include "app/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <string>

namespace app {

namespace {

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// Messages are written as "field=value ... free text"; leading key=value
// tokens become JSON fields so that log pipelines can filter on slot or lsn.
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
    std::string free_text;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t end = text.find(' ', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view tok = text.substr(pos, end - pos);
      size_t eq = tok.find('=');
      bool is_field = eq != std::string_view::npos && eq > 0 && free_text.empty();
      for (size_t i = 0; is_field && i < eq; ++i) {
        if (!(std::isalnum(static_cast<unsigned char>(tok[i])) || tok[i] == '_')) is_field = false;
      }
      if (is_field) {
        out += ',';
        append_json_string(out, tok.substr(0, eq));
        out += ':';
        append_json_string(out, tok.substr(eq + 1));
      } else {
        free_text = std::string(text.substr(pos));
        break;
      }
      pos = end + 1;
    }
    out += ",\"msg\":";
    append_json_string(out, free_text);
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
