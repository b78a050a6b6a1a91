// Builds the exact command line and stdin the login host receives. Pure:
// no I/O, so it is unit-tested and fuzzed on its own.
//
// Every variable part of a remote command goes through sh_quote(); nothing
// else concatenates user-influenced text into a shell command.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"

namespace ssb::remote {

// POSIX single-quote quoting: the result, read by any POSIX shell, is one
// word equal to `text`. Embedded single quotes become '\''.
std::string sh_quote(std::string_view text);

struct RemoteCommand {
  std::string command;     // what the exec request carries; run by the service account's login shell
  std::string stdin_data;  // bytes written to the channel before EOF
  std::vector<std::pair<std::string, std::string>> env_requests;  // SSH "env" requests (env.method = setenv)
};

// Name of the wrapper script for an operation ("slurmspawner_squeue").
std::string_view wrapper_name(core::Op op);
std::string wrapper_path(const config::Config& config, core::Op op);

// The command for a validated submit, query, cancel or explain request
// (explain: build_explain).
RemoteCommand build(const core::Request& request, const config::Config& config);

// status.mode = "coalesced": the service account's own squeue (no sudo)
// for these job ids, in core::kSqueueBatchFormat. Every id must be a plain
// job number (digits, no cluster suffix: those are never coalesced); any
// other is refused with Errc::invalid_job_id, and nothing is built.
Result<RemoteCommand> build_status_batch(const config::Config& config, const std::vector<std::string>& job_ids);

// `check`, coalesced mode: what the service account may see of other
// users' jobs: slurm.conf's PrivateData, and its own AdminLevel.
RemoteCommand build_visibility_probe(const config::Config& config);
// explain, as the service account (no sudo: the reference sudoers allows
// only the three wrappers): `scontrol -o show job N`, and when that fails
// (slurmctld forgot the job) `sacct -n -P -X -j N -o
// JobID,User,State,ExitCode,Reason,Start`; `-M CLUSTER` when the id names a
// cluster. Each tool's output (stderr merged) follows its marker line
// (core::kExplain*Marker); the exit status is scontrol's success or sacct's.
RemoteCommand build_explain(const core::Request& request, const config::Config& config);

// `jobs`, as the service account: the visibility probe's two lines, the
// marker core::kJobListingMarker, then `status.squeue -h -a -t all -o
// core::kJobListingFormat` (parsed by core::parse_job_listing).
RemoteCommand build_job_listing(const config::Config& config);

// `check`: lists which wrappers are missing or not executable for the
// service account; prints one "missing PATH" line per problem.
RemoteCommand build_wrapper_probe(const config::Config& config);

// `check --user`: asks sudo, without running anything or prompting,
// whether the service account may run each wrapper as `user`.
RemoteCommand build_sudo_probe(const config::Config& config, const std::string& user);

// The stdin framing of env.method = "stdin": each variable as NAME=VALUE
// followed by NUL, then an empty record (one more NUL).
std::string encode_env_records(const std::vector<std::pair<std::string, std::string>>& vars);

}  // namespace ssb::remote
