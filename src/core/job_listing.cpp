#include "ssb/core/job_listing.hpp"

#include <fmt/format.h>

#include <sstream>

#include "ssb/core/submit_token.hpp"
#include "ssb/core/validate.hpp"

namespace ssb::core {

const ListedJob* JobListing::find(const std::string& token) const {
  for (const auto& j : jobs) {
    if (j.token == token) return &j;
  }
  return nullptr;
}

bool sees_all_jobs(const std::string& private_data, const std::string& admin_level) {
  const bool hides_jobs = private_data.find("jobs") != std::string::npos;
  return !hides_jobs || admin_level == "Operator" || admin_level == "Administrator";
}

Result<JobListing> parse_job_listing(int exit_status, const std::string& out, const std::string& err,
                                     const std::string& account, const std::string& tag) {
  std::istringstream in(out);
  std::string line, private_data, admin_level;
  bool seen_marker = false;
  JobListing listing;
  listing.tag = tag;
  const std::string prefix = fmt::format("ssb:{}:", tag);
  while (std::getline(in, line)) {
    if (!seen_marker) {
      if (line.rfind("privatedata=", 0) == 0) private_data = line.substr(12);
      if (line.rfind("adminlevel=", 0) == 0) admin_level = line.substr(11);
      if (line == kJobListingMarker) seen_marker = true;
      continue;
    }
    // "ID USER STATE COMMENT"; other hubs' and users' own comments are skipped.
    std::istringstream words(line);
    ListedJob job;
    std::string comment;
    if (!(words >> job.job_id >> job.user >> job.state >> comment)) continue;
    if (tag == kAnyTag) {
      // ssb:<tag>:<token>, any tag: the token is what follows the last ':'.
      const auto colon = comment.rfind(':');
      if (comment.rfind("ssb:", 0) != 0 || colon == std::string::npos || colon < 4) continue;
      job.token = comment.substr(colon + 1);
    } else {
      if (comment.rfind(prefix, 0) != 0) continue;
      job.token = comment.substr(prefix.size());
    }
    if (!valid_token(job.token)) continue;
    listing.jobs.push_back(std::move(job));
  }
  if (exit_status != 0 || !seen_marker) {
    std::string first = err.substr(0, err.find('\n'));
    return make_error(Errc::remote_failed,
                      fmt::format("listing the jobs tagged ssb:{} as {} failed (exit status {}){}{}; is slurmctld "
                                  "up, and are scontrol and status.squeue right?",
                                  tag, account, exit_status, first.empty() ? "" : ": ", printable(first)));
  }
  listing.visible = sees_all_jobs(private_data, admin_level);
  if (!listing.visible) {
    listing.jobs.clear();
    listing.why = fmt::format(
        "PrivateData = {} hides other users' jobs from {} (AdminLevel: {}): it cannot list this hub's jobs, so an "
        "empty list means nothing. Give {} an operator role (`sacctmgr modify user {} set adminlevel=Operator`) or "
        "drop \"jobs\" from PrivateData",
        private_data, account, admin_level.empty() ? "none or unknown" : admin_level, account, account);
  }
  return listing;
}

}  // namespace ssb::core
