// The files the bridge trusts (its configuration, the identity file,
// known_hosts) are checked as sshd's StrictModes checks its own: whoever
// may write one of them can point the bridge at another host, key or
// socket, or vouch for a man in the middle.
#pragma once

#include <string>
#include <string_view>

#include "ssb/util/result.hpp"

namespace ssb {

// Set to "1", it turns the refusal into a warning on stderr. For test
// suites that cannot give their files a safe owner; never for a site.
inline constexpr const char* kTestingInsecureFilesEnv = "SLURM_SSH_BRIDGE_TESTING_INSECURE_FILES";

// Refuses (with `code`) a file owned by anyone but root or the effective
// uid, or writable by group or others, naming the file as `what` (e.g.
// "known_hosts file /etc/x (ssh.known_hosts)"), its owner or mode and the
// command that fixes it. A file that cannot be stat'ed passes: reading it
// is where that failure is reported, with its own message.
Status check_trusted_file(const std::string& path, std::string_view what, Errc code);

}  // namespace ssb
