// Something that turns a validated Request into a Response: the direct
// path (one SSH connection per call) or the daemon (pooled connections).
#pragma once

#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"

namespace ssb::client {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual core::Response execute(const core::Request& request) = 0;
};

// Connects once, runs the wrapper, disconnects. Submit is never re-sent;
// an outcome lost after the exec request was sent is reported as
// Errc::submit_unknown (core::classify_submit_failure).
class DirectExecutor final : public Executor {
 public:
  explicit DirectExecutor(const config::Config& config) : config_(config) {}
  core::Response execute(const core::Request& request) override;

 private:
  const config::Config& config_;
};

}  // namespace ssb::client
