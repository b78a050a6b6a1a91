#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include "ssb/util/peer_credentials.hpp"

using namespace ssb;

TEST_CASE("peer_credentials: the kernel names both ends of a socketpair; a non-socket has none") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto a = peer_credentials(fds[0]);
  auto b = peer_credentials(fds[1]);
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->uid == ::geteuid());
  CHECK(b->pid == ::getpid());
  int p[2];
  REQUIRE(::pipe(p) == 0);
  CHECK_FALSE(peer_credentials(p[0]));
  ::close(p[0]);
  ::close(p[1]);
}
