#include "ssb/core/response.hpp"

#include <fmt/format.h>

#include <sstream>
#include <vector>

#include "ssb/core/submit_token.hpp"
#include "ssb/core/validate.hpp"

namespace ssb::core {

namespace {

std::string first_line(const std::string& text) {
  auto start = text.find_first_not_of(" \t\r\n");
  if (start == std::string::npos) return {};
  auto end = text.find('\n', start);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool host_like(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The response skeleton every outcome starts from. A user or job id that
// failed validation is not repeated (its error shows it, bounded): the
// answer to a 1 MB user name is not a megabyte.
Response for_request(const Request& request) {
  Response r;
  r.op = request.op;
  if (validate_user(request.user)) r.user = request.user;
  if (validate_job_id(request.job_id)) r.job_id = request.job_id;
  if (valid_token(request.token)) r.token = request.token;
  return r;
}

}  // namespace

std::optional<std::string> parse_submit_output(const std::string& out) {
  std::istringstream in(out);
  std::string line, last;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    auto e = line.find_last_not_of(" \t\r");
    last = line.substr(b, e - b + 1);
  }
  auto semi = last.find(';');
  std::string number = last.substr(0, semi);
  if (validate_job_id(number)) return last;
  return std::nullopt;
}

std::optional<QueryState> parse_query_output(const std::string& out) {
  std::istringstream in(first_line(out));
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  if (words.empty()) return std::nullopt;
  QueryState qs{words.front(), std::nullopt};
  for (char c : qs.state) {
    if (!((c >= 'A' && c <= 'Z') || c == '_')) return std::nullopt;
  }
  if (words.size() >= 2 && host_like(words.back())) qs.host = words.back();
  return qs;
}

Response from_remote(const Request& request, RemoteOutcome outcome) {
  Response r = for_request(request);
  if (request.op == Op::explain) {
    // No wrapper, no sudo: the service account's scontrol/sacct, whose
    // output names other users' jobs' details and is not passed on.
    auto job = explain_from_output(request.job_id, request.user, outcome.exit_status, outcome.out, r.audit);
    if (job) {
      r.job = std::move(*job);
      r.job->owner.clear();
      r.state = r.job->state;
    } else {
      r.error = job.error();
    }
    return r;
  }
  if (request.op == Op::jobs) {
    auto listing = parse_job_listing(outcome.exit_status, outcome.out, outcome.err, "the service account", request.tag);
    if (listing) {
      r.listing = std::move(*listing);
    } else {
      r.error = listing.error();
    }
    return r;
  }
  const bool sudo_refused =
      outcome.err.rfind("sudo: ", 0) == 0 || (outcome.err.rfind("Sorry, user ", 0) == 0 &&
                                              outcome.err.find(" is not allowed to execute ") != std::string::npos);
  if (outcome.exit_status != 0 && sudo_refused) {
    // sudo itself refused (not in sudoers, wrapper missing, password
    // required): the wrapper never ran, so its "output" must not reach
    // batchspawner, which would read it as "job gone" and end the session.
    r.error = Error{Errc::auth,
                    fmt::format("sudo on the login host refused to run the {} wrapper as {}: {}; check the sudoers "
                                "rules for the service account and that the user is in the allowed group",
                                to_string(request.op), request.user, printable(first_line(outcome.err)))};
    return r;
  }
  if (outcome.exit_status != 0) {
    std::string detail = first_line(outcome.err);
    if (detail.empty()) detail = first_line(outcome.out);
    r.error = Error{Errc::remote_failed,
                    fmt::format("{} for user {} exited with status {}{}{}", to_string(request.op), request.user,
                                outcome.exit_status, detail.empty() ? "" : ": ", printable(detail))};
  } else if (request.op == Op::submit) {
    if (auto id = parse_submit_output(outcome.out)) {
      r.job_id = *id;
    } else {
      r.error = Error{Errc::remote_failed, fmt::format("submit for user {} succeeded but printed no job id: \"{}\"",
                                                       request.user, printable(first_line(outcome.out)))};
    }
  } else if (request.op == Op::query) {
    if (auto qs = parse_query_output(outcome.out)) {
      r.state = qs->state;
      r.host = qs->host;
    }
  }
  std::istringstream err(outcome.err);
  for (std::string line; std::getline(err, line);) {
    if (line.rfind(kNoticePrefix, 0) == 0) r.notices.push_back(line.substr(kNoticePrefix.size()));
  }
  r.remote = std::move(outcome);
  return r;
}

Response from_error(const Request& request, Error error) {
  Response r = for_request(request);
  r.error = std::move(error);
  return r;
}

}  // namespace ssb::core
