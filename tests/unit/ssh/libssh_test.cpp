#include <catch2/catch.hpp>

#include "ssb/ssh/libssh.hpp"

using namespace ssb;

TEST_CASE("libssh: a library that cannot be found is an error naming it and what to install") {
  auto r = ssh::open_libssh("libssh-ssb-test-absent.so.99");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::internal);
  CHECK_THAT(r.error().message, Catch::Contains("cannot load libssh-ssb-test-absent.so.99"));
  CHECK_THAT(r.error().message, Catch::Contains("apt-get install libssh-4"));
}

TEST_CASE("libssh: a library without libssh's functions is refused, naming the first one missing") {
  // zlib is loaded by every libssh anyway; it has none of libssh's functions.
  auto r = ssh::open_libssh("libz.so.1");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::internal);
  CHECK_THAT(r.error().message, Catch::Contains("libz.so.1 has no function ssh_version"));
}

TEST_CASE("libssh: the build's libssh loads once and every function resolves") {
  CHECK(std::string(ssh::libssh_soname()).rfind("libssh.so.", 0) == 0);
  auto first = ssh::load_libssh();
  REQUIRE(first);
  auto second = ssh::load_libssh();
  REQUIRE(second);
  CHECK(*first == *second);
  const auto& lib = ssh::libssh();
  CHECK(&lib == *first);
  CHECK(lib.ssh_new != nullptr);
  CHECK(lib.ssh_event_remove_fd != nullptr);
  const char* version = lib.ssh_version(SSH_VERSION_INT(0, 9, 0));
  REQUIRE(version != nullptr);
  CHECK_THAT(std::string(version), Catch::StartsWith("0."));
}
