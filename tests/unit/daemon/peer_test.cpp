// daemon.allowed_users / allowed_groups, against this host's real accounts
// (root and nobody exist on every Debian system).
#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssb/daemon/peer.hpp"

using namespace ssb;

namespace {

config::Config with_lists(std::vector<std::string> users, std::vector<std::string> groups) {
  config::Config c;
  c.daemon.allowed_users = std::move(users);
  c.daemon.allowed_groups = std::move(groups);
  return c;
}

daemon::Peer nobody() {
  const passwd* pw = ::getpwnam("nobody");
  REQUIRE(pw != nullptr);
  return daemon::Peer{pw->pw_uid, pw->pw_gid, 1};
}

}  // namespace

TEST_CASE("peer: the kernel names the process on the other end of a socketpair") {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
  auto peer = daemon::peer_of(fds[0]);
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(peer);
  CHECK(peer->uid == ::geteuid());
  CHECK(peer->pid == ::getpid());
}

TEST_CASE("peer: without lists everyone the socket admits may; with them only who is listed") {
  auto open = daemon::PeerPolicy::from_config(with_lists({}, {}));
  REQUIRE(open);
  CHECK_FALSE(open->restricted());
  CHECK(open->allows(nobody()));

  auto by_uid = daemon::PeerPolicy::from_config(with_lists({std::to_string(nobody().uid)}, {}));
  REQUIRE(by_uid);
  CHECK(by_uid->allows(nobody()));

  auto root_only = daemon::PeerPolicy::from_config(with_lists({"root"}, {}));
  REQUIRE(root_only);
  CHECK(root_only->restricted());
  CHECK_FALSE(root_only->allows(nobody()));
  CHECK(root_only->allows(daemon::Peer{::geteuid(), ::getegid(), 1}));  // the daemon's own account
}

TEST_CASE("peer: a listed group admits its members") {
  const group* gr = ::getgrgid(nobody().gid);
  REQUIRE(gr != nullptr);
  auto policy = daemon::PeerPolicy::from_config(with_lists({"root"}, {gr->gr_name}));
  REQUIRE(policy);
  CHECK(policy->allows(nobody()));
}

TEST_CASE("peer: an unknown account or group in the lists is a config error naming it") {
  auto u = daemon::PeerPolicy::from_config(with_lists({"no-such-account-ssb"}, {}));
  REQUIRE_FALSE(u);
  CHECK(u.error().code == Errc::config);
  CHECK_THAT(u.error().message, Catch::Contains("daemon.allowed_users names no-such-account-ssb"));
  auto g = daemon::PeerPolicy::from_config(with_lists({}, {"no-such-group-ssb"}));
  REQUIRE_FALSE(g);
  CHECK_THAT(g.error().message, Catch::Contains("daemon.allowed_groups names no-such-group-ssb"));
}
