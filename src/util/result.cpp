#include "ssb/util/result.hpp"

#include <array>

namespace ssb {

namespace {
// The one table of error codes: spelling, CLI exit status, whether a query
// that failed with it says nothing about the job (batchspawner must keep
// polling), and its meaning. `config --error-codes` prints it, and the
// python_shim's tests check their copies against that output.
constexpr std::array<ErrcInfo, 18> kCodes{{
    {Errc::usage, "usage", 2, false, "the command line is wrong; nothing was run"},
    {Errc::config, "config", 2, true,
     "the configuration is invalid, or the login host refused something it asks for (e.g. an env request without "
     "AcceptEnv)"},
    {Errc::invalid_user, "invalid_user", 2, false, "the user name failed validation; nothing was run"},
    {Errc::invalid_job_id, "invalid_job_id", 2, false, "the job id failed validation; nothing was run"},
    {Errc::invalid_env, "invalid_env", 2, false, "a forwarded variable failed validation; nothing was run"},
    {Errc::script_too_large, "script_too_large", 2, false, "the job script exceeds limits.max_script_bytes"},
    {Errc::bad_request, "bad_request", 2, false, "the request line is not a valid protocol request"},
    {Errc::transport, "transport", 255, true, "the SSH connection failed before a result"},
    {Errc::timeout, "timeout", 255, true, "no channel in time, or the command exceeded ssh.command_timeout_s"},
    {Errc::host_key, "host_key", 255, true, "the login host's key is unknown or changed"},
    {Errc::auth, "auth", 255, true, "the login host refused our key, or sudo refused the wrapper"},
    {Errc::daemon_unavailable, "daemon_unavailable", 255, true, "--mode daemon and no daemon answers"},
    {Errc::overloaded, "overloaded", 255, true, "more than pool.queue_size requests already wait"},
    {Errc::submit_unknown, "submit_unknown", 255, false,
     "a submit may have reached the login host and was not re-sent; look before submitting again"},
    {Errc::remote_failed, "remote_failed", 1, false, "the wrapper ran and exited non-zero (its output is passed on)"},
    {Errc::not_found, "not_found", 1, false,
     "explain: Slurm knows no such job of this user (never existed, forgotten, or another user's)"},
    {Errc::shutting_down, "shutting_down", 255, true, "the daemon is stopping"},
    {Errc::internal, "internal", 255, true, "a bug of the bridge"},
}};

const ErrcInfo& info_for(Errc code) {
  for (const auto& info : kCodes) {
    if (info.code == code) return info;
  }
  return kCodes.back();  // internal
}
}  // namespace

std::span<const ErrcInfo> all_error_codes() { return kCodes; }

std::string_view to_string(Errc code) { return info_for(code).name; }

bool errc_from_string(std::string_view text, Errc& out) {
  for (const auto& info : kCodes) {
    if (info.name == text) {
      out = info.code;
      return true;
    }
  }
  return false;
}

int exit_status_for(Errc code) { return info_for(code).exit_status; }

bool leaves_state_unknown(Errc code) { return info_for(code).state_unknown; }

}  // namespace ssb
