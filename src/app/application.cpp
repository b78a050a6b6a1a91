#include "ssb/app/application.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "ssb/app/commands.hpp"
#include "ssb/app/output.hpp"
#include "ssb/app/reference_docs.hpp"
#include "ssb/config/config.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/ssh/libssh.hpp"
#include "ssb/version.hpp"

namespace ssb::app {

namespace {

const char* env_value(const std::vector<std::string>& environ, const std::string& name) {
  for (const auto& e : environ) {
    if (e.size() > name.size() && e.compare(0, name.size(), name) == 0 && e[name.size()] == '=') {
      return e.c_str() + name.size() + 1;
    }
  }
  return nullptr;
}

Result<config::Config> load_layers(const std::string& cli_path, const std::vector<std::string>& overrides,
                                   const std::string& mode, const std::string& log_level,
                                   const std::vector<std::string>& environ) {
  auto path = config::resolve_path(cli_path, env_value(environ, config::kConfigPathEnv));
  auto config = config::load_file(path);
  if (!config) return config;
  if (auto st = config::apply_environment(*config, environ); !st) return st.error();
  for (const auto& o : overrides) {
    if (auto st = config::apply_override(*config, o, "command line (--set)"); !st) return st.error();
  }
  // The dedicated options come last: they override --set, the environment
  // and the file alike.
  if (!mode.empty()) {
    if (auto st = config::apply_override(*config, "client.mode=" + mode, "command line (--mode)"); !st) {
      return st.error();
    }
  }
  if (!log_level.empty()) {
    if (auto st = config::apply_override(*config, "log.level=" + log_level, "command line (--log-level)"); !st) {
      return st.error();
    }
  }
  if (auto st = config::finalize(*config); !st) return st.error();
  return config;
}

// The command line: its options, and the subcommands in the order they are
// dispatched. CLI::App does not move, so a Cli is filled in place.
struct Cli {
  using Handler = std::function<int(const config::Config&)>;

  CLI::App app{
      "slurm-ssh-bridge: runs batchspawner's Slurm commands (the slurmspawner_sbatch, _squeue and _scancel "
      "wrappers) on a Slurm login host over SSH, for JupyterHub.",
      "slurm-ssh-bridge"};
  std::string config_path;
  std::string mode;
  std::string log_level;
  std::vector<std::string> overrides;
  Options options;
  CLI::App* show_config = nullptr;
  bool reference = false;
  bool error_codes = false;
  bool man_page = false;
  bool bash_completion = false;
  // Subcommands that need the loaded configuration.
  std::vector<std::pair<CLI::App*, Handler>> commands;
};

void define_options(Cli& cli) {
  auto& app = cli.app;
  // The second line tells packagers which library the SSH side dlopens
  // (containers/jupyterhub/collect-runtime.sh reads it).
  app.set_version_flag("--version", std::string("slurm-ssh-bridge ") + kVersion + "\nlibssh: " + ssh::libssh_soname() +
                                        " (loaded at the first SSH connection)");
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option(
      "--config", cli.config_path,
      fmt::format("Configuration file (default: ${} or {})", config::kConfigPathEnv, config::kDefaultConfigPath));
  app.add_option("--user", cli.options.user, "JupyterHub user the command runs as (sudo -u NAME on the login host)");
  app.add_flag("--json", cli.options.json, "Print one JSON object instead of the wrapper's text output");
  app.add_option("--mode", cli.mode, "Override client.mode: auto, daemon or direct");
  app.add_option("--log-level", cli.log_level, "Override log.level: debug, info, warn or error");
  app.add_option("--set", cli.overrides, "Override a configuration key: SECTION.KEY=VALUE (repeatable)");
}

void define_subcommands(Cli& cli, Io& io) {
  auto& app = cli.app;
  const Options& options = cli.options;
  auto job = [&options, &io](core::Op op) {
    return [&options, &io, op](const config::Config& c) { return run_job_command(c, op, options, io); };
  };
  auto* submit = app.add_subcommand("submit", "Submit the job script read on stdin; prints the job id");
  auto* query = app.add_subcommand("query", "Print a job's state and host, as `squeue -h -j ID -o '%T %B'` does");
  query->add_option("job_id", cli.options.job_id, "Slurm job id")->required();
  auto* cancel = app.add_subcommand("cancel", "Cancel a job");
  cancel->add_option("job_id", cli.options.job_id, "Slurm job id")->required();
  auto* explain = app.add_subcommand(
      "explain", "Print what Slurm knows about one of the user's jobs: state, exit code, reason, log, expected start");
  explain->add_option("job_id", cli.options.job_id, "Slurm job id")->required();
  auto* jobs = app.add_subcommand("jobs",
                                  "List the jobs in Slurm whose comment carries this hub's submit.tag "
                                  "(ssb:TAG:TOKEN), as the service account: job id, user, state, token");
  auto* check = app.add_subcommand(
      "check", "Diagnose configuration, identity file, host key, connection, wrappers and (with --user) sudo");
  auto* serve = app.add_subcommand("serve", "Run the daemon: pooled SSH connections behind daemon.socket (foreground)");
  auto* status = app.add_subcommand("status", "Print the daemon's health as one JSON object");
  auto* metrics = app.add_subcommand(
      "metrics",
      "Print the daemon's Prometheus metrics (text exposition format; --json: as {\"ok\":true,\"metrics\":TEXT})");
  auto* request = app.add_subcommand("request", "Run one JSON protocol request read on stdin; print the response");
  cli.show_config = app.add_subcommand("config", "Print the effective configuration and where each value came from");
  cli.show_config->add_flag("--reference", cli.reference, "Print the reference of every key (Markdown) and exit");
  cli.show_config->add_flag("--error-codes", cli.error_codes,
                            "Print every error code (exit status, whether a job's state is then unknown, meaning) as "
                            "JSON and exit");
  cli.show_config->add_flag("--man-page", cli.man_page,
                            "Print the slurm-ssh-bridge(1) man page (roff), rendered from these definitions, and exit");
  cli.show_config->add_flag("--bash-completion", cli.bash_completion, "Print the bash completion script and exit");
  cli.commands = {
      {submit, job(core::Op::submit)},
      {query, job(core::Op::query)},
      {cancel, job(core::Op::cancel)},
      {explain, job(core::Op::explain)},
      {jobs, [&options, &io](const config::Config& c) { return run_jobs_command(c, options, io); }},
      {check, [&options, &io](const config::Config& c) { return run_check_command(c, options, io); }},
      {serve, [&io](const config::Config& c) { return run_serve_command(c, io); }},
      {status, [&io](const config::Config& c) { return run_status_command(c, io); }},
      {metrics, [&options, &io](const config::Config& c) { return run_metrics_command(c, options, io); }},
      {request, [&io](const config::Config& c) { return run_request_command(c, io); }},
      {cli.show_config,
       [&io](const config::Config& c) {
         io.out << config::describe(c);
         return 0;
       }},
  };
}

// The exit status when parsing ends the run (help, version, a usage error).
std::optional<int> parse(Cli& cli, int argc, char** argv, Io& io) {
  try {
    cli.app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.app.exit(e, io.out, io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.app.exit(e, io.out, io.err);
  } catch (const CLI::CallForVersion& e) {
    return cli.app.exit(e, io.out, io.err);
  } catch (const CLI::ParseError& e) {
    return print_failure(Error{Errc::usage, fmt::format("{}; run `slurm-ssh-bridge --help`", e.what())},
                         cli.options.json, io.out, io.err);
  }
  return std::nullopt;
}

// `config --reference`, `--error-codes`, `--man-page` and
// `--bash-completion` need no configuration.
std::optional<int> run_without_config(const Cli& cli, Io& io) {
  if (*cli.show_config && cli.reference) {
    io.out << config::reference_markdown();
    return 0;
  }
  if (*cli.show_config && cli.error_codes) {
    io.out << protocol::to_line(protocol::error_codes_json()) << '\n';
    return 0;
  }
  if (*cli.show_config && cli.man_page) {
    io.out << render_man_page(cli.app);
    return 0;
  }
  if (*cli.show_config && cli.bash_completion) {
    io.out << render_bash_completion(cli.app);
    return 0;
  }
  return std::nullopt;
}

}  // namespace

int run(int argc, char** argv, Io io) {
  Cli cli;
  define_options(cli);
  define_subcommands(cli, io);
  if (auto exit = parse(cli, argc, argv, io)) return *exit;
  if (auto exit = run_without_config(cli, io)) return *exit;

  auto config = load_layers(cli.config_path, cli.overrides, cli.mode, cli.log_level, io.environ);
  if (!config) return print_failure(config.error(), cli.options.json, io.out, io.err);
  for (const auto& [subcommand, handler] : cli.commands) {
    if (*subcommand) return handler(*config);
  }
  return print_failure(Error{Errc::usage, "no subcommand given; run `slurm-ssh-bridge --help`"}, cli.options.json,
                       io.out, io.err);
}

}  // namespace ssb::app
