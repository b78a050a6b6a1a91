#include <fmt/format.h>

#include <iterator>
#include <memory>

#include "ssb/app/commands.hpp"
#include "ssb/app/output.hpp"
#include "ssb/client/daemon_client.hpp"
#include "ssb/client/executor.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/util/token.hpp"

namespace ssb::app {

namespace {

// Reads at most `limit` + 1 bytes so an oversized script is detected
// without reading an unbounded stream into memory.
std::string read_bounded(std::istream& in, std::int64_t limit) {
  std::string data;
  char buf[65536];
  while (in && static_cast<std::int64_t>(data.size()) <= limit) {
    in.read(buf, sizeof buf);
    data.append(buf, static_cast<std::size_t>(in.gcount()));
  }
  return data;
}

std::unique_ptr<client::Executor> make_executor(const config::Config& config) {
  if (config.client.mode == config::ClientMode::direct) return std::make_unique<client::DirectExecutor>(config);
  return std::make_unique<client::DaemonExecutor>(config);
}

}  // namespace

int run_job_command(const config::Config& config, core::Op op, const Options& options, Io& io) {
  core::Request request;
  request.op = op;
  request.user = options.user;
  request.job_id = options.job_id;
  if (request.user.empty()) {
    return print_failure(Error{Errc::usage, fmt::format("{} needs --user NAME (the JupyterHub user the job runs as)",
                                                        core::to_string(op))},
                         options.json, io.out, io.err);
  }
  if (op == core::Op::submit) {
    request.script = read_bounded(io.in, config.limits.max_script_bytes);
    request.env = core::forwardable_env(io.environ, config);
    request.hub_home = core::hub_home_from_environ(io.environ, request.user);
    // One token per CLI call: the daemon, the direct path and any lookup
    // after a lost outcome all name this submit by it.
    request.token = random_token();
  }
  if (auto st = core::validate(request, config); !st) {
    return print_response(core::from_error(request, st.error()), options.json, io.out, io.err);
  }
  auto executor = make_executor(config);
  return print_response(executor->execute(request), options.json, io.out, io.err);
}

int run_jobs_command(const config::Config& config, const Options& options, Io& io) {
  core::Request request;
  request.op = core::Op::jobs;
  if (auto st = core::validate(request, config); !st) {
    return print_response(core::from_error(request, st.error()), options.json, io.out, io.err);
  }
  return print_response(make_executor(config)->execute(request), options.json, io.out, io.err);
}

int run_request_command(const config::Config& config, Io& io) {
  std::string line = read_bounded(io.in, config.daemon.max_line_bytes);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  nlohmann::json id;
  auto parsed = protocol::parse_request(line, static_cast<std::size_t>(config.daemon.max_line_bytes), id);
  if (!parsed) {
    io.out << protocol::to_line(protocol::error_envelope(id, parsed.error())) << '\n';
    return exit_status_for(parsed.error().code);
  }
  auto& request = parsed->request;
  if (request.op == core::Op::status) {
    auto status = client::daemon_status(config);
    if (!status) {
      io.out << protocol::to_line(protocol::error_envelope(id, status.error())) << '\n';
      return exit_status_for(status.error().code);
    }
    status->erase("ok");
    io.out << protocol::to_line(protocol::status_envelope(id, *status)) << '\n';
    return 0;
  }
  if (request.op == core::Op::metrics) {
    auto text = client::daemon_metrics(config);
    if (!text) {
      io.out << protocol::to_line(protocol::error_envelope(id, text.error())) << '\n';
      return exit_status_for(text.error().code);
    }
    io.out << protocol::to_line(protocol::metrics_envelope(id, *text)) << '\n';
    return 0;
  }
  // As the daemon does for a protocol client: a submit without a token gets
  // one, so its job can be found by it if the outcome is lost.
  if (request.op == core::Op::submit && request.token.empty()) request.token = random_token();
  core::Response response;
  if (auto st = core::validate(request, config); !st) {
    response = core::from_error(request, st.error());
  } else {
    response = make_executor(config)->execute(request);
  }
  io.out << protocol::to_line(protocol::response_envelope(id, response)) << '\n';
  if (response.remote) return response.remote->exit_status;
  return response.ok() ? 0 : exit_status_for(response.error->code);
}

}  // namespace ssb::app
