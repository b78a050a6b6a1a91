#include "ssb/core/request.hpp"

#include <fmt/format.h>

#include "ssb/core/submit_token.hpp"
#include "ssb/core/validate.hpp"

namespace ssb::core {

std::string_view to_string(Op op) {
  switch (op) {
    case Op::submit: return "submit";
    case Op::query: return "query";
    case Op::cancel: return "cancel";
    case Op::status: return "status";
    case Op::explain: return "explain";
    case Op::jobs: return "jobs";
    case Op::metrics: return "metrics";
  }
  return "?";
}

bool op_from_string(std::string_view text, Op& out) {
  for (Op op : {Op::submit, Op::query, Op::cancel, Op::status, Op::explain, Op::jobs, Op::metrics}) {
    if (to_string(op) == text) {
      out = op;
      return true;
    }
  }
  return false;
}

Status validate(Request& request, const config::Config& config) {
  if (request.op == Op::status || request.op == Op::metrics) return {};
  if (request.op == Op::jobs) {
    request = Request();  // nothing of a jobs request is used but its op
    request.op = Op::jobs;
    request.tag = config.submit.tag;
    return {};
  }
  if (auto st = validate_user(request.user); !st) return st;
  if (request.op == Op::query || request.op == Op::cancel || request.op == Op::explain) {
    if (auto st = validate_job_id(request.job_id); !st) return st;
    request.env.clear();
    request.script.clear();
    request.hub_home.clear();
    request.token.clear();
    return {};
  }
  // submit
  if (static_cast<std::int64_t>(request.script.size()) > config.limits.max_script_bytes) {
    return make_error(Errc::script_too_large,
                      // Over the limit, not "is N bytes": the CLI stops reading
                      // stdin just past the limit, so the size it holds is not
                      // the script's.
                      fmt::format("job script for user {} is over the limit of {} bytes (limits.max_script_bytes); "
                                  "make the script smaller or raise the limit",
                                  request.user, config.limits.max_script_bytes));
  }
  if (request.script.empty()) {
    return make_error(Errc::bad_request,
                      fmt::format("job script for user {} is empty; submit reads the script on stdin", request.user));
  }
  std::map<std::string, std::string> kept;
  std::size_t total = 0;
  for (auto& [name, value] : request.env) {
    if (!matches_any(config.env.forward, name)) continue;
    if (auto st = validate_env_name(name); !st) return st;
    if (auto st = validate_env_value(name, value, matches_any(config.env.secret_patterns, name)); !st) return st;
    total += name.size() + value.size() + 2;
    kept.emplace(name, std::move(value));
  }
  if (static_cast<std::int64_t>(total) > config.limits.max_env_bytes) {
    return make_error(Errc::invalid_env,
                      fmt::format("forwarded environment is {} bytes, more than limits.max_env_bytes = {}", total,
                                  config.limits.max_env_bytes));
  }
  request.env = std::move(kept);
  if (!request.hub_home.empty()) {
    const auto& home = request.hub_home;
    const char* why = nullptr;
    if (home.size() > kMaxHubHomeLength) {
      why = "it is longer than 4096 bytes";
    } else if (home.front() != '/') {
      why = "it is not an absolute path";
    } else if (home.find_first_of(std::string_view("\0\n\r", 3)) != std::string::npos) {
      why = "it contains a NUL or line break";
    }
    if (why) {
      return make_error(Errc::invalid_env,
                        fmt::format("HOME offered by the hub for user {} (\"{}\") is not usable: {}; check the "
                                    "spawner's remote_homedir / user_env",
                                    request.user, printable(home), why));
    }
  }
  // Exactly-once submit: the token and the script's room for it.
  if (!valid_token(request.token)) {
    return make_error(Errc::bad_request, fmt::format("submit token for user {} (\"{}\") is not 32 lowercase hex digits",
                                                     request.user, printable(request.token)));
  }
  if (auto st = check_script_for_token(request); !st) return st;
  return {};
}

std::string hub_home_from_environ(const std::vector<std::string>& environ_entries, const std::string& user) {
  std::string env_user, env_home;
  bool has_user = false;
  for (const auto& entry : environ_entries) {
    if (entry.rfind("USER=", 0) == 0) {
      env_user = entry.substr(5);
      has_user = true;
    } else if (entry.rfind("HOME=", 0) == 0) {
      env_home = entry.substr(5);
    }
  }
  if (!has_user || env_user != user) return {};
  return env_home;
}

std::map<std::string, std::string> forwardable_env(const std::vector<std::string>& environ_entries,
                                                   const config::Config& config) {
  std::map<std::string, std::string> out;
  for (const auto& entry : environ_entries) {
    auto eq = entry.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    auto name = entry.substr(0, eq);
    if (matches_any(config.env.forward, name)) out[name] = entry.substr(eq + 1);
  }
  return out;
}

}  // namespace ssb::core
