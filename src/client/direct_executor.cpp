#include <chrono>

#include "ssb/client/executor.hpp"
#include "ssb/client/submit_resolver.hpp"
#include "ssb/core/submit_rule.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/exec.hpp"
#include "ssb/ssh/session.hpp"

namespace ssb::client {

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
  if (!outcome) {
    auto failed = core::from_error(request, core::classify_submit_failure(request, outcome.error(), maybe_started));
    if (failed.error->code == Errc::submit_unknown) {
      failed.path = "direct";
      return finish(SubmitResolver(config_).resolve(request, std::move(failed)));
    }
    return finish(std::move(failed));
  }
  return finish(core::from_remote(request, std::move(*outcome)));
}

}  // namespace ssb::client
