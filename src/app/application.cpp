#include "ssb/app/application.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>

#include "ssb/app/commands.hpp"
#include "ssb/app/output.hpp"
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
                                   const std::string& mode, const std::vector<std::string>& environ) {
  auto path = config::resolve_path(cli_path, env_value(environ, config::kConfigPathEnv));
  auto config = config::load_file(path);
  if (!config) return config;
  if (auto st = config::apply_environment(*config, environ); !st) return st.error();
  for (const auto& o : overrides) {
    if (auto st = config::apply_override(*config, o, "command line (--set)"); !st) return st.error();
  }
  if (!mode.empty()) {
    if (auto st = config::apply_override(*config, "client.mode=" + mode, "command line (--mode)"); !st) {
      return st.error();
    }
  }
  if (auto st = config::finalize(*config); !st) return st.error();
  return config;
}

}  // namespace

int run(int argc, char** argv, Io io) {
  CLI::App app{
      "slurm-ssh-bridge: runs batchspawner's Slurm commands (the slurmspawner_sbatch, _squeue and _scancel "
      "wrappers) on a Slurm login host over SSH, for JupyterHub.",
      "slurm-ssh-bridge"};
  // The second line tells packagers which library the SSH side dlopens
  // (containers/jupyterhub/collect-runtime.sh reads it).
  app.set_version_flag("--version", std::string("slurm-ssh-bridge ") + kVersion + "\nlibssh: " + ssh::libssh_soname() +
                                        " (loaded at the first SSH connection)");
  app.fallthrough();
  app.require_subcommand(1);

  std::string config_path;
  std::string mode;
  std::vector<std::string> overrides;
  Options options;
  app.add_option("--config", config_path,
                 fmt::format("Configuration file (default: ${} or {})", config::kConfigPathEnv,
                             config::kDefaultConfigPath));
  app.add_option("--user", options.user, "JupyterHub user the command runs as (sudo -u NAME on the login host)");
  app.add_flag("--json", options.json, "Print one JSON object instead of the wrapper's text output");
  app.add_option("--mode", mode, "Override client.mode: auto, daemon or direct");
  app.add_option("--set", overrides, "Override a configuration key: SECTION.KEY=VALUE (repeatable)");

  auto* submit = app.add_subcommand("submit", "Submit the job script read on stdin; prints the job id");
  auto* query = app.add_subcommand("query", "Print a job's state and host, as `squeue -h -j ID -o '%T %B'` does");
  query->add_option("job_id", options.job_id, "Slurm job id")->required();
  auto* cancel = app.add_subcommand("cancel", "Cancel a job");
  cancel->add_option("job_id", options.job_id, "Slurm job id")->required();
  auto* check = app.add_subcommand(
      "check", "Diagnose configuration, identity file, host key, connection, wrappers and (with --user) sudo");
  auto* serve = app.add_subcommand("serve", "Run the daemon: pooled SSH connections behind daemon.socket (foreground)");
  auto* status = app.add_subcommand("status", "Print the daemon's health as one JSON object");
  auto* request = app.add_subcommand("request", "Run one JSON protocol request read on stdin; print the response");
  auto* show_config = app.add_subcommand("config", "Print the effective configuration and where each value came from");
  bool reference = false;
  show_config->add_flag("--reference", reference, "Print the reference of every key (Markdown) and exit");
  bool error_codes = false;
  show_config->add_flag("--error-codes", error_codes,
                        "Print every error code (exit status, whether a job's state is then unknown, meaning) as JSON "
                        "and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::ParseError& e) {
    return print_failure(Error{Errc::usage, fmt::format("{}; run `slurm-ssh-bridge --help`", e.what())}, options.json,
                         io.out, io.err);
  }

  if (*show_config && reference) {
    io.out << config::reference_markdown();
    return 0;
  }
  if (*show_config && error_codes) {
    io.out << protocol::to_line(protocol::error_codes_json()) << '\n';
    return 0;
  }
  auto config = load_layers(config_path, overrides, mode, io.environ);
  if (!config) return print_failure(config.error(), options.json, io.out, io.err);

  if (*submit) return run_job_command(*config, core::Op::submit, options, io);
  if (*query) return run_job_command(*config, core::Op::query, options, io);
  if (*cancel) return run_job_command(*config, core::Op::cancel, options, io);
  if (*check) return run_check_command(*config, options, io);
  if (*serve) return run_serve_command(*config, io);
  if (*status) return run_status_command(*config, io);
  if (*request) return run_request_command(*config, io);
  if (*show_config) {
    io.out << config::describe(*config);
    return 0;
  }
  return print_failure(Error{Errc::usage, "no subcommand given; run `slurm-ssh-bridge --help`"}, options.json, io.out,
                       io.err);
}

}  // namespace ssb::app
