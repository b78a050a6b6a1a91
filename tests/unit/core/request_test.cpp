#include <catch2/catch.hpp>

#include "ssb/core/request.hpp"

using namespace ssb;
using namespace ssb::core;

namespace {
config::Config cfg() {
  config::Config c;
  c.ssh.host = "h";
  return c;
}
}  // namespace

TEST_CASE("request: submit keeps only forwardable env and checks it") {
  auto c = cfg();
  Request r{Op::submit,
            "alice.proj1",
            "",
            "#!/bin/bash\n",
            {{"JUPYTERHUB_API_TOKEN", "t"}, {"HOME", "/x"}, {"JPY_API_TOKEN", "t2"}, {"OTHER", "o"}}};
  r.token = std::string(32, 'a');
  REQUIRE(validate(r, c).ok());
  CHECK(r.env.size() == 2);
  CHECK(r.env.count("JUPYTERHUB_API_TOKEN") == 1);
  CHECK(r.env.count("JPY_API_TOKEN") == 1);
}

TEST_CASE("request: a forward pattern cannot smuggle a denied name") {
  auto c = cfg();
  c.env.forward = {"*"};
  Request r{Op::submit, "alice", "", "x", {{"LD_PRELOAD", "/evil.so"}}};
  auto st = validate(r, c);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::invalid_env);
}

TEST_CASE("request: size limits") {
  auto c = cfg();
  c.limits.max_script_bytes = 4;
  Request r{Op::submit, "alice", "", "12345", {}};
  auto st = validate(r, c);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::script_too_large);
  CHECK(st.error().message ==
        "job script for user alice is over the limit of 4 bytes (limits.max_script_bytes); make the script smaller or "
        "raise the limit");

  c.limits.max_script_bytes = 100;
  c.limits.max_env_bytes = 10;
  Request big{Op::submit, "alice", "", "x", {{"JUPYTERHUB_X", std::string(20, 'v')}}};
  auto st2 = validate(big, c);
  REQUIRE_FALSE(st2.ok());
  CHECK(st2.error().code == Errc::invalid_env);

  Request empty{Op::submit, "alice", "", "", {}};
  CHECK(validate(empty, c).error().code == Errc::bad_request);
}

TEST_CASE("request: query validates user and job id, drops env") {
  auto c = cfg();
  Request r{Op::query, "alice", "42", "", {{"JUPYTERHUB_X", "v"}}};
  REQUIRE(validate(r, c).ok());
  CHECK(r.env.empty());
  Request bad{Op::cancel, "alice", "4x", "", {}};
  CHECK(validate(bad, c).error().code == Errc::invalid_job_id);
  Request badu{Op::cancel, "al ice", "4", "", {}};
  CHECK(validate(badu, c).error().code == Errc::invalid_user);
}

TEST_CASE("forwardable_env reads environ entries") {
  auto c = cfg();
  auto env = forwardable_env(
      {"JUPYTERHUB_API_URL=http://h:8081/hub/api", "PATH=/bin", "JPY_API_TOKEN=a=b", "=x", "JUPYTERHUB_EMPTY="}, c);
  CHECK(env.size() == 3);
  CHECK(env["JPY_API_TOKEN"] == "a=b");
  CHECK(env["JUPYTERHUB_EMPTY"].empty());
}

TEST_CASE("op names round-trip") {
  for (Op op : {Op::submit, Op::query, Op::cancel, Op::status, Op::explain}) {
    Op back;
    REQUIRE(op_from_string(to_string(op), back));
    CHECK(back == op);
  }
  Op out;
  CHECK_FALSE(op_from_string("rm", out));
}

TEST_CASE("request: the hub's HOME is a claim about the user only when USER names that user") {
  CHECK(hub_home_from_environ({"USER=alice.proj1", "HOME=/home/alice.proj1"}, "alice.proj1") == "/home/alice.proj1");
  CHECK(hub_home_from_environ({"HOME=/home/alice.proj1", "USER=alice.proj1"}, "alice.proj1") == "/home/alice.proj1");
  // An admin running the CLI by hand: their own HOME says nothing about alice.
  CHECK(hub_home_from_environ({"USER=root", "HOME=/root"}, "alice.proj1").empty());
  CHECK(hub_home_from_environ({"HOME=/root"}, "alice.proj1").empty());
  CHECK(hub_home_from_environ({"USER=alice.proj1"}, "alice.proj1").empty());
}

TEST_CASE("request: an unusable hub HOME is refused with the user and the reason") {
  auto c = cfg();
  for (const auto& [home, why] : std::vector<std::pair<std::string, std::string>>{
           {"relative/home", "it is not an absolute path"},
           {std::string("/home/a\nb"), "it contains a NUL or line break"},
           {std::string("/home/a\0b", 9), "it contains a NUL or line break"},
           {"/" + std::string(5000, 'x'), "it is longer than 4096 bytes"}}) {
    INFO(why);
    Request r{Op::submit, "alice.proj1", "", "#!/bin/bash\n", {}};
    r.hub_home = home;
    auto st = validate(r, c);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_env);
    CHECK(st.error().message.find("HOME offered by the hub for user alice.proj1") != std::string::npos);
    CHECK(st.error().message.find(why) != std::string::npos);
  }
  Request q{Op::query, "alice.proj1", "42", "", {}};
  q.hub_home = "relative";
  CHECK(validate(q, c).ok());  // query: ignored and cleared
  CHECK(q.hub_home.empty());
}

TEST_CASE("request: explain validates user and job id like query, and carries nothing else") {
  auto c = cfg();
  Request ok{Op::explain, "alice.proj1", "42;cluster-1", "script", {{"JUPYTERHUB_API_TOKEN", "t"}}};
  REQUIRE(validate(ok, c));
  CHECK(ok.script.empty());
  CHECK(ok.env.empty());
  Request zero{Op::explain, "alice.proj1", "042", "", {}};
  auto z = validate(zero, c);
  REQUIRE_FALSE(z);
  CHECK(z.error().code == Errc::invalid_job_id);
  CHECK(z.error().message == "invalid job id \"042\": a Slurm job id is positive and has no leading zeros");
  Request inject{Op::explain, "alice.proj1", "42; id", "", {}};
  CHECK(validate(inject, c).error().code == Errc::invalid_job_id);
  Request user{Op::explain, "-alice", "42", "", {}};
  CHECK(validate(user, c).error().code == Errc::invalid_user);
}
