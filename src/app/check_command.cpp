#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "ssb/app/commands.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/core/validate.hpp"
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
  void skip_rest(std::initializer_list<const char*> steps, const std::string& why) {
    for (const char* s : steps) add(s, Verdict::skip, why);
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

}  // namespace

int run_check_command(const config::Config& config, const Options& options, Io& io) {
  Report report(options.json, io.out);
  report.add("config", Verdict::ok,
             fmt::format("{} read; login {}@{}:{}", config.source_path, config.ssh.user, config.ssh.host,
                         config.ssh.port));

  auto endpoint = ssh::Endpoint::from_config(config);
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint, warnings);
  if (!key) {
    report.add("identity", Verdict::fail, key.error().message);
  } else {
    for (const auto& w : warnings) report.add("identity", Verdict::warn, w);
    report.add("identity", Verdict::ok,
               fmt::format("{}: {} key {}", config.ssh.identity_file, key->type_name(), key->fingerprint()));
  }

  struct stat st {};
  if (::stat(config.ssh.known_hosts.c_str(), &st) != 0 || ::access(config.ssh.known_hosts.c_str(), R_OK) != 0) {
    report.add("known_hosts", Verdict::fail,
               fmt::format("{} (ssh.known_hosts) cannot be read: {}", config.ssh.known_hosts, std::strerror(errno)));
  } else {
    report.add("known_hosts", Verdict::ok, fmt::format("{} is readable", config.ssh.known_hosts));
  }

  auto session = ssh::Session::connect_only(endpoint);
  if (!session) {
    report.add("connect", Verdict::fail, session.error().message);
    report.skip_rest({"host_key", "auth", "wrappers", "sudo"}, "no connection");
    return report.finish();
  }
  report.add("connect", Verdict::ok, fmt::format("TCP and SSH handshake with {}:{}", config.ssh.host, config.ssh.port));

  auto verdict = (*session)->verify_host_key();
  if (!verdict) {
    report.add("host_key", Verdict::fail, verdict.error().message);
    report.skip_rest({"auth", "wrappers", "sudo"}, "host key not trusted");
    return report.finish();
  }
  report.add("host_key", Verdict::ok, fmt::format("known in {}", config.ssh.known_hosts));

  if (!key) {
    report.skip_rest({"auth", "wrappers", "sudo"}, "no usable identity");
    return report.finish();
  }
  if (auto auth = (*session)->authenticate(*key); !auth) {
    report.add("auth", Verdict::fail, auth.error().message);
    report.skip_rest({"wrappers", "sudo"}, "not authenticated");
    return report.finish();
  }
  report.add("auth", Verdict::ok, fmt::format("logged in as {}", config.ssh.user));
  (*session)->make_nonblocking();

  auto timeout = std::chrono::seconds(config.ssh.command_timeout_s);
  auto max_out = static_cast<std::size_t>(config.limits.max_output_bytes);
  bool started = false;
  auto probe = ssh::run_to_completion(**session, remote::build_wrapper_probe(config), timeout, max_out, started);
  if (!probe) {
    report.add("wrappers", Verdict::fail, probe.error().message);
  } else if (probe->exit_status != 0) {
    report.add("wrappers", Verdict::fail,
               fmt::format("in {} (remote.wrappers_dir): {}", config.remote.wrappers_dir,
                           trim_lines(probe->out + probe->err)));
  } else {
    report.add("wrappers", Verdict::ok,
               fmt::format("slurmspawner_sbatch, _squeue, _scancel executable in {}", config.remote.wrappers_dir));
  }

  if (options.user.empty()) {
    report.add("sudo", Verdict::skip, "pass --user NAME to check that sudo may run the wrappers as NAME");
    return report.finish();
  }
  if (auto valid = core::validate_user(options.user); !valid) {
    report.add("sudo", Verdict::fail, valid.error().message);
    return report.finish();
  }
  auto sudo = ssh::run_to_completion(**session, remote::build_sudo_probe(config, options.user), timeout, max_out, started);
  if (!sudo) {
    report.add("sudo", Verdict::fail, sudo.error().message);
  } else if (sudo->exit_status != 0) {
    report.add("sudo", Verdict::fail,
               fmt::format("sudo -n -u {} refused for {}: {}; check the sudoers rules for {} and that {} is in the "
                           "allowed group",
                           options.user, config.ssh.user, trim_lines(sudo->out), config.ssh.user, options.user));
  } else {
    report.add("sudo", Verdict::ok, fmt::format("{} may run all three wrappers as {}", config.ssh.user, options.user));
  }
  return report.finish();
}

}  // namespace ssb::app
