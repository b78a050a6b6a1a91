// What the bridge is asked to do, independent of where the request came
// from (command line, `request` stdin, daemon socket).
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "ssb/config/config.hpp"
#include "ssb/util/result.hpp"

namespace ssb::core {

// status and metrics are answered by the daemon itself (no user, no SSH).
enum class Op { submit, query, cancel, status, explain, jobs, metrics };

std::string_view to_string(Op op);
bool op_from_string(std::string_view text, Op& out);

struct Request {
  Op op = Op::query;
  std::string user;
  std::string job_id;                      // query, cancel, explain
  std::string script;                      // submit
  std::map<std::string, std::string> env;  // submit: variables offered for forwarding
  // submit: the HOME the hub set for this user (batchspawner's user_env),
  // empty when it set none. Never used as the job's HOME: the login host's
  // passwd entry is the authority (remote::build); a different value is
  // reported as a notice, so an admin sees a hub misconfigured for the site.
  std::string hub_home;
  // submit: the exactly-once token (core/submit_token.hpp), made once per
  // CLI call so that the daemon, a retry and a resolution all use the same.
  std::string token;
  // jobs: the submit.tag to list, set by validate() from the configuration
  // of whoever runs the request (never read from the wire).
  std::string tag;
};

inline constexpr std::size_t kMaxHubHomeLength = 4096;

// The HOME the hub declared for `user` in a submit environment: HOME when
// USER names that same account (batchspawner sets both, for the account the
// job runs as), else empty. An unrelated HOME (an admin's shell running the
// CLI by hand) is not a claim about the user.
std::string hub_home_from_environ(const std::vector<std::string>& environ_entries, const std::string& user);

// Checks the request against the same rules whichever front end built it:
// user, job id, script size, env names/values and total size. `env` is
// first reduced to the names env.forward allows; names outside the list are
// dropped silently (batchspawner hands over the whole spawner environment).
Status validate(Request& request, const config::Config& config);

// Picks the variables to forward from an environ-style list ("NAME=VALUE").
std::map<std::string, std::string> forwardable_env(const std::vector<std::string>& environ_entries,
                                                   const config::Config& config);

}  // namespace ssb::core
