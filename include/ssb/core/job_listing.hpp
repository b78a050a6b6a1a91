// `jobs`: the jobs Slurm knows that carry this hub's submit comment
// (ssb:<submit.tag>:<token>), from one run of the service account's own
// squeue, and whether that account can see other users' jobs at all
// (PrivateData): when it cannot, the listing says nothing and must not be
// read as "no such job". Pure: parses the output of remote::build_job_listing.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "ssb/util/result.hpp"

namespace ssb::core {

inline constexpr std::string_view kJobListingMarker = "--- ssb squeue";
// squeue -o: job id, user, state, comment (the comment last: it may hold spaces).
inline constexpr std::string_view kJobListingFormat = "%i %u %T %k";

struct ListedJob {
  std::string job_id;
  std::string user;
  std::string state;
  std::string token;
};

struct JobListing {
  std::string tag;
  bool visible = false;
  std::string why;  // when not visible: what hides the jobs and what to do
  std::vector<ListedJob> jobs;

  // The job carrying `token`, if listed.
  const ListedJob* find(const std::string& token) const;
};

// Whether the service account sees every user's jobs, given slurm.conf's
// PrivateData and its AdminLevel (empty when unknown).
bool sees_all_jobs(const std::string& private_data, const std::string& admin_level);

// Parses the listing command's output. A failure of scontrol or squeue (the
// controller did not answer) is Errc::remote_failed with its first line:
// then nothing is known.
// As `tag`: every ssb:<any tag>:<token> job. A token is unique on its own
// (128 random bits), so a lost submit is looked up this way: the daemon that
// tagged its script may run with another submit.tag than the CLI asking.
// Not a valid submit.tag ([A-Za-z0-9._-]), so no configuration can mean it.
inline constexpr const char* kAnyTag = "*";

Result<JobListing> parse_job_listing(int exit_status, const std::string& out, const std::string& err,
                                     const std::string& account, const std::string& tag);

}  // namespace ssb::core
