// The man page and the completion are rendered from the CLI definition; these
// tests hold them against what `--help` prints, so a subcommand or option
// added to the CLI and missing from either fails here.
#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ssb/app/application.hpp"
#include "ssb/config/config.hpp"
#include "ssb/util/result.hpp"

using namespace ssb;

namespace {

struct Run {
  int exit = -1;
  std::string out;
  std::string err;
};

Run run(std::vector<std::string> args) {
  args.insert(args.begin(), "slurm-ssh-bridge");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::istringstream in;
  std::ostringstream out;
  std::ostringstream err;
  Run r;
  r.exit = app::run(static_cast<int>(argv.size()), argv.data(), app::Io{in, out, err, {}});
  r.out = out.str();
  r.err = err.str();
  return r;
}

// The subcommand names in `--help`'s "Subcommands:" list.
std::vector<std::string> help_subcommands() {
  auto help = run({"--help"}).out;
  std::vector<std::string> names;
  auto at = help.find("Subcommands:");
  REQUIRE(at != std::string::npos);
  std::istringstream lines(help.substr(at));
  std::string line;
  std::getline(lines, line);
  std::regex row(R"(^  (\w+)\s)");
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) names.push_back(m[1]);
  }
  return names;
}

// The long option names in one help text.
std::set<std::string> long_options(const std::string& help) {
  std::set<std::string> names;
  std::regex opt(R"((--[a-z][a-z-]*))");
  for (auto it = std::sregex_iterator(help.begin(), help.end(), opt); it != std::sregex_iterator(); ++it) {
    names.insert((*it)[1]);
  }
  return names;
}

std::string roff_escaped(std::string text) {
  std::string out;
  for (char c : text) out += c == '-' ? std::string("\\-") : std::string(1, c);
  return out;
}

}  // namespace

TEST_CASE("reference docs: the man page names every subcommand and option that --help lists") {
  auto man = run({"config", "--man-page"});
  REQUIRE(man.exit == 0);
  auto subs = help_subcommands();
  REQUIRE(subs.size() >= 8);
  for (const auto& sub : subs) {
    INFO(sub);
    CHECK(man.out.find(".SS \\fB" + roff_escaped(sub) + "\\fR") != std::string::npos);
    for (const auto& opt : long_options(run({sub, "--help"}).out)) {
      INFO(opt);
      CHECK(man.out.find(roff_escaped(opt)) != std::string::npos);
    }
  }
  for (const auto& opt : long_options(run({"--help"}).out)) {
    INFO(opt);
    CHECK(man.out.find(roff_escaped(opt)) != std::string::npos);
  }
}

TEST_CASE("reference docs: the man page lists every error code, key and environment variable") {
  auto man = run({"config", "--man-page"}).out;
  for (const auto& e : all_error_codes()) {
    INFO(e.name);
    CHECK(man.find(".TP\n\\fB" + roff_escaped(std::string(e.name)) + "\\fR (exit " + std::to_string(e.exit_status)) !=
          std::string::npos);
  }
  for (const auto& k : config::key_reference()) {
    INFO(k.name);
    CHECK(man.find("\\fB" + roff_escaped(k.name) + "\\fR (") != std::string::npos);
    std::string env = "SLURM_SSH_BRIDGE_";
    for (char c : k.name) env += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    CHECK(man.find(roff_escaped(env)) != std::string::npos);
  }
}

TEST_CASE("reference docs: no line of the man page starts a roff request by accident") {
  auto man = run({"config", "--man-page"}).out;
  std::istringstream lines(man);
  std::string line;
  std::regex request(R"(^\.(TH|SH|SS|TP|PP|RS|RE|br|nf|fi|B)( |$))");
  while (std::getline(lines, line)) {
    INFO(line);
    if (!line.empty() && (line[0] == '.' || line[0] == '\'')) CHECK(std::regex_search(line, request));
  }
}

TEST_CASE("reference docs: the bash completion offers every subcommand and each one's options") {
  auto comp = run({"config", "--bash-completion"});
  REQUIRE(comp.exit == 0);
  CHECK(comp.out.find("complete -F _slurm_ssh_bridge slurm-ssh-bridge") != std::string::npos);
  for (const auto& sub : help_subcommands()) {
    INFO(sub);
    auto row = comp.out.find("        " + sub + ") opts=\"");
    REQUIRE(row != std::string::npos);
    auto line = comp.out.substr(row, comp.out.find('\n', row) - row);
    for (const auto& opt : long_options(run({sub, "--help"}).out)) {
      INFO(opt);
      CHECK(line.find(opt) != std::string::npos);
    }
  }
  for (const auto& k : config::key_reference()) CHECK(comp.out.find(k.name + "=") != std::string::npos);
}
