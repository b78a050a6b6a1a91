#include "ssb/daemon/peer.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace ssb::daemon {

namespace {

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

}  // namespace

std::optional<Peer> peer_of(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) return std::nullopt;
  return Peer{cred.uid, cred.gid, cred.pid};
}

Result<PeerPolicy> PeerPolicy::from_config(const config::Config& config) {
  PeerPolicy p;
  const auto& d = config.daemon;
  p.restricted_ = !d.allowed_users.empty() || !d.allowed_groups.empty();
  for (const auto& name : d.allowed_users) {
    if (all_digits(name)) {
      p.uids_.insert(static_cast<uid_t>(std::strtoul(name.c_str(), nullptr, 10)));
      continue;
    }
    const passwd* pw = ::getpwnam(name.c_str());
    if (!pw) {
      return make_error(Errc::config,
                        fmt::format("daemon.allowed_users names {}, which is not an account on this host", name));
    }
    p.uids_.insert(pw->pw_uid);
  }
  for (const auto& name : d.allowed_groups) {
    if (all_digits(name)) {
      p.gids_.insert(static_cast<gid_t>(std::strtoul(name.c_str(), nullptr, 10)));
      continue;
    }
    const group* gr = ::getgrnam(name.c_str());
    if (!gr) {
      return make_error(Errc::config,
                        fmt::format("daemon.allowed_groups names {}, which is not a group on this host", name));
    }
    p.gids_.insert(gr->gr_gid);
  }
  return p;
}

bool PeerPolicy::allows(const Peer& peer) const {
  if (!restricted_ || peer.uid == ::geteuid() || uids_.count(peer.uid) > 0) return true;
  if (gids_.count(peer.gid) > 0) return true;
  // Supplementary groups belong to the account, not the socket: look the
  // account up (a uid without a passwd entry has only its primary group).
  const passwd* pw = ::getpwuid(peer.uid);
  if (!pw) return false;
  int n = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(n));
  if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<std::size_t>(n));
    if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) return false;
  }
  groups.resize(static_cast<std::size_t>(n));
  for (gid_t g : groups) {
    if (gids_.count(g) > 0) return true;
  }
  return false;
}

}  // namespace ssb::daemon
