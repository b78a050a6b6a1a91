#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "ssb/app/commands.hpp"
#include "ssb/core/job_listing.hpp"
#include "ssb/core/validate.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/exec.hpp"
#include "ssb/ssh/session.hpp"

namespace ssb::app {

namespace {

enum class Verdict { ok, warn, fail, skip };

const char* label(Verdict v) {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::warn: return "warn";
    case Verdict::fail: return "fail";
    case Verdict::skip: return "skip";
  }
  return "?";
}

class Report {
 public:
  Report(bool json, std::ostream& out) : json_(json), out_(out) {}

  void add(const std::string& step, Verdict v, const std::string& detail) {
    if (v == Verdict::fail) failed_ = true;
    steps_.push_back({{"step", step}, {"verdict", label(v)}, {"detail", detail}});
    if (!json_) {
      static const char* tags[] = {"[ OK ]", "[WARN]", "[FAIL]", "[SKIP]"};
      out_ << fmt::format("{} {:<12} {}\n", tags[static_cast<int>(v)], step, detail);
    }
  }
  int finish() {
    if (json_) {
      out_ << protocol::to_line(nlohmann::json{{"ok", !failed_}, {"steps", steps_}}) << '\n';
    } else {
      out_ << (failed_ ? "verdict: FAILED (fix the first [FAIL] above)\n" : "verdict: all checks passed\n");
    }
    return failed_ ? 1 : 0;
  }

 private:
  bool json_;
  std::ostream& out_;
  bool failed_ = false;
  nlohmann::json steps_ = nlohmann::json::array();
};

std::string trim_lines(const std::string& text) {
  std::string out;
  for (char c : text) out += (c == '\n') ? "; " : std::string(1, c);
  while (out.size() >= 2 && out.compare(out.size() - 2, 2, "; ") == 0) out.resize(out.size() - 2);
  return out;
}

// What the steps share: the identity and the session they build up.
struct Check {
  const config::Config& config;
  const Options& options;
  Report& report;
  const char* step = "";  // the step running now, set by run_check_command
  ssh::Endpoint endpoint;
  std::optional<ssh::Key> key;
  std::unique_ptr<ssh::Session> session;

  void add(Verdict v, const std::string& detail) { report.add(step, v, detail); }
  std::chrono::milliseconds timeout() const { return std::chrono::seconds(config.ssh.command_timeout_s); }
  std::size_t max_output() const { return static_cast<std::size_t>(config.limits.max_output_bytes); }
};

// A step reports its own line(s) and returns why the steps after it cannot
// run (each of them is then reported as skipped for that reason), or nothing.
using Blocker = std::optional<std::string>;

Blocker check_config(Check& c) {
  c.add(Verdict::ok, fmt::format("{} read; login {}@{}:{}", c.config.source_path, c.config.ssh.user, c.config.ssh.host,
                                 c.config.ssh.port));
  return {};
}

Blocker check_identity(Check& c) {
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(c.endpoint, warnings);
  if (!key) {
    c.add(Verdict::fail, key.error().message);
    return {};  // the connection and host key can still be checked
  }
  for (const auto& w : warnings) c.add(Verdict::warn, w);
  c.add(Verdict::ok, fmt::format("{}: {} key {}", c.config.ssh.identity_file, key->type_name(), key->fingerprint()));
  c.key = std::move(*key);
  return {};
}

Blocker check_known_hosts(Check& c) {
  const auto& path = c.config.ssh.known_hosts;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || ::access(path.c_str(), R_OK) != 0) {
    c.add(Verdict::fail, fmt::format("{} (ssh.known_hosts) cannot be read: {}", path, std::strerror(errno)));
  } else {
    c.add(Verdict::ok, fmt::format("{} is readable", path));
  }
  return {};
}

Blocker check_connect(Check& c) {
  auto session = ssh::Session::connect_only(c.endpoint);
  if (!session) {
    c.add(Verdict::fail, session.error().message);
    return "no connection";
  }
  c.session = std::move(*session);
  c.add(Verdict::ok, fmt::format("TCP and SSH handshake with {}:{}", c.config.ssh.host, c.config.ssh.port));
  return {};
}

Blocker check_host_key(Check& c) {
  if (auto verdict = c.session->verify_host_key(); !verdict) {
    c.add(Verdict::fail, verdict.error().message);
    return "host key not trusted";
  }
  c.add(Verdict::ok, fmt::format("known in {}", c.config.ssh.known_hosts));
  return {};
}

Blocker check_auth(Check& c) {
  if (!c.key) {
    std::string why = "no usable identity";
    c.add(Verdict::skip, why);
    return why;
  }
  if (auto auth = c.session->authenticate(*c.key); !auth) {
    c.add(Verdict::fail, auth.error().message);
    return "not authenticated";
  }
  c.add(Verdict::ok, fmt::format("logged in as {}", c.config.ssh.user));
  c.session->make_nonblocking();
  return {};
}

Blocker check_wrappers(Check& c) {
  bool started = false;
  auto probe =
      ssh::run_to_completion(*c.session, remote::build_wrapper_probe(c.config), c.timeout(), c.max_output(), started);
  if (!probe) {
    c.add(Verdict::fail, probe.error().message);
  } else if (probe->exit_status != 0) {
    c.add(Verdict::fail, fmt::format("in {} (remote.wrappers_dir): {}", c.config.remote.wrappers_dir,
                                     trim_lines(probe->out + probe->err)));
  } else {
    c.add(Verdict::ok,
          fmt::format("slurmspawner_sbatch, _squeue, _scancel executable in {}", c.config.remote.wrappers_dir));
  }
  return {};  // sudo is checked even when the wrappers are not there
}

Blocker check_sudo(Check& c) {
  const auto& user = c.options.user;
  if (user.empty()) {
    c.add(Verdict::skip, "pass --user NAME to check that sudo may run the wrappers as NAME");
    return {};
  }
  if (auto valid = core::validate_user(user); !valid) {
    c.add(Verdict::fail, valid.error().message);
    return {};
  }
  bool started = false;
  auto sudo = ssh::run_to_completion(*c.session, remote::build_sudo_probe(c.config, user), c.timeout(), c.max_output(),
                                     started);
  const auto& login = c.config.ssh.user;
  if (!sudo) {
    c.add(Verdict::fail, sudo.error().message);
  } else if (sudo->exit_status != 0) {
    c.add(Verdict::fail,
          fmt::format("sudo -n -u {} refused for {}: {}; check the sudoers rules for {} and that {} is in the "
                      "allowed group",
                      user, login, trim_lines(sudo->out), login, user));
  } else {
    c.add(Verdict::ok, fmt::format("{} may run all three wrappers as {}", login, user));
  }
  return {};
}

// status.mode = "coalesced" answers from the service account's own squeue:
// it must see every user's jobs. slurm.conf's PrivateData=jobs hides them
// unless the account has an operator role (AdminLevel Operator or
// Administrator, which needs slurmdbd).
Blocker check_status(Check& c) {
  if (c.config.status.mode != config::StatusMode::coalesced) {
    c.add(Verdict::ok, "status.mode = \"per_user\": each query runs the sudo'd slurmspawner_squeue");
    return {};
  }
  bool started = false;
  auto probe = ssh::run_to_completion(*c.session, remote::build_visibility_probe(c.config), c.timeout(), c.max_output(),
                                      started);
  if (!probe) {
    c.add(Verdict::fail, probe.error().message);
    return {};
  }
  if (probe->exit_status != 0) {
    c.add(Verdict::fail, fmt::format("`scontrol show config` failed as {} (needed to judge status.mode = "
                                     "\"coalesced\"): {}",
                                     c.config.ssh.user, trim_lines(probe->err + probe->out)));
    return {};
  }
  std::string private_data, admin_level;
  for (const auto& line : {std::string("privatedata="), std::string("adminlevel=")}) {
    auto at = probe->out.find(line);
    if (at == std::string::npos) continue;
    auto end = probe->out.find('\n', at);
    auto value =
        probe->out.substr(at + line.size(), end == std::string::npos ? std::string::npos : end - at - line.size());
    (line[0] == 'p' ? private_data : admin_level) = value;
  }
  auto [verdict, detail] = judge_job_visibility(c.config.ssh.user, private_data, admin_level);
  c.add(verdict ? Verdict::ok : Verdict::warn, detail);
  return {};
}

struct Step {
  const char* name;
  Blocker (*run)(Check&);
};

// In order: each step may rely on what the ones before it built.
constexpr Step kSteps[] = {
    {"config", check_config},     {"identity", check_identity}, {"known_hosts", check_known_hosts},
    {"connect", check_connect},   {"host_key", check_host_key}, {"auth", check_auth},
    {"wrappers", check_wrappers}, {"sudo", check_sudo},         {"status", check_status},
};

}  // namespace

std::pair<bool, std::string> judge_job_visibility(const std::string& account, const std::string& private_data,
                                                  const std::string& admin_level) {
  // The verdict is the one every job listing uses (core::sees_all_jobs);
  // only the explanation is check's own.
  if (core::sees_all_jobs(private_data, admin_level)) {
    if (private_data.find("jobs") == std::string::npos) {
      return {true, fmt::format("PrivateData = {}: {} sees every user's jobs; coalesced status answers from one "
                                "squeue per status.window_ms",
                                private_data.empty() ? "(not set)" : private_data, account)};
    }
    return {true, fmt::format("PrivateData = {}, but {} has AdminLevel {}: it sees every user's jobs", private_data,
                              account, admin_level)};
  }
  return {false,
          fmt::format("PrivateData = {} hides other users' jobs from {} (AdminLevel: {}): status.mode = "
                      "\"coalesced\" will fall back to per_user at the first job its squeue misses. Either give {} "
                      "an operator role (`sacctmgr modify user {} set adminlevel=Operator`, needs slurmdbd) or "
                      "drop \"jobs\" from PrivateData in slurm.conf; or set status.mode = \"per_user\"",
                      private_data, account, admin_level.empty() ? "none or unknown" : admin_level, account, account)};
}

int run_check_command(const config::Config& config, const Options& options, Io& io) {
  Report report(options.json, io.out);
  Check check{config, options, report, "", ssh::Endpoint::from_config(config), std::nullopt, nullptr};
  for (auto step = std::begin(kSteps); step != std::end(kSteps); ++step) {
    check.step = step->name;
    if (auto blocker = step->run(check)) {
      for (auto rest = step + 1; rest != std::end(kSteps); ++rest) report.add(rest->name, Verdict::skip, *blocker);
      break;
    }
  }
  return report.finish();
}

}  // namespace ssb::app
