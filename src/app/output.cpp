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
