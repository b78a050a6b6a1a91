#include "ssb/daemon/peer.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace ssb::daemon {

namespace {

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }

}  // namespace

std::optional<Peer> peer_of(int fd) { return peer_credentials(fd); }

namespace {

// Names or numbers to ids; `lookup` gives the id of a name, or nothing.
template <class Id, class Lookup>
Status resolve(const std::vector<std::string>& names, const char* key, const char* what, Lookup lookup,
               std::set<Id>& out) {
  for (const auto& name : names) {
    if (all_digits(name)) {
      out.insert(static_cast<Id>(std::strtoul(name.c_str(), nullptr, 10)));
      continue;
    }
    auto id = lookup(name);
    if (!id) {
      return make_error(Errc::config, fmt::format("{} names {}, which is not {} on this host", key, name, what));
    }
    out.insert(*id);
  }
  return {};
}

}  // namespace

Result<PeerPolicy> PeerPolicy::from_config(const config::Config& config) {
  PeerPolicy p;
  const auto& d = config.daemon;
  p.restricted_ = !d.allowed_users.empty() || !d.allowed_groups.empty();
  auto uid_of = [](const std::string& name) -> std::optional<uid_t> {
    const passwd* pw = ::getpwnam(name.c_str());
    return pw ? std::optional<uid_t>(pw->pw_uid) : std::nullopt;
  };
  auto gid_of = [](const std::string& name) -> std::optional<gid_t> {
    const group* gr = ::getgrnam(name.c_str());
    return gr ? std::optional<gid_t>(gr->gr_gid) : std::nullopt;
  };
  if (auto st = resolve<uid_t>(d.allowed_users, "daemon.allowed_users", "an account", uid_of, p.uids_); !st) {
    return st.error();
  }
  if (auto st = resolve<gid_t>(d.allowed_groups, "daemon.allowed_groups", "a group", gid_of, p.gids_); !st) {
    return st.error();
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
