// Exactly-once submit: turns a submit whose outcome was lost
// (Errc::submit_unknown) into what Slurm knows, by looking its token up in
// the `jobs` listing (the service account's own squeue), over a direct SSH
// connection, so it works whether or not a daemon is still there.
//   found              -> that job id, once, as a success ("resolved": "by_token")
//   not found, settled -> a plain failure (the job never started; safe to resubmit)
//   cannot be learned  -> submit_unknown, as before, saying why
#pragma once

#include <chrono>

#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"

namespace ssb::client {

class SubmitResolver {
 public:
  explicit SubmitResolver(const config::Config& config) : config_(config) {}
  // `unknown` is the submit_unknown response, just learned: the wait before
  // "not found" is conclusive counts from this call.
  core::Response resolve(const core::Request& request, core::Response unknown) const;

 private:
  const config::Config& config_;
};

}  // namespace ssb::client
