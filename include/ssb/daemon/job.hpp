// One request on its way through the daemon: created by a Connection on the
// io thread, queued by the Pool, run by a Worker, answered through `done`.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"
#include "ssb/remote/command.hpp"

namespace ssb::daemon {

using Clock = std::chrono::steady_clock;

struct Job {
  core::Request request;
  std::string log_id;                        // request id as logged
  std::string peer_uid = "-";                // the client's uid (SO_PEERCRED), as logged
  std::function<void(core::Response)> done;  // called exactly once
  Clock::time_point enqueued{};
  Clock::time_point queue_deadline{};
  bool retried = false;  // query/cancel: already re-run once after a transport failure
  // A retry must run on a connection opened after the failure, not on a
  // sibling that may have died in the same outage.
  Clock::time_point needs_session_after{};
  // The daemon's own work (a coalesced status batch, CoalescedStatus): runs
  // this command instead of the request's wrapper, and is neither counted
  // in the request statistics nor logged as a request.
  std::optional<remote::RemoteCommand> command;
  bool internal = false;
  // A coalesced query's confirmation: runs the per-user wrapper, and must
  // never go back to the coalescer.
  bool per_user = false;
};

}  // namespace ssb::daemon
