#include "ssb/core/validate.hpp"

#include <fmt/format.h>

#include <array>

namespace ssb::core {

namespace {

bool is_alnum(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Names that change how the remote shell, the dynamic loader or sudo behave.
// Even if a site's env.forward pattern matched one of them, they are refused.
constexpr std::array<std::string_view, 14> kDeniedNames{"PATH",        "IFS",  "ENV",    "BASH_ENV",   "SHELLOPTS",
                                                        "BASHOPTS",    "PS4",  "CDPATH", "GLOBIGNORE", "SUDO_ASKPASS",
                                                        "SUDO_EDITOR", "HOME", "SHELL",  "USER"};

}  // namespace

Status validate_user(std::string_view user) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_user, fmt::format("invalid user name \"{}\": {}", printable(user), why));
  };
  if (user.empty()) return bad("it is empty");
  if (user.size() > kMaxUserLength) return bad(fmt::format("it is longer than {} characters", kMaxUserLength));
  if (user[0] == '-') return bad("it starts with '-', which sudo would read as an option");
  if (user[0] == '.') return bad("it starts with '.'");
  for (char c : user) {
    if (is_alnum(c) || c == '.' || c == '_' || c == '-') continue;
    auto uc = static_cast<unsigned char>(c);
    if (uc >= 0x80) return bad("it contains a non-ASCII character");
    if (uc < 0x20 || uc == 0x7f) return bad("it contains a control character");
    if (c == ' ') return bad("it contains whitespace");
    return bad(fmt::format("it contains '{}'; only letters, digits, '.', '_' and '-' are allowed", c));
  }
  return {};
}

Status validate_job_id(std::string_view job_id) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_job_id, fmt::format("invalid job id \"{}\": {}", printable(job_id), why));
  };
  if (job_id.empty()) return bad("it is empty");
  std::string_view number = job_id;
  std::string_view cluster;
  if (auto semi = job_id.find(';'); semi != std::string_view::npos) {
    number = job_id.substr(0, semi);
    cluster = job_id.substr(semi + 1);
    if (cluster.empty()) return bad("the cluster name after ';' is empty");
    if (cluster.size() > 64) return bad("the cluster name after ';' is longer than 64 characters");
    for (char c : cluster) {
      if (!(is_alnum(c) || c == '_' || c == '-')) {
        return bad("the cluster name after ';' may only hold letters, digits, '_' and '-'");
      }
    }
  }
  if (number.empty()) return bad("it has no job number");
  if (number[0] == '-') return bad("it is negative");
  for (char c : number) {
    if (!is_digit(c)) return bad("a Slurm job id is a decimal number (optionally followed by ;CLUSTER)");
  }
  if (number[0] == '0') return bad("a Slurm job id is positive and has no leading zeros");
  if (number.size() > 10 || (number.size() == 10 && number > "4294967294")) {
    return bad("it is larger than any Slurm job id (4294967294)");
  }
  return {};
}

Status validate_env_name(std::string_view name) {
  auto bad = [&](std::string_view why) {
    return make_error(Errc::invalid_env,
                      fmt::format("invalid environment variable name \"{}\": {}", printable(name), why));
  };
  if (name.empty()) return bad("it is empty");
  if (name.size() > kMaxEnvNameLength) return bad(fmt::format("it is longer than {} characters", kMaxEnvNameLength));
  if (is_digit(name[0])) return bad("it starts with a digit");
  for (char c : name) {
    if (!(is_alnum(c) || c == '_')) return bad("only letters, digits and '_' are allowed");
  }
  if (name.rfind("LD_", 0) == 0 || name.rfind("BASH_FUNC_", 0) == 0) {
    return bad("variables that steer the dynamic loader or the shell are never forwarded");
  }
  for (auto denied : kDeniedNames) {
    if (name == denied) return bad("this variable steers the remote shell or sudo and is never forwarded");
  }
  return {};
}

Status validate_env_value(std::string_view name, std::string_view value, bool secret) {
  if (value.find('\0') != std::string_view::npos) {
    return make_error(Errc::invalid_env, fmt::format("environment variable {} has a value containing a NUL byte{}",
                                                     name, secret ? " (value not shown: secret)" : ""));
  }
  return {};
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // Iterative '*' matcher with single backtrack point: linear in practice.
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool matches_any(const std::vector<std::string>& patterns, std::string_view name) {
  for (const auto& p : patterns) {
    if (glob_match(p, name)) return true;
  }
  return false;
}

}  // namespace ssb::core
