// The command line is a contract that scripts rely on: subcommands, output
// and exit codes (0 ok, 2 bad configuration or usage, 1 runtime failure).
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "harness/process.h"
#include "harness/temp_dir.h"
#include "relay_fixture.h"

namespace itest {
namespace {

class CliTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& body) {
    std::string path = dir_.path() + "/" + name;
    std::ofstream(path) << body;
    return path;
  }
  harness::CommandResult relay(std::vector<std::string> args,
                               std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), relay_binary());
    return harness::run_command(args, env);
  }
  harness::TempDir dir_;
};

TEST_F(CliTest, VersionPrintsTheVersionAndExitsZero) {
  auto r = relay({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("0."), std::string::npos) << r.out;
}

TEST_F(CliTest, NoSubcommandOrAnUnknownOneIsAUsageError) {
  EXPECT_EQ(relay({}).exit_code, 2);
  auto r = relay({"publish"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(r.err.empty());
  EXPECT_EQ(relay({"run"}).exit_code, 2) << "run without --config";
}

TEST_F(CliTest, CheckConfigAcceptsAValidFileAndRedactsItsSecrets) {
  const std::string path = write("good.yaml",
                                 "postgres:\n"
                                 "  dsn: \"host=db user=relay password=${PGPASS}\"\n"
                                 "kafka:\n"
                                 "  brokers: \"k1:9092\"\n"
                                 "  properties:\n"
                                 "    sasl.password: hunter2-kafka\n");
  auto r = relay({"check-config", path}, {{"PGPASS", "hunter2-pg"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(path + ": ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("brokers"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
}

TEST_F(CliTest, CheckConfigReportsEveryMistakeWithFileLineAndColumn) {
  const std::string path = write("bad.yaml",
                                 "postgres:\n"
                                 "  dsn: \"host=db\"\n"
                                 "  slott: s\n"
                                 "kafka:\n"
                                 "  brokers: \"k1:9092\"\n"
                                 "outbox:\n"
                                 "  on_bad_row: skip\n");
  auto r = relay({"check-config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(path + ":3:3"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("slot"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":7:15"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("2 errors"), std::string::npos) << r.err;
}

TEST_F(CliTest, RunWithAMissingOrInvalidConfigExitsTwoBeforeConnecting) {
  EXPECT_EQ(relay({"run", "--config", dir_.path() + "/absent.yaml"}).exit_code, 2);
  const std::string path = write("unset.yaml",
                                 "postgres:\n"
                                 "  dsn: \"${OUTBOX_TEST_UNSET_VARIABLE}\"\n"
                                 "kafka:\n"
                                 "  brokers: \"k1:9092\"\n");
  auto r = relay({"run", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("OUTBOX_TEST_UNSET_VARIABLE"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace itest
