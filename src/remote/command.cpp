#include "ssb/remote/command.hpp"

#include <fmt/format.h>

#include "ssb/core/job_listing.hpp"
#include "ssb/core/response.hpp"
#include "ssb/core/squeue_batch.hpp"
#include "ssb/core/submit_token.hpp"
#include "ssb/core/validate.hpp"

namespace ssb::remote {

namespace {

// Reads NUL-terminated NAME=VALUE records from stdin until an empty one and
// exports each; the rest of stdin (the job script) stays untouched, because
// bash's `read` takes one byte at a time from a pipe. Values are never
// expanded or evaluated: they only pass through "$kv". `read -d` is bash's.
constexpr std::string_view kEnvLoop =
    R"(while IFS= read -r -d '' kv && [ -n "$kv" ]; do export "$kv" || exit 125; done)";

// The job runs as the user in every sense: USER, LOGNAME, HOME and SHELL
// come from the login host's passwd entry for the target account, resolved
// by the login shell before sudo. The reference sudoers fragment keeps
// "USER HOME SHELL" (and with USER, sudo keeps LOGNAME), so without this the
// job would inherit the service account's values; with a fragment that
// keeps none of them sudo sets the same values itself. The hub's HOME is
// never used, only compared (a notice when it differs). POSIX sh only: the
// service account's login shell may be dash.
std::string identity_prefix(const core::Request& request) {
  const std::string user = sh_quote(request.user);
  std::string out = fmt::format(
      "ssb_pw=$(getent passwd {user}) || {{ echo \"slurm-ssh-bridge: remote: user \"{user}\" has no passwd entry "
      "on the login host (getent passwd failed); the job cannot run as them\" >&2; exit 1; }}; "
      "ssb_rest=${{ssb_pw#*:*:*:*:*:}}; HOME=${{ssb_rest%%:*}}; SHELL=${{ssb_rest#*:}}; "
      "[ -n \"$SHELL\" ] || SHELL=/bin/sh; USER={user}; LOGNAME={user}; export HOME SHELL USER LOGNAME; ",
      fmt::arg("user", user));
  if (!request.hub_home.empty()) {
    const std::string hub = sh_quote(request.hub_home);
    out += fmt::format(
        "[ {hub} = \"$HOME\" ] || echo \"{prefix}the hub set HOME=\"{hub}\" for \"{user}\"; the login host's "
        "passwd entry says $HOME, which the job uses\" >&2; ",
        fmt::arg("hub", hub), fmt::arg("user", user), fmt::arg("prefix", core::kNoticePrefix));
  }
  return out;
}

std::string sudo_prefix(const config::Config& config, const std::string& user) {
  return fmt::format("{} -n -u {} --", sh_quote(config.remote.sudo), sh_quote(user));
}

}  // namespace

std::string sh_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '\'';
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

std::string_view wrapper_name(core::Op op) {
  switch (op) {
    case core::Op::submit: return "slurmspawner_sbatch";
    case core::Op::query: return "slurmspawner_squeue";
    case core::Op::cancel: return "slurmspawner_scancel";
    case core::Op::status:
    case core::Op::metrics:
    case core::Op::explain:
    case core::Op::jobs: break;
  }
  return "";
}

std::string wrapper_path(const config::Config& config, core::Op op) {
  std::string dir = config.remote.wrappers_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return fmt::format("{}/{}", dir, wrapper_name(op));
}

std::string encode_env_records(const std::vector<std::pair<std::string, std::string>>& vars) {
  std::string out;
  for (const auto& [name, value] : vars) {
    out += name;
    out += '=';
    out += value;
    out += '\0';
  }
  out += '\0';
  return out;
}

RemoteCommand build_explain(const core::Request& request, const config::Config& config) {
  // The id was validated (digits, optional ;CLUSTER of [A-Za-z0-9_-]); both
  // parts are quoted all the same. The user name is not on this command
  // line at all: ownership is checked on the answer (core::explain_from_output).
  const auto semi = request.job_id.find(';');
  const std::string number = sh_quote(request.job_id.substr(0, semi));
  const std::string cluster =
      semi == std::string::npos ? std::string() : " -M " + sh_quote(request.job_id.substr(semi + 1));
  RemoteCommand rc;
  rc.command = fmt::format(
      "echo {smark}; {scontrol}{cluster} -o show job {id} 2>&1 && exit 0; echo {amark}; "
      "exec {sacct}{cluster} -n -P -X -j {id} -o JobID,User,State,ExitCode,Reason,Start 2>&1",
      fmt::arg("smark", sh_quote(core::kExplainScontrolMarker)), fmt::arg("scontrol", sh_quote(config.remote.scontrol)),
      fmt::arg("cluster", cluster), fmt::arg("id", number), fmt::arg("amark", sh_quote(core::kExplainSacctMarker)),
      fmt::arg("sacct", sh_quote(config.remote.sacct)));
  return rc;
}

RemoteCommand build(const core::Request& request, const config::Config& config) {
  if (request.op == core::Op::explain) return build_explain(request, config);
  if (request.op == core::Op::jobs) return build_job_listing(config);
  RemoteCommand rc;
  const std::string wrapper = sh_quote(wrapper_path(config, request.op));
  if (request.op == core::Op::submit) {
    std::vector<std::pair<std::string, std::string>> vars(request.env.begin(), request.env.end());
    if (config.env.method == config::EnvMethod::stdin_records) {
      // When the login shell is bash (the usual case) it runs the loop
      // itself; any other shell execs remote.bash for it. Starting a second
      // bash cost ~1.3 ms of login-host CPU per submit (docs/BENCHMARK.md).
      const std::string sudo = sudo_prefix(config, request.user);
      rc.command = identity_prefix(request) +
                   fmt::format(
                       "if [ -n \"${{BASH_VERSION-}}\" ]; then {loop}; exec {sudo} {wrapper}; "
                       "else exec {bash} --noprofile --norc -c {snippet} slurm-ssh-bridge {sudo} {wrapper}; fi",
                       fmt::arg("loop", kEnvLoop), fmt::arg("sudo", sudo), fmt::arg("wrapper", wrapper),
                       fmt::arg("bash", sh_quote(config.remote.bash)),
                       fmt::arg("snippet", sh_quote(std::string(kEnvLoop) + "; exec \"$@\"")));
      rc.stdin_data = encode_env_records(vars);
    } else {
      rc.command = identity_prefix(request) + fmt::format("exec {} {}", sudo_prefix(config, request.user), wrapper);
      rc.env_requests = std::move(vars);
    }
    rc.stdin_data += core::tag_script(request.script, config.submit.tag, request.token);
    return rc;
  }
  // query / cancel: the job id is validated (digits, optional ;cluster) and
  // not secret; it is quoted all the same.
  rc.command = fmt::format("SLURMSPAWNER_JOB_ID={}; export SLURMSPAWNER_JOB_ID; exec {} {}", sh_quote(request.job_id),
                           sudo_prefix(config, request.user), wrapper);
  return rc;
}

Result<RemoteCommand> build_status_batch(const config::Config& config, const std::vector<std::string>& job_ids) {
  if (job_ids.empty()) return make_error(Errc::internal, "a status batch needs at least one job id");
  std::string list;
  for (const auto& id : job_ids) {
    // The job-id rules, minus the ";cluster" form (not coalesced) and ids
    // squeue refuses on its own.
    if (!core::validate_job_id(id) || !core::squeue_takes_id(id)) {
      return make_error(Errc::invalid_job_id,
                        fmt::format("job id \"{}\" cannot go into a coalesced squeue: only plain job numbers up "
                                    "to 2147483647 can",
                                    core::printable(id)));
    }
    list += (list.empty() ? "" : ",") + id;
  }
  RemoteCommand rc;
  rc.command = fmt::format("exec {} -h -j {} -o {}", sh_quote(config.status.squeue), sh_quote(list),
                           sh_quote(core::kSqueueBatchFormat));
  return rc;
}

RemoteCommand build_visibility_probe(const config::Config& config) {
  // Two facts, one line each, for `check` to judge (app/check_command.cpp):
  // "privatedata=..." from the controller's running configuration and
  // "adminlevel=..." for the service account. Fixed text: nothing
  // user-controlled. scontrol and sacctmgr sit next to squeue when
  // status.squeue is a path.
  const std::string& squeue = config.status.squeue;
  auto slash = squeue.rfind('/');
  const std::string dir = slash == std::string::npos ? std::string() : squeue.substr(0, slash + 1);
  RemoteCommand rc;
  rc.command = fmt::format(
      "ssb_cf=$({scontrol} show config 2>&1) || {{ printf '%s\\n' \"$ssb_cf\" >&2; exit 1; }}; "
      "printf '%s\\n' \"$ssb_cf\" | sed -n 's/^PrivateData *= */privatedata=/p'; "
      "echo \"adminlevel=$({sacctmgr} -n -P show user \"$(id -un)\" format=adminlevel 2>/dev/null)\"",
      fmt::arg("scontrol", sh_quote(dir + "scontrol")), fmt::arg("sacctmgr", sh_quote(dir + "sacctmgr")));
  return rc;
}

RemoteCommand build_job_listing(const config::Config& config) {
  // The visibility facts first (without them an empty list could be read
  // as "no such job"), then every job slurmctld holds, in every state (-t
  // all: a job that already ended still proves its submit ran). The tag is
  // filtered on the answer (core::parse_job_listing), so this command holds
  // nothing but fixed text and configured paths.
  RemoteCommand rc = build_visibility_probe(config);
  rc.command += fmt::format(
      "; echo {marker}; exec {squeue} -h -a -t all -o {format}", fmt::arg("marker", sh_quote(core::kJobListingMarker)),
      fmt::arg("squeue", sh_quote(config.status.squeue)), fmt::arg("format", sh_quote(core::kJobListingFormat)));
  return rc;
}

RemoteCommand build_wrapper_probe(const config::Config& config) {
  RemoteCommand rc;
  std::string paths;
  for (auto op : {core::Op::submit, core::Op::query, core::Op::cancel}) {
    paths += " " + sh_quote(wrapper_path(config, op));
  }
  rc.command = fmt::format(
      "rc=0; for w in{}; do if [ ! -e \"$w\" ]; then echo \"missing $w\"; rc=1; "
      "elif [ ! -x \"$w\" ]; then echo \"not executable $w\"; rc=1; fi; done; "
      "if [ ! -x {} ]; then echo \"missing sudo at \"{}; rc=1; fi; exit $rc",
      paths, sh_quote(config.remote.sudo), sh_quote(config.remote.sudo));
  return rc;
}

RemoteCommand build_sudo_probe(const config::Config& config, const std::string& user) {
  RemoteCommand rc;
  std::string cmd = "rc=0";
  for (auto op : {core::Op::submit, core::Op::query, core::Op::cancel}) {
    auto w = sh_quote(wrapper_path(config, op));
    cmd += fmt::format(
        "; if {} -n -l -u {} {} >/dev/null 2>&1; then echo \"allowed \"{}; else echo \"denied \"{}; rc=1; fi",
        sh_quote(config.remote.sudo), sh_quote(user), w, w, w);
  }
  rc.command = cmd + "; exit $rc";
  return rc;
}

}  // namespace ssb::remote
