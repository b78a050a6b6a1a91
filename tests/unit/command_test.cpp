#include <catch2/catch.hpp>

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
                   const std::string& shell = "/bin/sh") {
  char in_path[] = "/tmp/ssb-unit-in-XXXXXX";
  int fd = mkstemp(in_path);
  REQUIRE(fd >= 0);
  REQUIRE(write(fd, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  close(fd);
  std::string cmd = shell + " -c " + sh_quote(script) + " < " + in_path;
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

const std::vector<std::string> kNasty{
    "", "plain", "with space", "it's", "'", "''", "\"double\"", "$HOME", "$(id)", "`id`", "a\\b", "\\",
    "line1\nline2", "tab\tx", "*", "?", "[a]", "~", "{a,b}", "!", ";", "&&", "|", "<>", "#comment",
    "{\"json\": [1, \"x\\\"y\"]}", "\xc3\xa9t\xc3\xa9", "-n", "--", "%s%n", "a\rb"};

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
  core::Request r{core::Op::submit, "alice.proj1", "", "#!/bin/bash\necho hi\n",
                  {{"JUPYTERHUB_API_TOKEN", "s3cr3t'$(x)"}, {"JUPYTERHUB_X", "v"}}};
  auto rc = build(r, c);
  CHECK(rc.command.find("s3cr3t") == std::string::npos);
  CHECK(rc.command.find("'/usr/bin/sudo' -n -u 'alice.proj1' -- '/opt/w/bin/slurmspawner_sbatch'") !=
        std::string::npos);
  using namespace std::string_literals;
  CHECK(rc.stdin_data == "JUPYTERHUB_API_TOKEN=s3cr3t'$(x)\0JUPYTERHUB_X=v\0\0#!/bin/bash\necho hi\n"s);
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
      core::Request r{core::Op::submit, "alice", "", "SCRIPT 'q' $x\n", {{"JUPYTERHUB_API_TOKEN", value},
                                                                          {"JUPYTERHUB_X", "y"}}};
      auto rc = build(r, c);
      int status = -1;
      auto out = run_sh(rc.command, rc.stdin_data, &status, shell);
      CHECK(status == 0);
      CHECK(out == "TOKEN=[" + value + "]\nX=[y]\nSCRIPT 'q' $x\n");
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

TEST_CASE("submit command (setenv method): env as SSH requests") {
  auto c = cfg();
  c.env.method = config::EnvMethod::setenv;
  core::Request r{core::Op::submit, "bob", "", "S", {{"JUPYTERHUB_API_TOKEN", "t"}}};
  auto rc = build(r, c);
  CHECK(rc.command == "exec '/usr/bin/sudo' -n -u 'bob' -- '/opt/w/bin/slurmspawner_sbatch'");
  CHECK(rc.stdin_data == "S");
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
