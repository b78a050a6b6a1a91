// Who is on the other end of a connected Unix socket, from the kernel
// (SO_PEERCRED). The daemon asks it of every client; the client asks it of
// the daemon before it sends anything. Here, in the lowest layer, so that
// both use the one call.
#pragma once

#include <sys/types.h>

#include <optional>

namespace ssb {

struct PeerCredentials {
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  pid_t pid = 0;
};

// nullopt when the kernel does not say (not a connected Unix socket).
std::optional<PeerCredentials> peer_credentials(int fd);

}  // namespace ssb
