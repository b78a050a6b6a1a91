#include "ssb/client/submit_resolver.hpp"

#include <fmt/format.h>

#include <thread>

#include "ssb/client/executor.hpp"
#include "ssb/core/job_listing.hpp"

namespace ssb::client {

core::Response SubmitResolver::resolve(const core::Request& request, core::Response unknown) const {
  using Clock = std::chrono::steady_clock;
  // "Not found" is conclusive only once no sbatch for this token can still
  // be on its way: the exec (or the daemon's copy of it) may reach sshd a
  // moment after our connection died, and its sbatch runs for at most what
  // the bridge allows a remote command (ssh.command_timeout_s; a slower
  // sbatch would have been reported as a timeout anyway). So a miss before
  // that point is only "not yet": look again until it has passed. Lookups
  // that fail (network cut, controller down) are retried until the same
  // point plus one more connect and command time; then the answer stays
  // submit_unknown.
  //
  // The wait counts from when the loss was learned (now), not from when the
  // client sent the request: a submit may wait in the daemon's queue before
  // its exec leaves, so only "now" is certainly after that exec started.
  const auto settle = Clock::now() + std::chrono::seconds(config_.ssh.command_timeout_s);
  const auto give_up = settle + std::chrono::seconds(config_.ssh.connect_timeout_s + config_.ssh.command_timeout_s);
  core::Request lookup;
  lookup.op = core::Op::jobs;
  // Any tag: the daemon that tagged the script may have another submit.tag.
  lookup.tag = core::kAnyTag;
  std::string last_failure = "no lookup finished";
  while (true) {
    auto listed = DirectExecutor(config_).execute(lookup);
    if (listed.ok() && listed.listing && !listed.listing->visible) {
      unknown.error->message +=
          fmt::format("; it cannot be looked up by its token {}: {}", request.token, listed.listing->why);
      return unknown;
    }
    if (listed.ok() && listed.listing) {
      if (const auto* job = listed.listing->find(request.token)) {
        core::Response r = core::from_error(request, Error{});
        r.error.reset();
        r.job_id = job->job_id;
        r.resolved = "by_token";
        r.path = unknown.path;
        return r;
      }
      if (Clock::now() >= settle) {
        return core::from_error(
            request, Error{Errc::remote_failed,
                           fmt::format("submit for user {} did not start: its outcome was lost ({}), and Slurm holds "
                                       "no job with its token {} (looked up as the service account after every "
                                       "sbatch for it had ended); it is safe to submit again",
                                       request.user, unknown.error->message, request.token)});
      }
    } else if (listed.error) {
      last_failure = listed.error->message;
    }
    if (Clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  unknown.error->message +=
      fmt::format("; looking its token {} up in Slurm failed until the deadline: {}", request.token, last_failure);
  return unknown;
}

}  // namespace ssb::client
