#include "ssb/app/reference_docs.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/util/result.hpp"
#include "ssb/version.hpp"

namespace ssb::app {

namespace {

// Text for a roff line: backslashes and hyphens escaped, and a leading
// '.' or '\'' (which roff reads as a request) neutralised.
std::string roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out.insert(0, "\\&");
  return out;
}

bool is_flag(const CLI::Option* o) { return o->get_type_size_max() == 0; }

// "--set SECTION.KEY=VALUE" style synopsis of one option, as --help names it.
std::string option_label(const CLI::Option* o) {
  std::string names = o->get_name(false, true);
  for (auto at = names.find(','); at != std::string::npos; at = names.find(',', at + 2)) names.insert(at + 1, " ");
  std::string label = "\\fB" + roff(names) + "\\fR";
  if (!is_flag(o)) label += " \\fI" + roff(o->get_type_name()) + "\\fR";
  return label;
}

std::vector<const CLI::Option*> named_options(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return o->nonpositional(); });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app) {
  return app.get_options([](const CLI::Option* o) { return !o->nonpositional(); });
}

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App*) { return true; });
}

std::string env_name(const std::string& key) {
  std::string out = "SLURM_SSH_BRIDGE_";
  for (char c : key) out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

void options_section(std::string& m, const std::vector<const CLI::Option*>& options) {
  for (const auto* o : options) {
    m += ".TP\n" + option_label(o) + "\n" + roff(o->get_description()) + "\n";
  }
}

void commands_section(std::string& m, const CLI::App& app) {
  m += ".SH COMMANDS\n";
  for (const auto* sub : subcommands(app)) {
    std::string usage = "\\fB" + roff(sub->get_name()) + "\\fR";
    for (const auto* p : positionals(*sub)) usage += " \\fI" + roff(p->get_name(true)) + "\\fR";
    m += ".SS " + usage + "\n" + roff(sub->get_description()) + "\n";
    for (const auto* p : positionals(*sub)) {
      m += ".TP\n\\fI" + roff(p->get_name(true)) + "\\fR\n" + roff(p->get_description()) + "\n";
    }
    std::vector<const CLI::Option*> own;
    for (const auto* o : named_options(*sub)) {
      if (o->get_name() != "--help") own.push_back(o);
    }
    options_section(m, own);
  }
}

void configuration_section(std::string& m) {
  m += ".SH CONFIGURATION\n"
       "Settings are layered: built-in defaults, then the TOML file (\\fB\\-\\-config\\fR, else "
       "\\fB$SLURM_SSH_BRIDGE_CONFIG\\fR, else \\fI" +
       roff(config::kDefaultConfigPath) +
       "\\fR), then \\fBSLURM_SSH_BRIDGE_\\fISECTION\\fB_\\fIKEY\\fR environment variables, then "
       "\\fB\\-\\-set\\fR and \\fB\\-\\-mode\\fR. \\fBslurm\\-ssh\\-bridge config\\fR prints every effective value "
       "and where it came from. The keys (\\fIsection.key\\fR (type, default)):\n";
  for (const auto& k : config::key_reference()) {
    m += ".TP\n\\fB" + roff(k.name) + "\\fR (" + roff(k.type) + ", default " + roff(k.default_text) + ")\n" +
         roff(k.help) + "\n";
  }
}

void environment_section(std::string& m) {
  m += ".SH ENVIRONMENT\n.TP\n\\fB" + roff(config::kConfigPathEnv) + "\\fR\nThe configuration file to read.\n";
  m += ".TP\n\\fBSLURM_SSH_BRIDGE_\\fISECTION\\fB_\\fIKEY\\fR\n"
       "Overrides one key; an unknown name is an error. One per key:\n.RS\n";
  for (const auto& k : config::key_reference()) m += ".br\n\\fB" + roff(env_name(k.name)) + "\\fR\n";
  m += ".RE\n";
  m += ".PP\n\\fBsubmit\\fR forwards to the job only the variables that \\fBenv.forward\\fR lists, taken from the "
       "bridge's own environment (batchspawner's \\fBJUPYTERHUB_*\\fR); their values never appear on a command "
       "line.\n";
}

void exit_status_section(std::string& m) {
  m += ".SH EXIT STATUS\n"
       "When the wrapper ran, the exit status is the wrapper's. When the bridge failed, it prints one line "
       "\\fBslurm\\-ssh\\-bridge: \\fICODE\\fB: \\fImessage\\fR on standard error (or an \\fBerror\\fR object with "
       "\\fB\\-\\-json\\fR) and exits with the status of its code. A code marked \\fIstate unknown\\fR says nothing "
       "about the job: keep polling, the job may still run.\n";
  for (const auto& e : all_error_codes()) {
    m += fmt::format(".TP\n\\fB{}\\fR (exit {}{})\n{}\n", roff(e.name), e.exit_status,
                     e.state_unknown ? ", state unknown" : "", roff(e.meaning));
  }
}

}  // namespace

std::string render_man_page(const CLI::App& app) {
  std::string m;
  m += fmt::format(".TH SLURM\\-SSH\\-BRIDGE 1 \"\" \"slurm\\-ssh\\-bridge {}\" \"User Commands\"\n", kVersion);
  m += ".SH NAME\nslurm\\-ssh\\-bridge \\- run batchspawner's Slurm commands on a login host over pooled SSH\n";
  m += ".SH SYNOPSIS\n.B slurm\\-ssh\\-bridge\n[\\fIoptions\\fR] \\fIcommand\\fR [\\fIargs\\fR]\n";
  std::string what = app.get_description();
  if (what.rfind("slurm-ssh-bridge: ", 0) == 0) what = what.substr(18);
  m += ".SH DESCRIPTION\n\\fBslurm\\-ssh\\-bridge\\fR " + roff(what) +
       "\n.PP\nJupyterHub's batchspawner runs it as its exec prefix: \\fBsubmit\\fR, \\fBquery\\fR and "
       "\\fBcancel\\fR print exactly what the \\fBslurmspawner_sbatch\\fR, \\fBslurmspawner_squeue\\fR and "
       "\\fBslurmspawner_scancel\\fR wrappers print, run as \\fBsudo \\-n \\-u\\fR \\fIuser\\fR by the service "
       "account on the login host. \\fBexplain\\fR tells what Slurm knows about one of the user's jobs (state, "
       "exit code, reason, log, expected start), asked as the service account with \\fBscontrol\\fR, then "
       "\\fBsacct\\fR. \\fBserve\\fR keeps a pool of SSH connections open behind a Unix socket; the "
       "other commands hand their request to it (\\fBclient.mode\\fR auto, daemon) or connect themselves "
       "(direct).\n";
  m += ".SH OPTIONS\n";
  options_section(m, named_options(app));
  commands_section(m, app);
  configuration_section(m);
  environment_section(m);
  exit_status_section(m);
  m += ".SH FILES\n.TP\n\\fI" + roff(config::kDefaultConfigPath) +
       "\\fR\nThe configuration file (a conffile in the Debian package).\n"
       ".TP\n\\fI/run/slurm\\-ssh\\-bridge/bridge.sock\\fR\nThe daemon's socket under the packaged systemd unit "
       "(\\fBdaemon.socket\\fR).\n"
       ".TP\n\\fI/etc/slurm\\-ssh\\-bridge/id_ed25519\\fR, \\fI/etc/slurm\\-ssh\\-bridge/known_hosts\\fR\n"
       "Where the packaged example configuration expects the service account's private key (mode 0600, owned by "
       "the daemon's user) and the login host's key.\n";
  m += ".SH EXAMPLES\n.nf\n"
       "slurm\\-ssh\\-bridge check \\-\\-user alice\n"
       "slurm\\-ssh\\-bridge \\-\\-user alice submit < job.sh\n"
       "slurm\\-ssh\\-bridge \\-\\-user alice query 42\n"
       "slurm\\-ssh\\-bridge \\-\\-json \\-\\-user alice cancel 42\n"
       "slurm\\-ssh\\-bridge \\-\\-user alice explain 42\n"
       "systemctl status slurm\\-ssh\\-bridge\n.fi\n";
  m += ".SH SEE ALSO\n\\fBsbatch\\fR(1), \\fBsqueue\\fR(1), \\fBscancel\\fR(1), \\fBscontrol\\fR(1), \\fBsacct\\fR(1), "
       "\\fBsudo\\fR(8), \\fBsshd\\fR(8)\n";
  return m;
}

std::string render_bash_completion(const CLI::App& app) {
  auto words = [](const std::vector<const CLI::Option*>& options) {
    std::string w;
    for (const auto* o : options) {
      std::string names = o->get_name(false, true);
      std::replace(names.begin(), names.end(), ',', ' ');
      w += (w.empty() ? "" : " ") + names;
    }
    return w;
  };
  std::string keys;
  for (const auto& k : config::key_reference()) keys += (keys.empty() ? "" : " ") + k.name + "=";
  std::string subs;
  std::string cases;
  for (const auto* sub : subcommands(app)) {
    subs += (subs.empty() ? "" : " ") + sub->get_name();
    std::vector<const CLI::Option*> own;  // -h/--help comes with the global options
    for (const auto* o : named_options(*sub)) {
      if (o->get_name() != "--help") own.push_back(o);
    }
    cases += fmt::format("        {}) opts=\"{} {}\" ;;\n", sub->get_name(), words(own), words(named_options(app)));
  }
  return fmt::format(
      "# bash completion for slurm-ssh-bridge {version} (generated by `slurm-ssh-bridge config --bash-completion`)\n"
      "_slurm_ssh_bridge() {{\n"
      "    local cur prev sub='' opts w\n"
      "    cur=${{COMP_WORDS[COMP_CWORD]}}\n"
      "    prev=${{COMP_WORDS[COMP_CWORD-1]}}\n"
      "    case $prev in\n"
      "        --config) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
      "        --mode) COMPREPLY=($(compgen -W 'auto daemon direct' -- \"$cur\")); return ;;\n"
      "        --set) compopt -o nospace 2>/dev/null; COMPREPLY=($(compgen -W '{keys}' -- \"$cur\")); return ;;\n"
      "        --user) return ;;\n"
      "    esac\n"
      "    for w in \"${{COMP_WORDS[@]:1:COMP_CWORD-1}}\"; do\n"
      "        case $w in {alts}) sub=$w; break ;; esac\n"
      "    done\n"
      "    case $sub in\n"
      "        '') opts=\"{global} {subs}\" ;;\n"
      "{cases}"
      "    esac\n"
      "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
      "}}\n"
      "complete -F _slurm_ssh_bridge slurm-ssh-bridge\n",
      fmt::arg("version", kVersion), fmt::arg("keys", keys),
      fmt::arg("alts",
               [&] {
                 std::string a = subs;
                 std::replace(a.begin(), a.end(), ' ', '|');
                 return a;
               }()),
      fmt::arg("global", words(named_options(app))), fmt::arg("subs", subs), fmt::arg("cases", cases));
}

}  // namespace ssb::app
