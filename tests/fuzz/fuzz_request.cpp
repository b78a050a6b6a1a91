// libFuzzer target: the daemon's request path, from raw bytes to the command
// line the login host runs.
//
//   bytes -> ssb::protocol::parse_request -> ssb::core::validate -> ssb::remote::build
//
// The first input byte picks one of a few configurations (default, env method
// "setenv", awkward but valid paths, forward-everything with small limits);
// the rest is one request line. Every property below is checked with abort(),
// so a violation is a crash libFuzzer reports with its reproducer:
//
//   parse      an error is a bad_request whose envelope serialises (what the
//              daemon writes back) and does not echo the value of
//              "JUPYTERHUB_API_TOKEN" found in the input;
//   validate   an error has a per-value code, its response serialises, and its
//              message does not depend on any environment value;
//   build      the command, split into words by an independent parser of the
//              only shell syntax it may use (bare safe words, '...' and \'),
//              is exactly one of the fixed forms:
//                query/cancel  SLURMSPAWNER_JOB_ID=<id> ; export SLURMSPAWNER_JOB_ID ;
//                              exec SUDO -n -u USER -- WRAPPER
//                submit/stdin  exec BASH --noprofile --norc -c SNIPPET slurm-ssh-bridge
//                              SUDO -n -u USER -- WRAPPER
//                submit/setenv exec SUDO -n -u USER -- WRAPPER
//              with SUDO and BASH the configured paths, USER the validated user
//              (letters, digits, . _ -, not starting with - or .), WRAPPER the
//              configured wrapper of the request's op, SNIPPET the same fixed
//              text for every request; the command does not change when the
//              environment does (so no env value is ever in it); env values
//              travel only in stdin records or SSH env requests.
//
// SSB_FUZZ_SKIP=parse_secret,serialise (comma-separated) turns a check off,
// to look past a known finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"
#include "ssb/core/validate.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/remote/command.hpp"

namespace {

using ssb::Errc;
using ssb::config::Config;
using ssb::core::Op;

[[noreturn]] void violation(const char* what, std::string_view detail) {
  std::fprintf(stderr, "fuzz_request: VIOLATION: %s\n  detail: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

bool skipped(const char* check) {
  const char* env = std::getenv("SSB_FUZZ_SKIP");
  if (!env) return false;
  std::string_view list(env);
  std::string_view name(check);
  std::size_t pos = 0;
  while (pos <= list.size()) {
    auto comma = list.find(',', pos);
    if (comma == std::string_view::npos) comma = list.size();
    if (list.substr(pos, comma - pos) == name) return true;
    pos = comma + 1;
  }
  return false;
}

std::vector<Config> make_configs() {
  std::vector<Config> out;
  Config base;
  base.ssh.host = "login.example";
  out.push_back(base);  // 0: defaults, env.method = stdin

  Config setenv = base;  // 1: SSH env requests
  setenv.env.method = ssb::config::EnvMethod::setenv;
  out.push_back(setenv);

  Config odd = base;  // 2: valid but awkward paths (quotes, spaces, trailing slashes)
  odd.remote.wrappers_dir = "/opt/it's a dir/$(bin)//";
  odd.remote.sudo = "/usr/local/bin/su do";
  odd.remote.bash = "/bin/b'a\"sh";
  out.push_back(odd);

  Config wide = base;  // 3: forward everything, small limits, extra secret pattern
  wide.env.forward = {"*"};
  wide.env.secret_patterns.push_back("SITE_CRED*");
  wide.limits.max_script_bytes = 64;
  wide.limits.max_env_bytes = 256;
  wide.env.method = ssb::config::EnvMethod::setenv;
  out.push_back(wide);
  return out;
}

const std::vector<Config>& configs() {
  static const std::vector<Config> c = make_configs();
  return c;
}

// The daemon serialises every answer with dump(); an exception there escapes
// into the io or worker thread.
void must_serialise(const nlohmann::json& j, const char* what) {
  if (skipped("serialise")) return;
  try {
    (void)j.dump();
  } catch (const nlohmann::json::exception& e) {
    violation(what, e.what());
  }
}

// Splits a command into shell words using only the syntax the builder may
// emit: words of [A-Za-z0-9_=./-] characters, '...' segments, the two-byte
// escape \' and the operator ';'. Anything else is a violation (it would be
// shell syntax the builder has no business producing).
std::vector<std::string> shell_words(std::string_view cmd) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  auto flush = [&] {
    if (in_word) words.push_back(cur);
    cur.clear();
    in_word = false;
  };
  auto safe = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '=' ||
           c == '.' || c == '/' || c == '-';
  };
  std::size_t i = 0;
  while (i < cmd.size()) {
    char c = cmd[i];
    if (c == ' ') {
      flush();
      ++i;
    } else if (c == ';') {
      flush();
      words.emplace_back(";");
      ++i;
    } else if (c == '\'') {
      auto end = cmd.find('\'', i + 1);
      if (end == std::string_view::npos) violation("unterminated single quote in the command", cmd);
      cur.append(cmd.substr(i + 1, end - i - 1));
      in_word = true;
      i = end + 1;
    } else if (c == '\\') {
      if (i + 1 >= cmd.size() || cmd[i + 1] != '\'') violation("backslash other than \\' in the command", cmd);
      cur += '\'';
      in_word = true;
      i += 2;
    } else if (safe(c)) {
      cur += c;
      in_word = true;
      ++i;
    } else {
      violation("unquoted shell metacharacter in the command", cmd);
    }
  }
  flush();
  return words;
}

std::string expected_wrapper(const Config& cfg, Op op) {
  std::string dir = cfg.remote.wrappers_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const char* name = op == Op::submit  ? "slurmspawner_sbatch"
                     : op == Op::query ? "slurmspawner_squeue"
                                       : "slurmspawner_scancel";
  return dir + "/" + name;
}

bool valid_user(std::string_view u) {
  if (u.empty() || u.size() > ssb::core::kMaxUserLength || u[0] == '-' || u[0] == '.') return false;
  for (char c : u) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool valid_job_id(std::string_view id) {
  auto semi = id.find(';');
  auto num = id.substr(0, semi);
  if (num.empty() || num.size() > 10 || num[0] == '0') return false;
  for (char c : num) {
    if (c < '0' || c > '9') return false;
  }
  if (num.size() == 10 && num > "4294967294") return false;
  if (semi == std::string_view::npos) return true;
  auto cl = id.substr(semi + 1);
  if (cl.empty() || cl.size() > 64) return false;
  for (char c : cl) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// env.method = stdin, submit: the one command that is more than a simple
// command. Its fixed text is spelled out here (as in docs/CONTRACTS.md);
// only the two sudo parts and remote.bash vary, and those must split into
// the fixed words like every other command.
const std::string kStdinHead =
    "if [ -n \"${BASH_VERSION-}\" ]; then while IFS= read -r -d '' kv && [ -n \"$kv\" ]; do export \"$kv\" || "
    "exit 125; done; exec ";
const std::string kStdinElse = "; else exec ";
const std::string kStdinTail = "; fi";
const std::string kStdinSnippet =
    "while IFS= read -r -d '' kv && [ -n \"$kv\" ]; do export \"$kv\" || exit 125; done; exec \"$@\"";

void expect_words(const std::string& text, const std::vector<std::string>& expect, const std::string& cmd) {
  auto words = shell_words(text);
  if (words != expect) {
    std::string got;
    for (const auto& w : words) got += "[" + w + "] ";
    violation("the command is not one of the fixed forms", cmd + "\n  words: " + got);
  }
}

// explain runs two tools as the service account (no sudo, no user name):
// its whole text is fixed apart from the quoted job number and cluster.
void check_explain_command(const ssb::core::Request& req, const Config& cfg) {
  auto rc = ssb::remote::build(req, cfg);
  const auto semi = req.job_id.find(';');
  const std::string id = "'" + req.job_id.substr(0, semi) + "'";
  const std::string cl = semi == std::string::npos ? "" : " -M '" + req.job_id.substr(semi + 1) + "'";
  const std::string expect = "echo 'slurm-ssh-bridge-explain: scontrol'; " +
                             ssb::remote::sh_quote(cfg.remote.scontrol) + cl + " -o show job " + id +
                             " 2>&1 && exit 0; echo 'slurm-ssh-bridge-explain: sacct'; exec " +
                             ssb::remote::sh_quote(cfg.remote.sacct) + cl + " -n -P -X -j " + id +
                             " -o JobID,User,State,ExitCode,Reason,Start 2>&1";
  if (rc.command != expect) violation("the explain command is not its fixed form", rc.command);
  if (!rc.stdin_data.empty() || !rc.env_requests.empty()) violation("explain carries stdin or env", rc.command);
}

void check_command(const ssb::core::Request& req, const Config& cfg) {
  if (req.op == Op::explain) return check_explain_command(req, cfg);
  auto rc = ssb::remote::build(req, cfg);
  const std::string wrapper = expected_wrapper(cfg, req.op);
  const bool stdin_method = cfg.env.method == ssb::config::EnvMethod::stdin_records;
  const std::vector<std::string> sudo_words{cfg.remote.sudo, "-n", "-u", req.user, "--", wrapper};

  // A submit starts with the fixed identity prefix (the login host's passwd
  // entry sets USER, LOGNAME, HOME, SHELL; a hub HOME is only compared).
  std::string command = rc.command;
  if (req.op == Op::submit) {
    const std::string q = ssb::remote::sh_quote(req.user);
    std::string prefix =
        "ssb_pw=$(getent passwd " + q + ") || { echo \"slurm-ssh-bridge: remote: user \"" + q +
        "\" has no passwd entry on the login host (getent passwd failed); the job cannot run as them\" >&2; exit 1; "
        "}; ssb_rest=${ssb_pw#*:*:*:*:*:}; HOME=${ssb_rest%%:*}; SHELL=${ssb_rest#*:}; [ -n \"$SHELL\" ] || "
        "SHELL=/bin/sh; USER=" +
        q + "; LOGNAME=" + q + "; export HOME SHELL USER LOGNAME; ";
    if (!req.hub_home.empty()) {
      const std::string h = ssb::remote::sh_quote(req.hub_home);
      prefix += "[ " + h + " = \"$HOME\" ] || echo \"slurm-ssh-bridge: notice: the hub set HOME=\"" + h + "\" for \"" +
                q + "\"; the login host's passwd entry says $HOME, which the job uses\" >&2; ";
    }
    if (command.rfind(prefix, 0) != 0) violation("the submit command does not start with the identity prefix", command);
    command = command.substr(prefix.size());
  }

  if (req.op == Op::submit && stdin_method) {
    const std::string& c = command;
    const auto else_at = c.find(kStdinElse);
    if (c.rfind(kStdinHead, 0) != 0 || c.size() < kStdinHead.size() + kStdinTail.size() ||
        c.compare(c.size() - kStdinTail.size(), kStdinTail.size(), kStdinTail) != 0 || else_at == std::string::npos ||
        else_at < kStdinHead.size() || c.rfind(kStdinElse) != else_at) {
      violation("the stdin submit command does not have the fixed if/else shape", c);
    }
    expect_words(c.substr(kStdinHead.size(), else_at - kStdinHead.size()), sudo_words, c);
    std::vector<std::string> bash_words{cfg.remote.bash, "--noprofile",     "--norc", "-c",
                                        kStdinSnippet,   "slurm-ssh-bridge"};
    bash_words.insert(bash_words.end(), sudo_words.begin(), sudo_words.end());
    const auto rest = else_at + kStdinElse.size();
    expect_words(c.substr(rest, c.size() - kStdinTail.size() - rest), bash_words, c);
  } else {
    std::vector<std::string> expect;
    if (req.op == Op::submit) {
      expect = {"exec"};
    } else {
      expect = {"SLURMSPAWNER_JOB_ID=" + req.job_id, ";", "export", "SLURMSPAWNER_JOB_ID", ";", "exec"};
    }
    expect.insert(expect.end(), sudo_words.begin(), sudo_words.end());
    expect_words(command, expect, rc.command);
  }

  // The environment never changes the command line.
  ssb::core::Request bare = req;
  bare.env.clear();
  auto rc_bare = ssb::remote::build(bare, cfg);
  if (rc_bare.command != rc.command) violation("the command line depends on the environment", rc.command);

  if (req.op != Op::submit) {
    if (!rc.stdin_data.empty() || !rc.env_requests.empty()) violation("query/cancel carry stdin or env", rc.command);
    return;
  }
  std::vector<std::pair<std::string, std::string>> vars(req.env.begin(), req.env.end());
  if (stdin_method) {
    if (!rc.env_requests.empty()) violation("stdin method sends SSH env requests", "");
    std::string records = ssb::remote::encode_env_records(vars);
    if (rc.stdin_data.compare(0, records.size(), records) != 0 || rc.stdin_data.substr(records.size()) != req.script) {
      violation("stdin is not the env records followed by the script", "");
    }
  } else {
    if (rc.env_requests != vars) violation("setenv method: env requests differ from the validated env", "");
    if (rc.stdin_data != req.script) violation("setenv method: stdin is not the script", "");
  }
}

// The value of "JUPYTERHUB_API_TOKEN" as written in the raw input (up to the
// next quote), when it occurs exactly once in the input and is long enough to
// be recognisable.
std::string raw_token_value(std::string_view line) {
  static constexpr std::string_view kKey = "\"JUPYTERHUB_API_TOKEN\":\"";
  auto at = line.find(kKey);
  if (at == std::string_view::npos) return {};
  auto start = at + kKey.size();
  auto end = line.find_first_of("\"\\", start);
  auto value = line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  if (value.size() < 6) return {};
  for (char c : value) {
    auto uc = static_cast<unsigned char>(c);
    if (uc < 0x21 || uc > 0x7e) return {};
  }
  if (line.find(value) != start || line.find(value, start + 1) != std::string_view::npos) return {};
  return std::string(value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t cfg_index = data[0] % configs().size();
  const Config& cfg = configs()[cfg_index];
  std::string_view line(reinterpret_cast<const char*>(data + 1), size - 1);

  nlohmann::json id;
  auto parsed = ssb::protocol::parse_request(line, static_cast<std::size_t>(cfg.daemon.max_line_bytes), id);
  if (!parsed) {
    const auto& err = parsed.error();
    if (err.code != Errc::bad_request) violation("parse error with a code other than bad_request", err.message);
    if (!id.is_null() && !id.is_string() && !id.is_number_integer()) violation("error id of a wrong type", id.dump());
    must_serialise(ssb::protocol::error_envelope(id, err), "the parse error's envelope does not serialise");
    if (!skipped("parse_secret")) {
      auto secret = raw_token_value(line);
      if (!secret.empty() && err.message.find(secret) != std::string::npos) {
        violation("a parse error message echoes the JUPYTERHUB_API_TOKEN value", err.message);
      }
    }
    return 0;
  }

  ssb::core::Request req = parsed->request;
  if (req.op == Op::status) return 0;

  auto st = ssb::core::validate(req, cfg);
  if (!st) {
    const auto& err = st.error();
    switch (err.code) {
      case Errc::invalid_user:
      case Errc::invalid_job_id:
      case Errc::invalid_env:
      case Errc::script_too_large:
      case Errc::bad_request: break;
      default: violation("validation failed with an unexpected code", err.message);
    }
    must_serialise(ssb::protocol::response_envelope(id, ssb::core::from_error(req, err)),
                   "a validation error response does not serialise");
    // Same request with every env value's bytes replaced (NULs kept, lengths
    // kept): the message must not change, so no value is ever in it.
    ssb::core::Request masked = parsed->request;
    for (auto& [name, value] : masked.env) {
      for (auto& c : value) {
        if (c != '\0') c = (c == 'Z') ? 'Y' : 'Z';
      }
    }
    auto st2 = ssb::core::validate(masked, cfg);
    if (st2 || st2.error().code != err.code || st2.error().message != err.message) {
      violation("a validation error message depends on an environment value", err.message);
    }
    return 0;
  }

  if (!valid_user(req.user)) violation("validate accepted a user outside [A-Za-z0-9._-]", req.user);
  if (req.op != Op::submit && !valid_job_id(req.job_id)) violation("validate accepted a bad job id", req.job_id);
  for (const auto& [name, value] : req.env) {
    if (!ssb::core::matches_any(cfg.env.forward, name)) violation("a name outside env.forward survived", name);
    if (!ssb::core::validate_env_name(name)) violation("an invalid env name survived", name);
    if (value.find('\0') != std::string::npos) violation("an env value with NUL survived", name);
  }
  check_command(req, cfg);
  return 0;
}
