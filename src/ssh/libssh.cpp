#include "ssb/ssh/libssh.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstdlib>
#include <mutex>
#include <optional>

#ifndef SSB_LIBSSH_SONAME
#error "SSB_LIBSSH_SONAME must be defined by the build (CMakeLists.txt reads it from libssh's CMake package)"
#endif

namespace ssb::ssh {

namespace {

// The oldest libssh whose behaviour this program relies on (non-blocking
// channel callbacks, ssh_session_is_known_server, SSH_OPTIONS_PROCESS_CONFIG).
constexpr int kMinimumVersion = SSH_VERSION_INT(0, 9, 0);
#define SSB_STR2(x) #x
#define SSB_STR(x) SSB_STR2(x)
constexpr const char* kBuiltAgainst =
    SSB_STR(LIBSSH_VERSION_MAJOR) "." SSB_STR(LIBSSH_VERSION_MINOR) "." SSB_STR(LIBSSH_VERSION_MICRO);

std::once_flag g_once;
std::optional<Result<LibSsh>> g_loaded;

}  // namespace

const char* libssh_soname() { return SSB_LIBSSH_SONAME; }

Result<LibSsh> open_libssh(const char* soname) {
  // RTLD_LOCAL: nothing else in the process resolves against libssh.
  // RTLD_NOW: a missing function is found here, not mid-request.
  void* handle = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = ::dlerror();
    return make_error(Errc::internal,
                      fmt::format("cannot load {}, which every SSH connection needs: {}. Install libssh "
                                  "(Debian: apt-get install libssh-4); in a container image, copy it in "
                                  "with the bridge (containers/jupyterhub/collect-runtime.sh does)",
                                  soname, why != nullptr ? why : "unknown dlopen error"));
  }
  LibSsh table;
  const char* missing = nullptr;
#define SSB_LIBSSH_RESOLVE(name)                                              \
  if (missing == nullptr) {                                                   \
    table.name = reinterpret_cast<decltype(&::name)>(::dlsym(handle, #name)); \
    if (table.name == nullptr) missing = #name;                               \
  }
  SSB_LIBSSH_FUNCTIONS(SSB_LIBSSH_RESOLVE)
#undef SSB_LIBSSH_RESOLVE
  if (missing != nullptr) {
    ::dlclose(handle);
    return make_error(Errc::internal, fmt::format("{} has no function {}: it is not the libssh this bridge was "
                                                  "built for ({}); rebuild the bridge against the installed libssh",
                                                  soname, missing, kBuiltAgainst));
  }
  if (table.ssh_version(kMinimumVersion) == nullptr) {
    const char* have = table.ssh_version(0);
    ::dlclose(handle);
    return make_error(Errc::internal, fmt::format("{} is libssh {}, older than the 0.9.0 this bridge needs; "
                                                  "install a newer libssh",
                                                  soname, have != nullptr ? have : "(unknown version)"));
  }
  return table;
}

Result<const LibSsh*> load_libssh() {
  std::call_once(g_once, [] { g_loaded.emplace(open_libssh(libssh_soname())); });
  if (!g_loaded->ok()) return g_loaded->error();
  return &g_loaded->value();
}

const LibSsh& libssh() {
  if (!g_loaded || !g_loaded->ok()) {
    // Every public entry point of ssb::ssh loads first; reaching this is a bug.
    std::abort();
  }
  return g_loaded->value();
}

}  // namespace ssb::ssh
