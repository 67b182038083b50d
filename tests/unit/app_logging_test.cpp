#include "app/logging.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <string>

namespace app {
namespace {

std::string log_json_line(const std::function<void()>& emit) {
  spdlog::drop("outbox-relay");
  config::LogConfig cfg;
  cfg.format = config::LogFormat::kJson;
  ::testing::internal::CaptureStderr();
  setup_logging(cfg);
  emit();
  spdlog::default_logger()->flush();
  return ::testing::internal::GetCapturedStderr();
}

TEST(JsonLogs, KeyValueTokensBecomeFieldsAndLeadingOnesLeaveMsg) {
  auto line = log_json_line([] {
    spdlog::info("slot={} streaming from lsn={} server_version={}", "s1", "0/16B3748", 150013);
  });
  EXPECT_EQ(line.substr(0, 9), "{\"time\":\"");
  auto rest = line.substr(line.find("\",\"level\""));
  EXPECT_EQ(rest,
            "\",\"level\":\"info\",\"slot\":\"s1\",\"lsn\":\"0/16B3748\",\"server_version\":"
            "\"150013\",\"msg\":\"streaming from lsn=0/16B3748 server_version=150013\"}\n");
}

TEST(JsonLogs, ReasonTakesTheRestAndReservedNamesAreNotOverwritten) {
  auto line = log_json_line([] {
    spdlog::error("slot=s1 halting at bad row: id=7 xid=42 msg=x reason=topic is null, sorry");
  });
  EXPECT_NE(line.find("\"slot\":\"s1\",\"id\":\"7\",\"xid\":\"42\",\"reason\":\"topic is null, "
                      "sorry\",\"msg\":\"halting at bad row:"),
            std::string::npos)
      << line;
  EXPECT_EQ(line.find("\"msg\":\"x\""), std::string::npos) << line;
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one object per line";
}

TEST(JsonLogs, ControlCharactersAndQuotesAreEscaped) {
  auto line = log_json_line([] { spdlog::warn("component=librdkafka a \"b\"\n\tc"); });
  EXPECT_NE(line.find("\"component\":\"librdkafka\",\"msg\":\"a \\\"b\\\"\\n\\tc\"}"),
            std::string::npos)
      << line;
}

}  // namespace
}  // namespace app
