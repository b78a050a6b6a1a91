// The subcommands behind the CLI. Each takes the loaded configuration and
// returns the process exit status.
#pragma once

#include <string>
#include <utility>

#include "ssb/app/application.hpp"
#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"

namespace ssb::app {

struct Options {
  std::string user;
  std::string job_id;
  bool json = false;
};

// submit, query, cancel: through the daemon or directly (client.mode).
int run_job_command(const config::Config& config, core::Op op, const Options& options, Io& io);
// jobs: the jobs in Slurm carrying this configuration's submit.tag.
int run_jobs_command(const config::Config& config, const Options& options, Io& io);
// request: one JSON request on stdin, the response on stdout.
int run_request_command(const config::Config& config, Io& io);
// serve: the daemon, in the foreground, until SIGTERM/SIGINT.
int run_serve_command(const config::Config& config, Io& io);
// status: the daemon's health as one JSON object.
int run_status_command(const config::Config& config, Io& io);
// metrics: the daemon's Prometheus text (node_exporter's textfile collector);
// with --json, the protocol's metrics envelope (errors as JSON too).
int run_metrics_command(const config::Config& config, const Options& options, Io& io);
// check: diagnose the configuration and the path to the login host.
int run_check_command(const config::Config& config, const Options& options, Io& io);

// check's "status" step, coalesced mode: whether `account` sees other
// users' jobs, given slurm.conf's PrivateData and its AdminLevel (empty when
// unknown); the verdict (true: it does) and the line to print.
std::pair<bool, std::string> judge_job_visibility(const std::string& account, const std::string& private_data,
                                                  const std::string& admin_level);

}  // namespace ssb::app
