#include "ssb/util/file_safety.hpp"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "ssb/util/log.hpp"

namespace ssb {

namespace {

// A name for chown: the account's, or its number.
std::string owner_name(uid_t uid) {
  const passwd* pw = ::getpwuid(uid);
  return pw ? std::string(pw->pw_name) : std::to_string(uid);
}

bool testing_override() {
  const char* v = std::getenv(kTestingInsecureFilesEnv);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace

Status check_trusted_file(const std::string& path, std::string_view what, Errc code) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  const uid_t me = ::geteuid();
  std::string why;
  if (st.st_uid != 0 && st.st_uid != me) {
    why = fmt::format(
        "{} is owned by {} (uid {}), who could rewrite it; only root or the account running the "
        "bridge ({}, uid {}) may own it: run `chown {} {}`",
        what, owner_name(st.st_uid), st.st_uid, owner_name(me), me, owner_name(me), path);
  } else if ((st.st_mode & 022) != 0) {
    why = fmt::format("{} has permissions {:04o}: {} can rewrite it; run `chmod go-w {}`", what, st.st_mode & 07777,
                      (st.st_mode & 002) != 0 ? "every local account" : "its group", path);
  }
  if (why.empty()) return {};
  if (testing_override()) {
    log::warn(fmt::format("TESTING ONLY ({}=1): accepting an unsafe file: {}", kTestingInsecureFilesEnv, why));
    return {};
  }
  return make_error(code, why);
}

}  // namespace ssb
