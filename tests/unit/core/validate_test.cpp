#include <catch2/catch.hpp>

#include "ssb/core/validate.hpp"

using namespace ssb;
using namespace ssb::core;

TEST_CASE("validate_user accepts normal account names") {
  for (const char* u : {"alice", "alice.proj1", "a_b-c.d", "A1", "x"}) {
    INFO(u);
    CHECK(validate_user(u).ok());
  }
  CHECK(validate_user(std::string(64, 'a')).ok());
}

TEST_CASE("validate_user rejects anything that could escape") {
  struct Case {
    std::string user;
    std::string why;
  };
  std::vector<Case> cases{
      {"", "it is empty"},
      {"-alice", "starts with '-'"},
      {".alice", "starts with '.'"},
      {"a;b", "contains ';'"},
      {"a$(id)", "contains '$'"},
      {"a`id`", "contains '`'"},
      {"a'b", "contains '''"},
      {"a\"b", "contains '\"'"},
      {"a b", "whitespace"},
      {"a\nb", "control character"},
      {"a\tb", "control character"},
      {std::string("a\0b", 3), "control character"},
      {"al\xc3\xaf"
       "ce",
       "non-ASCII"},
      {std::string(65, 'a'), "longer than 64"},
      {"a/b", "contains '/'"},
      {"#1000", "contains '#'"},
  };
  for (const auto& c : cases) {
    INFO(c.user);
    auto st = validate_user(c.user);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_user);
    CHECK(st.error().message.find("invalid user name") == 0);
    CHECK(st.error().message.find(c.why) != std::string::npos);
  }
}

TEST_CASE("validate_job_id accepts Slurm ids") {
  for (const char* id : {"1", "42", "4294967294", "123;cluster1", "7;a-b_c"}) {
    INFO(id);
    CHECK(validate_job_id(id).ok());
  }
}

TEST_CASE("validate_job_id rejects bad ids") {
  for (const char* id : {"", "-1", "0", "007", "abc", "12a", "1 2", " 1", "1;", ";x", "1;a b", "1;$(x)", "4294967295",
                         "99999999999", "1e5", "+1", "1.0"}) {
    INFO(id);
    auto st = validate_job_id(id);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_job_id);
    CHECK(st.error().message.find("invalid job id") == 0);
  }
}

TEST_CASE("validate_env_name") {
  CHECK(validate_env_name("JUPYTERHUB_API_TOKEN").ok());
  CHECK(validate_env_name("_X1").ok());
  for (const char* n :
       {"", "1A", "A-B", "A B", "A=B", "PATH", "LD_PRELOAD", "BASH_ENV", "IFS", "BASH_FUNC_x%%", "HOME"}) {
    INFO(n);
    auto st = validate_env_name(n);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::invalid_env);
  }
}

TEST_CASE("validate_env_value refuses NUL and never shows a secret") {
  auto st = validate_env_value("JUPYTERHUB_API_TOKEN", std::string("s3k\0r1t", 7), true);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("s3k") == std::string::npos);
  CHECK(validate_env_value("X", "a'b\"c$d\\e\nf", false).ok());
}

TEST_CASE("glob_match") {
  CHECK(glob_match("JUPYTERHUB_*", "JUPYTERHUB_API_TOKEN"));
  CHECK(glob_match("JUPYTERHUB_*", "JUPYTERHUB_"));
  CHECK_FALSE(glob_match("JUPYTERHUB_*", "XJUPYTERHUB_A"));
  CHECK(glob_match("*TOKEN*", "JPY_API_TOKEN"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("A*B*C", "AxxBxxC"));
  CHECK_FALSE(glob_match("A*B*C", "AxxBxx"));
  CHECK(glob_match("JPY_API_TOKEN", "JPY_API_TOKEN"));
  CHECK_FALSE(glob_match("JPY_API_TOKEN", "JPY_API_TOKENS"));
}

TEST_CASE("printable escapes control bytes and bounds length") {
  CHECK(printable("a\nb\x01") == "a\\nb\\x01");
  CHECK(printable(std::string(200, 'x')) == std::string(64, 'x') + "... (200 bytes)");
}
