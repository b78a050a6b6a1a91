#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>

#include "ssb/remote/command.hpp"

using namespace ssb;
using namespace ssb::remote;

namespace {

config::Config cfg() {
  config::Config c;
  c.ssh.host = "h";
  c.remote.wrappers_dir = "/opt/w/bin/";
  return c;
}

// Runs `script` with /bin/sh -c, feeding `input` on stdin; returns stdout.
std::string run_sh(const std::string& script, const std::string& input = {}, int* status = nullptr,
                   const std::string& shell = "/bin/sh", bool merge_stderr = false) {
  char in_path[] = "/tmp/ssb-unit-in-XXXXXX";
  int fd = mkstemp(in_path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  close(fd);
  std::string cmd = shell + " -c " + sh_quote(script) + " < " + in_path + (merge_stderr ? " 2>&1" : "");
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int st = pclose(p);
  if (status) *status = WEXITSTATUS(st);
  unlink(in_path);
  return out;
}

// A table, laid out by hand:
// clang-format off
const std::vector<std::string> kNasty{
    "", "plain", "with space", "it's", "'", "''", "\"double\"", "$HOME", "$(id)", "`id`", "a\\b", "\\",
    "line1\nline2", "tab\tx", "*", "?", "[a]", "~", "{a,b}", "!", ";", "&&", "|", "<>", "#comment",
    "{\"json\": [1, \"x\\\"y\"]}", "\xc3\xa9t\xc3\xa9", "-n", "--", "%s%n", "a\rb"};
// clang-format on

}  // namespace

TEST_CASE("sh_quote round-trips through a real /bin/sh") {
  for (const auto& s : kNasty) {
    INFO(s);
    CHECK(run_sh("printf '%s' " + sh_quote(s)) == s);
  }
}

TEST_CASE("wrapper paths") {
  auto c = cfg();
  CHECK(wrapper_path(c, core::Op::submit) == "/opt/w/bin/slurmspawner_sbatch");
  CHECK(wrapper_path(c, core::Op::query) == "/opt/w/bin/slurmspawner_squeue");
  CHECK(wrapper_path(c, core::Op::cancel) == "/opt/w/bin/slurmspawner_scancel");
}

TEST_CASE("query command: job id in the environment, exact shape") {
  auto c = cfg();
  core::Request r{core::Op::query, "alice.proj1", "42", "", {}};
  auto rc = build(r, c);
  CHECK(rc.command ==
        "SLURMSPAWNER_JOB_ID='42'; export SLURMSPAWNER_JOB_ID; exec '/usr/bin/sudo' -n -u 'alice.proj1' -- "
        "'/opt/w/bin/slurmspawner_squeue'");
  CHECK(rc.stdin_data.empty());
  CHECK(rc.env_requests.empty());
}

TEST_CASE("submit command (stdin method): values only on stdin, never in the command") {
  auto c = cfg();
  core::Request r{core::Op::submit,
                  "alice.proj1",
                  "",
                  "#!/bin/bash\necho hi\n",
                  {{"JUPYTERHUB_API_TOKEN", "s3cr3t'$(x)"}, {"JUPYTERHUB_X", "v"}}};
  r.token = "0123456789abcdef0123456789abcdef";
  auto rc = build(r, c);
  CHECK(rc.command.find("s3cr3t") == std::string::npos);
  CHECK(rc.command.find("'/usr/bin/sudo' -n -u 'alice.proj1' -- '/opt/w/bin/slurmspawner_sbatch'") !=
        std::string::npos);
  using namespace std::string_literals;
  CHECK(rc.stdin_data ==
        "JUPYTERHUB_API_TOKEN=s3cr3t'$(x)\0JUPYTERHUB_X=v\0\0#!/bin/bash\n"
        "#SBATCH --comment=ssb:jupyterhub:0123456789abcdef0123456789abcdef\necho hi\n"s);
  CHECK(rc.env_requests.empty());
}

TEST_CASE("submit command (stdin method): the remote snippet exports values intact and passes the script on") {
  // Run the real command under both kinds of login shell (bash runs the
  // loop itself; dash, Debian's /bin/sh, execs remote.bash for it),
  // replacing sudo+wrapper by a probe that prints the environment it got and
  // its stdin.
  auto c = cfg();
  c.remote.sudo = "/bin/sh";  // "sh -n -u USER -- PROBE" would not work; use a probe dir instead
  char dir[] = "/tmp/ssb-unit-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string probe = std::string(dir) + "/fake_sudo";
  {
    std::ofstream f(probe);
    // fake sudo: skip "-n -u USER --", then run the wrapper
    f << "#!/bin/sh\nshift 4\nexec \"$@\"\n";
  }
  std::string wrapper_dir = std::string(dir) + "/bin";
  REQUIRE(system(("mkdir -p " + wrapper_dir).c_str()) == 0);
  {
    std::ofstream f(wrapper_dir + "/slurmspawner_sbatch");
    f << "#!/bin/sh\nprintf 'TOKEN=[%s]\\nX=[%s]\\n' \"$JUPYTERHUB_API_TOKEN\" \"$JUPYTERHUB_X\"\ncat\n";
  }
  // remote.bash: counts its starts, then runs the real bash.
  std::string counted_bash = std::string(dir) + "/counted_bash";
  std::string starts = std::string(dir) + "/bash_starts";
  {
    std::ofstream f(counted_bash);
    f << "#!/bin/sh\necho x >> '" << starts << "'\nexec /bin/bash \"$@\"\n";
  }
  REQUIRE(system(("chmod +x " + probe + " " + counted_bash + " " + wrapper_dir + "/slurmspawner_sbatch").c_str()) == 0);
  c.remote.sudo = probe;
  c.remote.wrappers_dir = wrapper_dir;
  c.remote.bash = counted_bash;
  auto count_starts = [&] {
    std::ifstream f(starts);
    std::string line;
    int n = 0;
    while (std::getline(f, line)) ++n;
    return n;
  };
  for (const std::string shell : {"/bin/sh", "/bin/bash"}) {
    INFO("login shell " << shell);
    int before = count_starts();
    for (const auto& value : kNasty) {
      INFO(value);
      core::Request r{
          core::Op::submit, "nobody", "", "SCRIPT 'q' $x\n", {{"JUPYTERHUB_API_TOKEN", value}, {"JUPYTERHUB_X", "y"}}};
      auto rc = build(r, c);
      int status = -1;
      auto out = run_sh(rc.command, rc.stdin_data, &status, shell);
      CHECK(status == 0);
      // The builder puts the submit token after the first line (here no
      // shebang: validate() refuses that before anything is built).
      CHECK(out == "TOKEN=[" + value + "]\nX=[y]\nSCRIPT 'q' $x\n#SBATCH --comment=ssb:jupyterhub:\n");
    }
    int started = count_starts() - before;
    if (shell == "/bin/bash") {
      CHECK(started == 0);  // bash as login shell: no second bash
    } else {
      CHECK(started == static_cast<int>(kNasty.size()));  // dash: one remote.bash per submit
    }
  }
  REQUIRE(system(("rm -rf " + std::string(dir)).c_str()) == 0);
}

namespace {

// A fake sudo ("-n -u USER --" skipped) and a wrapper printing the identity
// it runs with, in a temporary directory removed by the destructor.
struct IdentityProbe {
  std::string dir;
  IdentityProbe() {
    char tmpl[] = "/tmp/ssb-unit-id-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    REQUIRE(system(("mkdir -p " + dir + "/bin").c_str()) == 0);
    std::ofstream(dir + "/fake_sudo") << "#!/bin/sh\nshift 4\nexec \"$@\"\n";
    std::ofstream(dir + "/bin/slurmspawner_sbatch")
        << "#!/bin/sh\nprintf 'USER=%s LOGNAME=%s HOME=%s SHELL=%s\\n' \"$USER\" \"$LOGNAME\" \"$HOME\" \"$SHELL\"\n";
    REQUIRE(system(("chmod +x " + dir + "/fake_sudo " + dir + "/bin/slurmspawner_sbatch").c_str()) == 0);
  }
  ~IdentityProbe() { (void)system(("rm -rf " + dir).c_str()); }
  config::Config config(config::EnvMethod method) const {
    auto c = cfg();
    c.remote.sudo = dir + "/fake_sudo";
    c.remote.wrappers_dir = dir + "/bin";
    c.env.method = method;
    return c;
  }
};

// What getent says, as "USER=... LOGNAME=... HOME=... SHELL=...".
std::string passwd_identity(const std::string& user) {
  auto line = run_sh("getent passwd " + sh_quote(user));
  std::vector<std::string> f;
  std::string field;
  for (char ch : line) {
    if (ch == ':' || ch == '\n') {
      f.push_back(field);
      field.clear();
    } else {
      field += ch;
    }
  }
  REQUIRE(f.size() >= 7);
  return "USER=" + user + " LOGNAME=" + user + " HOME=" + f[5] + " SHELL=" + f[6] + "\n";
}

}  // namespace

TEST_CASE("submit command: the job's USER, LOGNAME, HOME, SHELL come from the login host's passwd entry") {
  // "nobody" differs from the test process's own identity (root or a
  // developer) in all four values, so an inherited value would show.
  IdentityProbe probe;
  const std::string expected = passwd_identity("nobody");
  for (auto method : {config::EnvMethod::stdin_records, config::EnvMethod::setenv}) {
    for (const std::string shell : {"/bin/sh", "/bin/bash"}) {
      INFO("method " << static_cast<int>(method) << ", login shell " << shell);
      auto c = probe.config(method);
      core::Request r{core::Op::submit, "nobody", "", "S\n", {}};
      for (const std::string hub_home : {"", "/nonexistent", "/home/elsewhere"}) {
        INFO("hub HOME " << hub_home);
        r.hub_home = hub_home;
        auto rc = build(r, c);
        int status = -1;
        // A service account's own values must not leak through.
        auto out = run_sh(
            "USER=jupyterspawner LOGNAME=jupyterspawner HOME=/home/jupyterspawner SHELL=/bin/zsh; "
            "export USER LOGNAME HOME SHELL; " +
                rc.command,
            rc.stdin_data, &status, shell, /*merge_stderr=*/true);
        CHECK(status == 0);
        const bool differs = !hub_home.empty() && hub_home != "/nonexistent";
        if (differs) {
          CHECK(out == "slurm-ssh-bridge: notice: the hub set HOME=" + hub_home +
                           " for nobody; the login host's passwd entry says /nonexistent, which the job uses\n" +
                           expected);
        } else {
          CHECK(out == expected);
        }
      }
    }
  }
}

TEST_CASE("submit command: a user without a passwd entry on the login host fails before sudo") {
  IdentityProbe probe;
  auto c = probe.config(config::EnvMethod::stdin_records);
  core::Request r{core::Op::submit, "no-such-user.proj9", "", "S\n", {}};
  auto rc = build(r, c);
  int status = -1;
  auto out = run_sh(rc.command, rc.stdin_data, &status, "/bin/sh", /*merge_stderr=*/true);
  CHECK(status == 1);
  CHECK(out ==
        "slurm-ssh-bridge: remote: user no-such-user.proj9 has no passwd entry on the login host (getent passwd "
        "failed); the job cannot run as them\n");
}

TEST_CASE("submit command (setenv method): env as SSH requests") {
  auto c = cfg();
  c.env.method = config::EnvMethod::setenv;
  core::Request r{core::Op::submit, "bob", "", "S", {{"JUPYTERHUB_API_TOKEN", "t"}}};
  auto rc = build(r, c);
  const std::string tail = "exec '/usr/bin/sudo' -n -u 'bob' -- '/opt/w/bin/slurmspawner_sbatch'";
  REQUIRE(rc.command.size() > tail.size());
  CHECK(rc.command.compare(rc.command.size() - tail.size(), tail.size(), tail) == 0);
  CHECK(rc.command.rfind("ssb_pw=$(getent passwd 'bob')", 0) == 0);
  CHECK(rc.stdin_data == "S\n#SBATCH --comment=ssb:jupyterhub:\n");  // the token line after the first
  REQUIRE(rc.env_requests.size() == 1);
  CHECK(rc.env_requests[0].first == "JUPYTERHUB_API_TOKEN");
}

TEST_CASE("probe commands quote their parts") {
  auto c = cfg();
  c.remote.wrappers_dir = "/opt/it's here";
  auto w = build_wrapper_probe(c);
  CHECK(w.command.find("'/opt/it'\\''s here/slurmspawner_sbatch'") != std::string::npos);
  auto s = build_sudo_probe(c, "alice.proj1");
  CHECK(s.command.find("'/usr/bin/sudo' -n -l -u 'alice.proj1'") != std::string::npos);
}

TEST_CASE("command: the coalesced squeue is the service account's own, fixed form, ids validated") {
  auto c = cfg();
  auto rc = build_status_batch(c, {"12", "345", "6"});
  REQUIRE(rc.ok());
  CHECK(rc->command == "exec 'squeue' -h -j '12,345,6' -o '%i|%u|%T|%B|%r|%S'");
  CHECK(rc->stdin_data.empty());
  CHECK(rc->env_requests.empty());
  CHECK(rc->command.find("sudo") == std::string::npos);
  c.status.squeue = "/opt/slurm/bin/squeue";
  CHECK(build_status_batch(c, {"1"})->command == "exec '/opt/slurm/bin/squeue' -h -j '1' -o '%i|%u|%T|%B|%r|%S'");
  for (const char* bad : {"12;cluster", "", "1 2", "01", "1,2", "$(id)", "-1", "abc", "2147483648"}) {
    auto r = build_status_batch(c, {"5", bad});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::invalid_job_id);
  }
  CHECK_FALSE(build_status_batch(c, {}).ok());
}

TEST_CASE("command: the visibility probe prints PrivateData and the AdminLevel, nothing else varies") {
  auto c = cfg();
  auto rc = build_visibility_probe(c);
  CHECK(rc.command.find("'scontrol' show config") != std::string::npos);
  CHECK(rc.command.find("'sacctmgr' -n -P show user") != std::string::npos);
  c.status.squeue = "/opt/slurm/bin/squeue";
  rc = build_visibility_probe(c);
  CHECK(rc.command.find("'/opt/slurm/bin/scontrol' show config") != std::string::npos);
  // Run it with stand-ins for scontrol and sacctmgr: the two lines it prints.
  char dir[] = "/tmp/ssb-unit-probe-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string d = dir;
  {
    std::ofstream(d + "/scontrol") << "#!/bin/sh\necho 'Foo = 1'\necho 'PrivateData             = jobs,usage'\n";
    std::ofstream(d + "/sacctmgr") << "#!/bin/sh\necho Operator\n";
  }
  REQUIRE(std::system(("chmod +x " + d + "/scontrol " + d + "/sacctmgr").c_str()) == 0);
  c.status.squeue = d + "/squeue";
  int status = -1;
  auto out = run_sh(build_visibility_probe(c).command, {}, &status);
  CHECK(status == 0);
  CHECK(out == "privatedata=jobs,usage\nadminlevel=Operator\n");
  REQUIRE(std::system(("rm -rf " + d).c_str()) == 0);
}

TEST_CASE("explain command: scontrol then sacct as the service account, exact shape") {
  auto c = cfg();
  core::Request r{core::Op::explain, "alice.proj1", "42", "", {}};
  auto rc = build(r, c);
  CHECK(rc.command ==
        "echo 'slurm-ssh-bridge-explain: scontrol'; '/usr/bin/scontrol' -o show job '42' 2>&1 && exit 0; "
        "echo 'slurm-ssh-bridge-explain: sacct'; exec '/usr/bin/sacct' -n -P -X -j '42' -o "
        "JobID,User,State,ExitCode,Reason,Start 2>&1");
  CHECK(rc.command.find("alice") == std::string::npos);  // no user-controlled text, no sudo
  CHECK(rc.command.find("sudo") == std::string::npos);
  CHECK(rc.stdin_data.empty());
  CHECK(rc.env_requests.empty());
  core::Request cl{core::Op::explain, "alice.proj1", "42;hpc-1", "", {}};
  auto rcl = build(cl, c);
  CHECK(rcl.command.find("'/usr/bin/scontrol' -M 'hpc-1' -o show job '42'") != std::string::npos);
  CHECK(rcl.command.find("'/usr/bin/sacct' -M 'hpc-1' -n -P -X -j '42'") != std::string::npos);
}

TEST_CASE("explain command: real sh runs scontrol, and sacct only when scontrol fails") {
  // Stand-ins for the two tools print their arguments; the real ones run in
  // the integration suites.
  char dir[] = "/tmp/ssb-unit-explain-XXXXXX";
  REQUIRE(mkdtemp(dir));
  const std::string d = dir;
  auto tool = [&](const std::string& name, const std::string& body) {
    std::ofstream(d + "/" + name) << "#!/bin/sh\n" << body << "\n";
    REQUIRE(chmod((d + "/" + name).c_str(), 0755) == 0);
  };
  auto c = cfg();
  c.remote.scontrol = d + "/scontrol";
  c.remote.sacct = d + "/sacct";
  core::Request r{core::Op::explain, "alice.proj1", "42", "", {}};
  tool("scontrol", "echo \"JobId=$4 JobState=RUNNING\"");
  tool("sacct", "echo sacct-ran");
  int status = -1;
  auto out = run_sh(build(r, c).command, "", &status);
  CHECK(status == 0);
  CHECK(out == "slurm-ssh-bridge-explain: scontrol\nJobId=42 JobState=RUNNING\n");
  tool("scontrol", "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1");
  tool("sacct", "echo \"$5|alice|FAILED|1:0|None|Unknown\"; exit 0");
  out = run_sh(build(r, c).command, "", &status);
  CHECK(status == 0);
  CHECK(out ==
        "slurm-ssh-bridge-explain: scontrol\nslurm_load_jobs error: Invalid job id specified\n"
        "slurm-ssh-bridge-explain: sacct\n42|alice|FAILED|1:0|None|Unknown\n");
  tool("sacct", "echo 'Slurm accounting storage is disabled' >&2; exit 1");
  out = run_sh(build(r, c).command, "", &status);
  CHECK(status == 1);
  CHECK(out.find("Slurm accounting storage is disabled") != std::string::npos);
  for (const char* f : {"scontrol", "sacct"}) unlink((d + "/" + f).c_str());
  rmdir(dir);
}
