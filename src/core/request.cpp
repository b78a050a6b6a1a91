#include "ssb/core/request.hpp"

#include <fmt/format.h>

#include "ssb/core/validate.hpp"

namespace ssb::core {

std::string_view to_string(Op op) {
  switch (op) {
    case Op::submit: return "submit";
    case Op::query: return "query";
    case Op::cancel: return "cancel";
    case Op::status: return "status";
  }
  return "?";
}

bool op_from_string(std::string_view text, Op& out) {
  for (Op op : {Op::submit, Op::query, Op::cancel, Op::status}) {
    if (to_string(op) == text) {
      out = op;
      return true;
    }
  }
  return false;
}

Status validate(Request& request, const config::Config& config) {
  if (request.op == Op::status) return {};
  if (auto st = validate_user(request.user); !st) return st;
  if (request.op == Op::query || request.op == Op::cancel) {
    if (auto st = validate_job_id(request.job_id); !st) return st;
    request.env.clear();
    request.script.clear();
    return {};
  }
  // submit
  if (static_cast<std::int64_t>(request.script.size()) > config.limits.max_script_bytes) {
    return make_error(Errc::script_too_large,
                      fmt::format("job script for user {} is {} bytes, more than limits.max_script_bytes = {}",
                                  request.user, request.script.size(), config.limits.max_script_bytes));
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
  return {};
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
