// Socket activation without systemd: the test puts a socket on descriptor 3
// and sets LISTEN_PID / LISTEN_FDS the way systemd does.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "ssb/daemon/inherited_socket.hpp"
#include "support/temp_dir.hpp"

using namespace ssb;

namespace {

// Holds `fd` on descriptor 3 for the test's lifetime, then puts back
// whatever was there.
struct OnFd3 {
  int saved = -1;
  explicit OnFd3(int fd) {
    saved = ::dup(3);  // -1 when 3 was free
    REQUIRE(::dup2(fd, 3) == 3);
    ::close(fd);
  }
  ~OnFd3() {
    if (saved >= 0) {
      ::dup2(saved, 3);
      ::close(saved);
    } else {
      ::close(3);
    }
  }
};

int unix_socket(const std::string& path, bool listening) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  if (listening) REQUIRE(::listen(fd, 8) == 0);
  return fd;
}

void passed_by_systemd(const std::string& fds = "1", const std::string& pid = std::to_string(::getpid())) {
  ::setenv("LISTEN_PID", pid.c_str(), 1);
  ::setenv("LISTEN_FDS", fds.c_str(), 1);
  ::setenv("LISTEN_FDNAMES", "bridge.sock", 1);
}

bool listen_env_cleared() { return !::getenv("LISTEN_PID") && !::getenv("LISTEN_FDS") && !::getenv("LISTEN_FDNAMES"); }

}  // namespace

TEST_CASE("inherited socket: without LISTEN_PID/LISTEN_FDS there is none") {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  auto r = daemon::inherited_listener("/run/x.sock");
  REQUIRE(r);
  CHECK_FALSE(r->has_value());
}

TEST_CASE("inherited socket: sockets meant for another process are not taken, and the variables are cleared") {
  test::TempDir dir("ssb-activate");
  auto path = (dir.path / "b.sock").string();
  OnFd3 held(unix_socket(path, true));
  passed_by_systemd("1", std::to_string(::getpid() + 1));
  auto r = daemon::inherited_listener(path);
  REQUIRE(r);
  CHECK_FALSE(r->has_value());
  CHECK(listen_env_cleared());
}

TEST_CASE("inherited socket: the listening socket bound to daemon.socket is taken") {
  test::TempDir dir("ssb-activate");
  auto path = (dir.path / "b.sock").string();
  OnFd3 held(unix_socket(path, true));
  passed_by_systemd();
  auto r = daemon::inherited_listener(path);
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK(**r == 3);
  CHECK(listen_env_cleared());
}

TEST_CASE("inherited socket: a socket bound elsewhere is refused, naming both paths") {
  test::TempDir dir("ssb-activate");
  auto path = (dir.path / "other.sock").string();
  OnFd3 held(unix_socket(path, true));
  passed_by_systemd();
  auto r = daemon::inherited_listener("/run/slurm-ssh-bridge/bridge.sock");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::config);
  CHECK_THAT(r.error().message, Catch::Contains(path) && Catch::Contains("/run/slurm-ssh-bridge/bridge.sock") &&
                                    Catch::Contains("ListenStream="));
}

TEST_CASE("inherited socket: a socket that does not listen is refused") {
  test::TempDir dir("ssb-activate");
  auto path = (dir.path / "b.sock").string();
  OnFd3 held(unix_socket(path, false));
  passed_by_systemd();
  auto r = daemon::inherited_listener(path);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("not a listening Unix stream socket"));
}

TEST_CASE("inherited socket: more than one passed socket is refused") {
  passed_by_systemd("2");
  auto r = daemon::inherited_listener("/run/x.sock");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("2 sockets") && Catch::Contains("exactly one"));
  CHECK(listen_env_cleared());
}
