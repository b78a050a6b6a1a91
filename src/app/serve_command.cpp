#include <fmt/format.h>

#include "ssb/app/commands.hpp"
#include "ssb/app/output.hpp"
#include "ssb/client/daemon_client.hpp"
#include "ssb/daemon/server.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/ssh/session.hpp"
#include "ssb/util/log.hpp"

namespace ssb::app {

namespace {

Status preflight(const config::Config& config) {
  auto endpoint = ssh::Endpoint::from_config(config);
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint, warnings);
  if (!key) return make_error(Errc::config, "serve cannot start: " + key.error().message);
  for (const auto& w : warnings) log::warn(w);
  if (auto st = ssh::check_usable_known_hosts(endpoint); !st) {
    return make_error(Errc::config, "serve cannot start: " + st.error().message);
  }
  return {};
}

}  // namespace

int run_serve_command(const config::Config& config, Io& io) {
  log::Level level = log::Level::info;
  log::parse_level(config.log.level, level);
  log::set_level(level);
  log::Format format = log::Format::text;
  log::parse_format(config.log.format, format);  // validated by the config
  log::set_format(format);
  // A key or known_hosts that cannot work would fail every request later,
  // each time with a transport-like error: refuse to start instead (exit 2).
  if (auto st = preflight(config); !st) return print_failure(st.error(), false, io.out, io.err);
  daemon::Server server(config);
  if (auto st = server.listen(); !st) return print_failure(st.error(), false, io.out, io.err);
  return server.run();
}

int run_status_command(const config::Config& config, Io& io) {
  auto status = client::daemon_status(config);
  if (!status) return print_failure(status.error(), true, io.out, io.err);
  io.out << protocol::to_line(*status) << '\n';
  return 0;
}

int run_metrics_command(const config::Config& config, const Options& options, Io& io) {
  auto text = client::daemon_metrics(config);
  if (!text) return print_failure(text.error(), options.json, io.out, io.err);
  if (options.json) {
    io.out << protocol::to_line(protocol::metrics_envelope(nullptr, *text)) << '\n';
  } else {
    io.out << *text;
  }
  return 0;
}

}  // namespace ssb::app
