// The result of one request, in the single shape shared by the CLI's
// --json output, the daemon protocol and the text-mode printer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssb/core/explain.hpp"
#include "ssb/core/job_listing.hpp"
#include "ssb/core/request.hpp"
#include "ssb/util/result.hpp"

namespace ssb::core {

// What the wrapper did on the login host.
struct RemoteOutcome {
  int exit_status = 0;
  std::string out;
  std::string err;
};

// What a coalesced squeue line says about a job beyond the wrapper's
// "STATE HOST" (JSON only: the "slurm" object). Absent values are null.
struct SlurmDetails {
  std::string state;                          // %T
  std::optional<std::string> node;            // %B, unless "n/a" (not running yet)
  std::optional<std::string> reason;          // %r, unless "None"
  std::optional<std::string> expected_start;  // %S as Slurm prints it, unless N/A, Unknown, None
};

struct Response {
  Op op = Op::query;
  std::string user;
  std::string job_id;
  std::optional<std::string> state;  // query: first word of the wrapper's output
  std::optional<std::string> host;   // query: the execution host, when given
  std::optional<RemoteOutcome> remote;
  std::optional<JobExplanation> job;  // explain: what Slurm knows (the request's user's own job only)
  std::optional<Error> error;         // unset: ok
  std::int64_t elapsed_ms = 0;
  std::string path;  // "direct" or "daemon"
  // Lines the bridge's own remote snippet wrote to stderr, prefixed
  // kNoticePrefix (e.g. the hub's HOME differs from the passwd entry's). They
  // stay in remote->err too; the daemon logs them.
  std::vector<std::string> notices;
  // query, coalesced mode: set when the answer came from a batch squeue line
  // for a job the user owns; never in per_user mode.
  std::optional<SlurmDetails> slurm;
  // explain: why the job was answered as unknown (another user's job, or
  // what scontrol and sacct said). For the daemon log and the CLI's stderr
  // only; never serialised, so the answer itself does not tell a foreign
  // job from an unknown one.
  std::string audit;
  // jobs: the tagged jobs the service account sees.
  std::optional<JobListing> listing;
  // submit: the exactly-once token the job carries (its comment
  // ssb:<tag>:<token>); and, when the outcome was lost and then looked up
  // in Slurm by that token, how it was resolved ("by_token").
  std::string token;
  std::string resolved;

  bool ok() const { return !error.has_value(); }
};

inline constexpr std::string_view kNoticePrefix = "slurm-ssh-bridge: notice: ";

// Builds the response for a request whose wrapper ran to completion: parses
// the job id (submit) or state and host (query) and turns a non-zero exit
// status into an Errc::remote_failed error that keeps the output. explain:
// parses scontrol/sacct output (core::explain_from_output) into `job`, or
// an error (not_found, remote_failed); its raw output is not kept.
Response from_remote(const Request& request, RemoteOutcome outcome);

// Builds the response for a request that failed before the wrapper's
// result was known.
Response from_error(const Request& request, Error error);

// batchspawner's rule for submit output: the last non-empty line, text
// before ';' (cluster), must be an integer.
std::optional<std::string> parse_submit_output(const std::string& out);

struct QueryState {
  std::string state;
  std::optional<std::string> host;
};
// "RUNNING node1" -> {RUNNING, node1}; "PENDING (None)" style tails are kept
// as the host only when they look like a host name.
std::optional<QueryState> parse_query_output(const std::string& out);

}  // namespace ssb::core
