#include <fmt/format.h>

#include <chrono>

#include "ssb/client/executor.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/exec.hpp"
#include "ssb/ssh/session.hpp"

namespace ssb::client {

Error classify_submit_failure(const core::Request& request, Error error, bool maybe_started) {
  if (request.op != core::Op::submit || !maybe_started) return error;
  if (error.code != Errc::transport && error.code != Errc::timeout) return error;
  return Error{Errc::submit_unknown,
               fmt::format("submit for user {}: outcome unknown, the job may or may not have been submitted ({}); it "
                           "was not re-sent. Check `squeue -u {}` on the login host before submitting again",
                           request.user, error.message, request.user)};
}

core::Response DirectExecutor::execute(const core::Request& request) {
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  auto finish = [&](core::Response r) {
    r.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start).count();
    r.path = "direct";
    return r;
  };

  auto endpoint = ssh::Endpoint::from_config(config_);
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint, warnings);
  if (!key) return finish(core::from_error(request, key.error()));
  auto session = ssh::Session::open(endpoint, *key);
  if (!session) return finish(core::from_error(request, session.error()));

  bool maybe_started = false;
  auto outcome = ssh::run_to_completion(**session, remote::build(request, config_),
                                        std::chrono::seconds(config_.ssh.command_timeout_s),
                                        static_cast<std::size_t>(config_.limits.max_output_bytes), maybe_started);
  if (!outcome) return finish(core::from_error(request, classify_submit_failure(request, outcome.error(), maybe_started)));
  return finish(core::from_remote(request, std::move(*outcome)));
}

}  // namespace ssb::client
