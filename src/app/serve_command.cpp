#include <fmt/format.h>

#include "ssb/app/commands.hpp"
#include "ssb/app/output.hpp"
#include "ssb/client/daemon_client.hpp"
#include "ssb/daemon/server.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/util/log.hpp"

namespace ssb::app {

int run_serve_command(const config::Config& config, Io& io) {
  log::Level level = log::Level::info;
  log::parse_level(config.log.level, level);
  log::set_level(level);
  log::Format format = log::Format::text;
  log::parse_format(config.log.format, format);  // validated by the config
  log::set_format(format);
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

int run_metrics_command(const config::Config& config, Io& io) {
  auto text = client::daemon_metrics(config);
  if (!text) return print_failure(text.error(), false, io.out, io.err);
  io.out << *text;
  return 0;
}

}  // namespace ssb::app
