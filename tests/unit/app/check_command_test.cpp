// `check` as a list of steps: a step that fails without blocking the rest
// (identity, known_hosts) is reported and the next ones run; a step that
// blocks (connect) marks every later step as skipped, with its reason.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "ssb/app/commands.hpp"
#include "support/loopback.hpp"

using namespace ssb;

namespace {

config::Config unreachable_config() {
  config::Config c;
  c.source_path = "/etc/test/bridge.toml";
  c.ssh.host = "127.0.0.1";
  c.ssh.port = test::closed_port();
  c.ssh.user = "svc";
  c.ssh.identity_file = "/nonexistent/ssb/id";
  c.ssh.known_hosts = "/nonexistent/ssb/known_hosts";
  c.ssh.connect_timeout_s = 5;
  return c;
}

}  // namespace

TEST_CASE("check: with no connection, later steps are skipped and earlier failures still reported") {
  auto config = unreachable_config();
  app::Options options;
  options.json = true;
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  app::Io io{in, out, err, {}};
  CHECK(app::run_check_command(config, options, io) == 1);
  auto j = nlohmann::json::parse(out.str());
  CHECK(j.at("ok") == false);
  const auto& steps = j.at("steps");
  REQUIRE(steps.size() == 9);
  auto expect = [&](std::size_t i, const char* step, const char* verdict) {
    INFO(steps[i].dump());
    CHECK(steps[i].at("step") == step);
    CHECK(steps[i].at("verdict") == verdict);
  };
  expect(0, "config", "ok");
  expect(1, "identity", "fail");
  expect(2, "known_hosts", "fail");
  expect(3, "connect", "fail");
  expect(4, "host_key", "skip");
  expect(5, "auth", "skip");
  expect(6, "wrappers", "skip");
  expect(7, "sudo", "skip");
  expect(8, "status", "skip");
  CHECK_THAT(steps[0].at("detail").get<std::string>(),
             Catch::Contains("/etc/test/bridge.toml read; login svc@127.0.0.1"));
  CHECK_THAT(steps[2].at("detail").get<std::string>(), Catch::Contains("(ssh.known_hosts) cannot be read"));
  for (std::size_t i = 4; i < 9; ++i) CHECK(steps[i].at("detail") == "no connection");
}

TEST_CASE("check: the text report has one tagged line per step and a verdict") {
  auto config = unreachable_config();
  app::Options options;
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  app::Io io{in, out, err, {}};
  CHECK(app::run_check_command(config, options, io) == 1);
  auto text = out.str();
  CHECK_THAT(text, Catch::StartsWith("[ OK ] config "));
  CHECK_THAT(text, Catch::Contains("[FAIL] connect "));
  CHECK_THAT(text, Catch::Contains("[SKIP] sudo         no connection\n"));
  CHECK_THAT(text, Catch::EndsWith("verdict: FAILED (fix the first [FAIL] above)\n"));
  CHECK(err.str().empty());
}

TEST_CASE("check: the status step judges whether the service account sees other users' jobs") {
  auto open = app::judge_job_visibility("svc", "none", "");
  CHECK(open.first);
  CHECK_THAT(open.second, Catch::Contains("PrivateData = none: svc sees every user's jobs"));
  auto unset = app::judge_job_visibility("svc", "", "");
  CHECK(unset.first);
  auto op = app::judge_job_visibility("svc", "jobs,usage", "Operator");
  CHECK(op.first);
  CHECK_THAT(op.second, Catch::Contains("AdminLevel Operator"));
  auto hidden = app::judge_job_visibility("svc", "jobs", "");
  CHECK_FALSE(hidden.first);
  CHECK_THAT(hidden.second, Catch::Contains("PrivateData = jobs hides other users' jobs from svc"));
  CHECK_THAT(hidden.second, Catch::Contains("sacctmgr modify user svc set adminlevel=Operator"));
  CHECK_THAT(hidden.second, Catch::Contains("drop \"jobs\" from PrivateData"));
  CHECK_FALSE(app::judge_job_visibility("svc", "jobs", "None").first);
}
