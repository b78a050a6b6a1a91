// Who is on the other end of a client connection, from the kernel
// (SO_PEERCRED): logged with each request and checked against
// daemon.allowed_users / allowed_groups.
#pragma once

#include <sys/types.h>

#include <optional>
#include <set>
#include <string>

#include "ssb/config/config.hpp"
#include "ssb/util/peer_credentials.hpp"
#include "ssb/util/result.hpp"

namespace ssb::daemon {

using Peer = PeerCredentials;

// The credentials of the process that connected on `fd`; nullopt when the
// kernel does not say (not a Unix socket).
std::optional<Peer> peer_of(int fd);

// daemon.allowed_users / allowed_groups, resolved once at start.
class PeerPolicy {
 public:
  // Resolves names to ids; an unknown name is a config error naming it.
  static Result<PeerPolicy> from_config(const config::Config& config);
  // Empty lists: everyone the socket's mode admits.
  bool restricted() const { return restricted_; }
  // The daemon's own account is always allowed; then the listed uids, then
  // the peer account's primary and supplementary groups.
  bool allows(const Peer& peer) const;

 private:
  bool restricted_ = false;
  std::set<uid_t> uids_;
  std::set<gid_t> gids_;
};

}  // namespace ssb::daemon
