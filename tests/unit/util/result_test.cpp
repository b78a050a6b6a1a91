#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "ssb/util/result.hpp"

using namespace ssb;

TEST_CASE("error codes: one table, every spelling round-trips and is unique") {
  std::set<std::string> names;
  for (const auto& info : all_error_codes()) {
    INFO(info.name);
    CHECK(to_string(info.code) == info.name);
    Errc back = Errc::usage;
    REQUIRE(errc_from_string(info.name, back));
    CHECK(back == info.code);
    CHECK(names.insert(std::string(info.name)).second);
    CHECK_FALSE(info.meaning.empty());
  }
  CHECK(names.size() == static_cast<std::size_t>(Errc::internal) + 1);  // every enumerator has a row
  Errc untouched = Errc::auth;
  CHECK_FALSE(errc_from_string("no_such_code", untouched));
  CHECK(untouched == Errc::auth);
}

TEST_CASE("error codes: exit statuses and the state-unknown column") {
  CHECK(exit_status_for(Errc::usage) == 2);
  CHECK(exit_status_for(Errc::invalid_user) == 2);
  CHECK(exit_status_for(Errc::remote_failed) == 1);
  CHECK(exit_status_for(Errc::transport) == 255);
  CHECK(exit_status_for(Errc::submit_unknown) == 255);
  // A failed query must keep batchspawner polling for these ...
  for (auto code : {Errc::transport, Errc::timeout, Errc::host_key, Errc::auth, Errc::daemon_unavailable,
                    Errc::overloaded, Errc::shutting_down, Errc::config, Errc::internal}) {
    CHECK(leaves_state_unknown(code));
  }
  // ... and not for answers about the request or the job itself.
  for (auto code : {Errc::usage, Errc::invalid_user, Errc::invalid_job_id, Errc::invalid_env, Errc::script_too_large,
                    Errc::bad_request, Errc::submit_unknown, Errc::remote_failed}) {
    CHECK_FALSE(leaves_state_unknown(code));
  }
}

TEST_CASE("Result holds a value or an error") {
  Result<std::string> good = std::string("v");
  REQUIRE(good.ok());
  CHECK(static_cast<bool>(good));
  CHECK(*good == "v");
  CHECK(good->size() == 1);
  std::string moved = std::move(good).value();
  CHECK(moved == "v");
  Result<int> bad = make_error(Errc::timeout, "too slow");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == Errc::timeout);
  CHECK(bad.error().message == "too slow");
}
