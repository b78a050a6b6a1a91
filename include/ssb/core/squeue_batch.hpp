// Parsing of one coalesced squeue run (status.mode = "coalesced"): the
// service account's `squeue -h -j ID,ID,... -o kSqueueBatchFormat`. Pure, so
// it is unit-tested and fuzzed alone; remote::build_status_batch builds the
// command, daemon::StatusCoalescer decides what each request is told.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "ssb/core/response.hpp"

namespace ssb::core {

// Job id, owner, state, execution host, reason, expected start. '|' cannot
// occur in any of these fields (ids are digits, user and node names and
// state/reason words are identifiers, times are ISO dates), so a line with
// any other number of fields is not a line of ours and is ignored.
inline constexpr std::string_view kSqueueBatchFormat = "%i|%u|%T|%B|%r|%S";

// What squeue prints on stderr, exit status 1, when it was asked about a
// single id the controller does not know (with several ids it lists the
// known ones and says nothing about the others).
inline constexpr std::string_view kInvalidJobIdError = "slurm_load_jobs error: Invalid job id specified";

struct SqueueLine {
  std::string job_id;
  std::string owner;
  // Exactly what the wrapper's `squeue -h -j ID -o '%T %B'` would print.
  std::string wrapper_stdout;
  SlurmDetails details;
};

// One line of kSqueueBatchFormat output; nullopt when it is not one.
std::optional<SqueueLine> parse_squeue_line(std::string_view line);

// Whether squeue takes this id at all: plain digits up to 2^31-1. squeue
// (22.05, measured) refuses a larger -j id itself, before asking the
// controller ("squeue: error: Invalid job id: N", exit 1), and fails the whole
// run with it: such ids are never put into a batch (the wrapper answers them).
bool squeue_takes_id(std::string_view job_id);

struct SqueueBatch {
  enum class Kind {
    listed,      // exit 0 (or the lone unknown id): `listed` holds what squeue printed
    failed,      // Slurm's own failure ("slurm_load_jobs error: ..."), the same for every id
    unexpected,  // any other failure: nothing can be said about any one id
  };
  Kind kind = Kind::listed;
  std::map<std::string, SqueueLine> listed;
};

// What one batch run said. `failed` is answered to every request with
// squeue's exit status and stderr, as the wrapper would have passed them
// through; `unexpected` is confirmed per request with the wrapper.
SqueueBatch parse_squeue_batch(const RemoteOutcome& outcome);

// What the per-user wrapper prints for an id the controller does not know:
// the answer to a request about a job that is not the user's.
RemoteOutcome missing_job_outcome();

}  // namespace ssb::core
