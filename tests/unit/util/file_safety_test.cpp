// StrictModes for the bridge's files, on real files (the suite runs as
// root in CI; the foreign owner is nobody, which exists on every Debian).
#include <catch2/catch.hpp>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "ssb/util/file_safety.hpp"
#include "support/temp_dir.hpp"

using namespace ssb;

namespace {

std::string make_file(const test::TempDir& dir, const char* name, mode_t mode) {
  auto path = (dir.path / name).string();
  std::ofstream(path) << "x\n";
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

struct NoOverride {
  NoOverride() { ::unsetenv(kTestingInsecureFilesEnv); }
  ~NoOverride() { ::unsetenv(kTestingInsecureFilesEnv); }
};

}  // namespace

TEST_CASE("file_safety: owner-only and read-only-for-others files pass; a missing one is left to its reader") {
  NoOverride clean;
  test::TempDir dir("ssb-fs");
  CHECK(check_trusted_file(make_file(dir, "a", 0600), "file", Errc::config));
  CHECK(check_trusted_file(make_file(dir, "b", 0644), "file", Errc::config));
  CHECK(check_trusted_file(make_file(dir, "c", 0640), "file", Errc::config));
  CHECK(check_trusted_file((dir.path / "missing").string(), "file", Errc::config));
}

TEST_CASE("file_safety: writable by group or others is refused, naming the file and the fix") {
  NoOverride clean;
  test::TempDir dir("ssb-fs");
  auto g = make_file(dir, "g", 0664);
  auto st = check_trusted_file(g, "configuration file " + g, Errc::config);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().code == Errc::config);
  CHECK(st.error().message ==
        "configuration file " + g + " has permissions 0664: its group can rewrite it; run `chmod go-w " + g + "`");
  auto o = make_file(dir, "o", 0606);
  auto st2 = check_trusted_file(o, "known_hosts file", Errc::host_key);
  REQUIRE_FALSE(st2.ok());
  CHECK(st2.error().code == Errc::host_key);
  CHECK(st2.error().message.find("every local account can rewrite it") != std::string::npos);
}

TEST_CASE("file_safety: a file owned by another account is refused; the testing override only warns") {
  NoOverride clean;
  if (::geteuid() != 0) {
    WARN("needs root to give a file away");
    return;
  }
  test::TempDir dir("ssb-fs");
  const passwd* pw = ::getpwnam("nobody");
  REQUIRE(pw != nullptr);
  auto f = make_file(dir, "n", 0600);
  REQUIRE(::chown(f.c_str(), pw->pw_uid, pw->pw_gid) == 0);
  auto st = check_trusted_file(f, "identity file " + f, Errc::auth);
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.find("is owned by nobody (uid " + std::to_string(pw->pw_uid) + ")") != std::string::npos);
  CHECK(st.error().message.find("run `chown root " + f + "`") != std::string::npos);
  ::setenv(kTestingInsecureFilesEnv, "yes", 1);  // only "1" counts
  CHECK_FALSE(check_trusted_file(f, "file", Errc::auth));
  ::setenv(kTestingInsecureFilesEnv, "1", 1);
  CHECK(check_trusted_file(f, "file", Errc::auth));
}
