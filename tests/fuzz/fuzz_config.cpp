// libFuzzer target: the configuration layers on arbitrary bytes.
//
// The first byte picks the layer:
//   0  ssb::config::load_string(rest, "fuzz.toml")  (the TOML file)
//   1  ssb::config::apply_override(defaults, rest)   (one --set section.key=value)
//   2  ssb::config::apply_environment(defaults, lines of rest)  (SLURM_SSH_BRIDGE_*)
// None may crash, hang or throw. Every error is an Errc::config error; an
// error of the file layer names the file. A configuration that loads and
// finalises keeps the invariants the rest of the bridge relies on without
// re-checking (the daemon parses daemon.socket_mode with std::stoul(.., 8),
// paths are absolute, timeouts and sizes positive), and `describe` works.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ssb/config/config.hpp"

namespace {

[[noreturn]] void violation(const char* what, std::string_view detail) {
  std::fprintf(stderr, "fuzz_config: VIOLATION: %s\n  detail: %.*s\n", what, static_cast<int>(detail.size()),
               detail.data());
  std::abort();
}

void check_error(const ssb::Error& e, bool names_file) {
  if (e.code != ssb::Errc::config) violation("configuration error with a code other than config", e.message);
  if (e.message.empty()) violation("configuration error without a message", "");
  if (names_file && e.message.rfind("fuzz.toml", 0) != 0)
    violation("file error does not start with the file name", e.message);
}

void check_invariants(ssb::config::Config& c) {
  auto fin = ssb::config::finalize(c);
  if (!fin) {
    check_error(fin.error(), false);
    return;
  }
  if (c.ssh.host.empty()) violation("finalised configuration without ssh.host", "");
  try {
    unsigned long mode = std::stoul(c.daemon.socket_mode, nullptr, 8);
    if (mode > 07777) violation("daemon.socket_mode out of range", c.daemon.socket_mode);
  } catch (const std::exception&) {
    violation("daemon.socket_mode does not parse as octal (the daemon would throw)", c.daemon.socket_mode);
  }
  for (const std::string* p : {&c.ssh.identity_file, &c.ssh.known_hosts, &c.remote.wrappers_dir, &c.remote.sudo,
                               &c.remote.bash, &c.daemon.socket}) {
    if (p->empty() || (*p)[0] != '/') violation("a path setting is not absolute", *p);
  }
  if (c.ssh.port < 1 || c.ssh.port > 65535) violation("ssh.port out of range", std::to_string(c.ssh.port));
  if (c.ssh.connect_timeout_s < 1 || c.ssh.command_timeout_s < 1) violation("a timeout below 1 s", "");
  if (c.pool.connections < 1 || c.pool.channels_per_connection < 1) violation("an empty pool", "");
  if (c.pool.reconnect_min_ms > c.pool.reconnect_max_ms) violation("reconnect_min_ms > reconnect_max_ms", "");
  if (c.limits.max_script_bytes < 1 || c.limits.max_output_bytes < 1 || c.daemon.max_line_bytes < 1) {
    violation("a size limit below 1", "");
  }
  (void)ssb::config::describe(c);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const int layer = data[0] % 3;
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);

  if (layer == 0) {
    auto loaded = ssb::config::load_string(rest, "fuzz.toml");
    if (!loaded) {
      check_error(loaded.error(), true);
      return 0;
    }
    check_invariants(*loaded);
    return 0;
  }

  auto base = ssb::config::load_string("[ssh]\nhost = \"login.example\"\n", "base.toml");
  if (!base) violation("the base configuration does not load", base.error().message);
  ssb::config::Config c = *base;
  if (layer == 1) {
    auto st = ssb::config::apply_override(c, rest, "command line");
    if (!st) {
      check_error(st.error(), false);
      return 0;
    }
  } else {
    std::vector<std::string> entries;
    std::size_t pos = 0;
    while (pos <= rest.size()) {
      auto nl = rest.find('\n', pos);
      if (nl == std::string::npos) nl = rest.size();
      entries.push_back("SLURM_SSH_BRIDGE_" + rest.substr(pos, nl - pos));
      pos = nl + 1;
    }
    auto st = ssb::config::apply_environment(c, entries);
    if (!st) {
      check_error(st.error(), false);
      return 0;
    }
  }
  check_invariants(c);
  return 0;
}
