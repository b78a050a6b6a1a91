#include <catch2/catch.hpp>

#include <sstream>

#include "ssb/app/output.hpp"
#include "ssb/protocol/json.hpp"

using namespace ssb;

TEST_CASE("output: text mode passes the wrapper's output and status through") {
  core::Response r;
  r.op = core::Op::query;
  r.remote = core::RemoteOutcome{1, "out\n", "slurm_load_jobs error: Invalid job id specified\n"};
  r.error = Error{Errc::remote_failed, "x"};
  std::ostringstream out, err;
  CHECK(app::print_response(r, false, out, err) == 1);
  CHECK(out.str() == "out\n");
  CHECK(err.str() == "slurm_load_jobs error: Invalid job id specified\n");
}

TEST_CASE("output: bridge failures are one stderr line with the code") {
  core::Response r;
  r.error = Error{Errc::transport, "cannot connect\nto x"};
  std::ostringstream out, err;
  CHECK(app::print_response(r, false, out, err) == 255);
  CHECK(out.str().empty());
  CHECK(err.str() == "slurm-ssh-bridge: transport: cannot connect to x\n");

  std::ostringstream out2, err2;
  CHECK(app::print_failure(Error{Errc::invalid_user, "bad"}, false, out2, err2) == 2);
  CHECK(err2.str() == "slurm-ssh-bridge: invalid_user: bad\n");
}

TEST_CASE("output: json mode prints one object") {
  core::Response r;
  r.op = core::Op::submit;
  r.user = "alice";
  r.job_id = "9";
  r.remote = core::RemoteOutcome{0, "9\n", ""};
  std::ostringstream out, err;
  CHECK(app::print_response(r, true, out, err) == 0);
  auto j = nlohmann::json::parse(out.str());
  CHECK(j["ok"] == true);
  CHECK(j["job_id"] == "9");
  CHECK(j["stdout"] == "9\n");
  CHECK(err.str().empty());

  std::ostringstream out2, err2;
  CHECK(app::print_failure(Error{Errc::config, "f:1: bad"}, true, out2, err2) == 2);
  auto j2 = nlohmann::json::parse(out2.str());
  CHECK(j2["error"]["code"] == "config");
}
