// The policy of coalesced status (status.mode = "coalesced"): which query
// waits for which squeue run, when the next run may start, and what each
// request is told about its job. No threads, no SSH: the caller
// (CoalescedStatus) passes the time in and carries out the decisions, so
// every rule is unit-tested without sshd. Thread-safe (one mutex); nothing
// is called back while it is held.
//
// The rules:
// - Fresh: a request is answered only from a run that started after it
//   arrived. start_round() takes exactly the requests waiting at that moment;
//   requests arriving while a round is in flight wait for the next one.
// - Spaced: the next round starts when the previous round has finished and
//   `window` has passed since it started, so the service account's squeue
//   RPCs stay at most one round per window, whatever the number of users.
// - A round asks about each distinct id once, in batches of at most
//   `max_ids` ids (the command line's length).
// - Authorised: a listed job is reported to a request only when its Slurm
//   owner is the request's user; any other user is told what a missing job
//   gives (core::missing_job_outcome) and the refusal is counted.
// - Never gone from the batch alone: an id the run did not list is
//   confirmed with the per-user wrapper for that one request. When a
//   confirmation finds a job (the service account cannot see other users'
//   jobs), coalescing stops for good: every later query is per-user.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ssb/core/response.hpp"
#include "ssb/daemon/job.hpp"

namespace ssb::daemon {

class StatusCoalescer {
 public:
  // `enabled`: status.mode = "coalesced" (when false, accepts() is always
  // false and status() reports per_user).
  StatusCoalescer(bool enabled, std::chrono::milliseconds window, std::size_t max_ids);

  // Whether this request is to be coalesced now: a query for a plain job
  // number while the effective mode is coalesced. Submit and cancel never
  // are; neither are "ID;CLUSTER" ids (the wrapper's squeue has no -M).
  bool accepts(const core::Request& request) const;

  // A validated query arrives at `now`.
  void add(std::shared_ptr<Job> job, Clock::time_point now);

  // Requests held: waiting for a round or in a batch not finished yet.
  std::size_t held() const;

  // When the next round may start; nullopt while nothing waits or a round
  // is in flight.
  std::optional<Clock::time_point> next_round() const;

  struct Batch {
    std::uint64_t id = 0;
    std::vector<std::string> job_ids;  // distinct, at most max_ids
  };
  // Starts the round due at `now`: every request waiting at this moment,
  // its distinct ids split into batches. Empty when no round is due.
  std::vector<Batch> start_round(Clock::time_point now);

  struct Decision {
    enum class Kind { answer, confirm };
    Kind kind = Kind::answer;
    std::shared_ptr<Job> job;
    core::Response response;  // Kind::answer
    bool refused = false;     // answered as missing: the job is someone else's
    std::string owner;        // refused: whose it is (for the log)
  };
  // A batch's result: squeue's outcome, or the error that kept it from
  // finishing (transport, timeout, overloaded, shutting down). Every request
  // in the batch gets a decision; the round ends with its last batch.
  std::vector<Decision> finish_batch(std::uint64_t batch_id, const Result<core::RemoteOutcome>& result);

  // A confirmation's answer (the per-user wrapper's, for an id the batch
  // did not list). Returns true once: for the first confirmation that found
  // a job the batch missed, which switches the effective mode to per_user;
  // the caller logs the one warning.
  bool confirmed(const core::Request& request, const core::Response& response);

  // Shutdown: the requests not yet in a batch (each still needs an answer).
  std::vector<std::shared_ptr<Job>> take_waiting();

  bool coalescing() const;
  std::string why() const;  // why coalescing stopped; empty while it runs
  // {"mode_configured","mode","why"?,"window_ms","batches","ids_queried",
  //  "confirmations","refused"}
  nlohmann::json status() const;

 private:
  struct InFlight {
    std::vector<std::string> job_ids;
    std::vector<std::shared_ptr<Job>> jobs;
  };

  const bool enabled_;
  const std::chrono::milliseconds window_;
  const std::size_t max_ids_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Job>> waiting_;
  std::map<std::uint64_t, InFlight> in_flight_;
  std::uint64_t next_batch_id_ = 1;
  std::optional<Clock::time_point> last_start_;
  bool fell_back_ = false;
  std::string why_;
  std::uint64_t batches_ = 0;
  std::uint64_t ids_queried_ = 0;
  std::uint64_t confirmations_ = 0;
  std::uint64_t refused_ = 0;
};

}  // namespace ssb::daemon
