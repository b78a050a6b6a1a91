// A listening socket handed over by systemd (socket activation: the
// LISTEN_PID / LISTEN_FDS protocol of sd_listen_fds(3), without libsystemd).
//
// Why: with slurm-ssh-bridge.socket, systemd owns the socket, so a
// `systemctl restart` leaves no moment without a listener. Clients that
// connect while the old daemon drains wait in the socket's backlog and are
// served by the new one, instead of failing with daemon_unavailable.
#pragma once

#include <optional>
#include <string>

#include "ssb/util/result.hpp"

namespace ssb::daemon {

// The first passed descriptor (3) when the environment says systemd passed
// sockets to this process; std::nullopt when it did not. An error when it
// did but the socket is not a listening Unix stream socket bound to
// `expected_path` (daemon.socket and the .socket unit's ListenStream= must
// agree). Clears LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES either way, so
// nothing started later believes the sockets are its own.
Result<std::optional<int>> inherited_listener(const std::string& expected_path);

}  // namespace ssb::daemon
