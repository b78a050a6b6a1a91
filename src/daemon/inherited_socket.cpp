#include "ssb/daemon/inherited_socket.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ssb::daemon {

namespace {

constexpr int kFirstPassedFd = 3;  // SD_LISTEN_FDS_START

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

}  // namespace

Result<std::optional<int>> inherited_listener(const std::string& expected_path) {
  const std::string pid = env_or_empty("LISTEN_PID");
  const std::string fds = env_or_empty("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
  // Meant for another process (a parent that exec'd us without clearing
  // them): not ours.
  if (pid.empty() || fds.empty() || pid != std::to_string(::getpid())) return std::optional<int>{};
  if (fds != "1") {
    return make_error(Errc::config, fmt::format("systemd passed {} sockets (LISTEN_FDS); the daemon takes exactly "
                                                "one: give slurm-ssh-bridge.socket a single ListenStream=",
                                                fds));
  }
  const int fd = kFirstPassedFd;
  sockaddr_un addr{};
  socklen_t len = sizeof addr;
  int listening = 0;
  socklen_t optlen = sizeof listening;
  int type = 0;
  socklen_t typelen = sizeof type;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sun_family != AF_UNIX ||
      ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &typelen) != 0 || type != SOCK_STREAM ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || listening == 0) {
    return make_error(Errc::config,
                      "the socket systemd passed (descriptor 3) is not a listening Unix stream socket; "
                      "slurm-ssh-bridge.socket needs ListenStream=PATH");
  }
  const auto path_len = static_cast<std::size_t>(len) - offsetof(sockaddr_un, sun_path);
  std::string bound(addr.sun_path, ::strnlen(addr.sun_path, std::min(path_len, sizeof addr.sun_path)));
  if (bound != expected_path) {
    return make_error(Errc::config,
                      fmt::format("systemd passed a socket bound to {} but daemon.socket is {}; make the .socket "
                                  "unit's ListenStream= and daemon.socket the same path",
                                  bound.empty() ? std::string("(an unnamed socket)") : bound, expected_path));
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  return std::optional<int>{fd};
}

}  // namespace ssb::daemon
