// `explain`: what Slurm knows about one job (state, exit code, reason, log
// path, expected start), read from `scontrol -o show job` or, once slurmctld
// has forgotten the job (MinJobAge after it ended), from `sacct`. Pure: the
// remote command is remote::build_explain; this parses what it printed and
// decides whether the requesting user may see it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "ssb/util/result.hpp"

namespace ssb::core {

struct JobExplanation {
  std::string state;                          // "FAILED", "PENDING", "CANCELLED" ("CANCELLED by 0" cut)
  std::optional<int> exit_code;               // ended jobs only: ExitCode "1:0" -> 1
  std::optional<int> signal;                  // ended jobs only: ExitCode "0:9" -> 9 (exit_code then unset)
  std::optional<std::string> reason;          // Slurm's Reason, unset for "None"
  std::optional<std::string> stdout_path;     // scontrol's StdOut (Slurm has expanded %j etc.)
  std::optional<std::string> expected_start;  // PENDING only: StartTime when Slurm has planned one
  std::string source;                         // "scontrol" or "sacct"
  std::string owner;                          // the job's user name (not serialised: checked, then dropped)
};

// The line of text `explain` prints: "FAILED exit 1 (NonZeroExitCode), log /home/a/x.log",
// "PENDING (Resources), expected start 2026-12-02T10:32:00".
std::string describe(const JobExplanation& job);

// The marker lines build_explain's command prints before each tool's
// output, so the parser knows which tool answered.
inline constexpr std::string_view kExplainScontrolMarker = "slurm-ssh-bridge-explain: scontrol";
inline constexpr std::string_view kExplainSacctMarker = "slurm-ssh-bridge-explain: sacct";

// Slurm's ExitCode "E:S": exit status E, or signal S when S is not 0.
// Returns false for anything else.
bool parse_exit_code(std::string_view text, std::optional<int>& exit_code, std::optional<int>& signal);

// One `scontrol -o show job` line; unset when it holds no JobState.
std::optional<JobExplanation> parse_scontrol_job(std::string_view line);

// sacct -n -P -X -o JobID,User,State,ExitCode,Reason,Start: the first line
// whose JobID is `job_number`; unset when there is none.
std::optional<JobExplanation> parse_sacct_job(std::string_view output, std::string_view job_number);

// What the explain command printed (`out`, stderr merged into it) and its
// exit status, for the job `job_id` asked about by `user`. A job of another
// user gives the same Errc::not_found as an unknown job; `audit` then says
// whose it was (for the daemon log / stderr, never for the response).
Result<JobExplanation> explain_from_output(std::string_view job_id, std::string_view user, int exit_status,
                                           std::string_view out, std::string& audit);

}  // namespace ssb::core
