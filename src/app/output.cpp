#include "ssb/app/output.hpp"

#include <fmt/format.h>

#include "ssb/protocol/json.hpp"

namespace ssb::app {

std::string failure_line(const Error& error) {
  // One line: a message never spans lines, so batchspawner's regexes and
  // log readers see it whole.
  std::string msg = error.message;
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return fmt::format("slurm-ssh-bridge: {}: {}\n", to_string(error.code), msg);
}

int print_response(const core::Response& r, bool json, std::ostream& out, std::ostream& err) {
  if (!r.audit.empty()) {
    // explain on the direct path: why the answer is "unknown" goes to the
    // operator's stderr (the daemon logs it instead), never into the answer.
    err << core::kNoticePrefix << r.audit << '\n';
  }
  if (json) {
    out << protocol::to_line(protocol::response_to_json(r)) << '\n';
    out.flush();
    if (r.remote) return r.remote->exit_status;
    return r.ok() ? 0 : exit_status_for(r.error->code);
  }
  if (r.remote) {
    out << r.remote->out;
    err << r.remote->err;
    out.flush();
    err.flush();
    return r.remote->exit_status;
  }
  if (r.listing) {
    // One line per job; an empty list from an account that cannot see
    // other users' jobs is no answer, so it fails (the JSON says visible).
    for (const auto& j : r.listing->jobs) out << fmt::format("{} {} {} {}\n", j.job_id, j.user, j.state, j.token);
    out.flush();
    if (r.listing->visible) return 0;
    err << failure_line(Error{Errc::remote_failed, r.listing->why});
    return exit_status_for(Errc::remote_failed);
  }
  if (r.ok() && r.op == core::Op::submit && !r.remote) {
    // A submit resolved by its token after its outcome was lost: the job id,
    // as the wrapper would have printed it (batchspawner parses stdout).
    out << r.job_id << '\n';
    err << core::kNoticePrefix
        << fmt::format("the submit's outcome was lost; Slurm holds job {} with its token {}, reported once\n", r.job_id,
                       r.token);
    out.flush();
    return 0;
  }
  if (r.job) {
    out << core::describe(*r.job) << '\n';
    out.flush();
    return 0;
  }
  if (r.error) {
    err << failure_line(*r.error);
    err.flush();
    return exit_status_for(r.error->code);
  }
  return 0;
}

int print_failure(const Error& error, bool json, std::ostream& out, std::ostream& err) {
  if (json) {
    out << protocol::to_line(nlohmann::json{
               {"ok", false}, {"error", {{"code", std::string(to_string(error.code))}, {"message", error.message}}}})
        << '\n';
  } else {
    err << failure_line(error);
  }
  return exit_status_for(error.code);
}

}  // namespace ssb::app
