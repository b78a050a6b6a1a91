#include <catch2/catch.hpp>

#include "ssb/config/config.hpp"

using namespace ssb;
using namespace ssb::config;

namespace {
const char* kMinimal = "[ssh]\nhost = \"login.example\"\n";

std::string error_of(const std::string& text) {
  auto r = load_string(text, "/etc/t.toml");
  if (r) {
    auto st = finalize(*r);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::config);
    return st.error().message;
  }
  CHECK(r.error().code == Errc::config);
  return r.error().message;
}
}  // namespace

TEST_CASE("config: minimal file fills defaults and records origins") {
  auto r = load_string(kMinimal, "/etc/t.toml");
  REQUIRE(r.ok());
  REQUIRE(finalize(*r).ok());
  CHECK(r->ssh.host == "login.example");
  CHECK(r->ssh.port == 22);
  CHECK(r->ssh.user == "jupyterspawner");
  CHECK(r->remote.wrappers_dir == "/opt/jupyter/slurmspawner_wrappers/bin");
  CHECK(r->env.method == EnvMethod::stdin_records);
  CHECK(r->origins["ssh.host"] == "file:/etc/t.toml:2");
  CHECK(r->origins["ssh.port"] == "default");
}

TEST_CASE("config: every documented key is accepted in a file") {
  auto r = load_string(R"([ssh]
host = "h"
port = 2222
user = "svc"
identity_file = "/k"
known_hosts = "/kh"
strict_key_permissions = false
connect_timeout_s = 3
command_timeout_s = 4
keepalive_interval_s = 5
[remote]
wrappers_dir = "/w/"
sudo = "/bin/sudo"
bash = "/bin/bash"
[env]
forward = ["A_*"]
method = "setenv"
secret_patterns = ["*TOK*"]
[limits]
max_script_bytes = 10
max_env_bytes = 10
max_output_bytes = 2048
[daemon]
socket = "/s"
socket_mode = "0660"
socket_group = "hub"
drain_timeout_s = 1
max_line_bytes = 4096
max_clients = 3
[pool]
connections = 3
channels_per_connection = 4
queue_size = 5
queue_timeout_s = 6
reconnect_min_ms = 7
reconnect_max_ms = 8
[status]
mode = "coalesced"
window_ms = 50
max_ids = 7
squeue = "/opt/slurm/bin/squeue"
[client]
mode = "direct"
daemon_connect_timeout_ms = 9
[log]
level = "debug"
)",
                       "/t");
  REQUIRE(r.ok());
  REQUIRE(finalize(*r).ok());
  CHECK(r->ssh.port == 2222);
  CHECK(r->env.method == EnvMethod::setenv);
  CHECK(r->client.mode == ClientMode::direct);
  CHECK(r->pool.channels_per_connection == 4);
  CHECK(r->env.forward == std::vector<std::string>{"A_*"});
  CHECK(r->status.mode == StatusMode::coalesced);
  CHECK(r->status.window_ms == 50);
  CHECK(r->status.max_ids == 7);
  CHECK(r->status.squeue == "/opt/slurm/bin/squeue");
  CHECK(key_reference().size() == r->origins.size());
}

TEST_CASE("config: the status keys: defaults, the environment layer, and bad values named") {
  auto r = load_string(kMinimal, "/t");
  REQUIRE(r.ok());
  CHECK(r->status.mode == StatusMode::per_user);
  CHECK(r->status.window_ms == 200);
  CHECK(r->status.max_ids == 500);
  CHECK(r->status.squeue == "squeue");
  REQUIRE(
      apply_environment(*r, {"SLURM_SSH_BRIDGE_STATUS_MODE=coalesced", "SLURM_SSH_BRIDGE_STATUS_WINDOW_MS=1000"}).ok());
  CHECK(r->status.mode == StatusMode::coalesced);
  CHECK(r->origins["status.mode"] == "env:SLURM_SSH_BRIDGE_STATUS_MODE");
  CHECK(r->status.window_ms == 1000);

  auto mode = apply_override(*r, "status.mode=batched", "command line");
  REQUIRE_FALSE(mode.ok());
  CHECK(mode.error().message ==
        "command line: key 'status.mode' must be one of \"per_user\", \"coalesced\", got \"batched\"");
  auto window = apply_override(*r, "status.window_ms=0", "command line");
  REQUIRE_FALSE(window.ok());
  CHECK(window.error().message == "command line: key 'status.window_ms' must be between 10 and 60000, got 0");
  auto ids = apply_override(*r, "status.max_ids=100000", "command line");
  REQUIRE_FALSE(ids.ok());
  CHECK(ids.error().message == "command line: key 'status.max_ids' must be between 1 and 5000, got 100000");
  auto squeue = apply_override(*r, "status.squeue=squeue -a", "command line");
  REQUIRE_FALSE(squeue.ok());
  CHECK(squeue.error().message ==
        "command line: key 'status.squeue' must be a command name (letters, digits, '.', '-', '_') or an absolute "
        "path, got \"squeue -a\"");
  CHECK_FALSE(apply_override(*r, "status.squeue=-squeue", "command line").ok());
  CHECK_FALSE(apply_override(*r, "status.squeue=", "command line").ok());
  REQUIRE(apply_override(*r, "status.squeue=/usr/bin/squeue", "command line").ok());
  CHECK(r->status.squeue == "/usr/bin/squeue");
  CHECK(r->status.mode == StatusMode::coalesced);  // a refused value changes nothing
}

TEST_CASE("config: errors name the file, the line and the key") {
  CHECK(error_of("[ssh]\nhost = \"h\"\nprot = 22\n") ==
        "/etc/t.toml:3: unknown key 'ssh.prot' (did you mean 'ssh.port'?)");
  CHECK(error_of("[ssh]\nhost = \"h\"\nport = \"22\"\n") ==
        "/etc/t.toml:3: key 'ssh.port' must be a integer, got a string");
  CHECK(error_of("[ssh]\nhost = \"h\"\nport = 70000\n") ==
        "/etc/t.toml:3: key 'ssh.port' must be between 1 and 65535, got 70000");
  CHECK(error_of("[ssh]\nport = 22\n") ==
        "/etc/t.toml: required key 'ssh.host' is missing; add it under [ssh] (for example host = "
        "\"login.example.org\")");
  CHECK(error_of("[sssh]\nhost = \"h\"\n").find("/etc/t.toml:1: unknown section [sssh] (did you mean") == 0);
  CHECK(error_of("[ssh]\nhost = \"h\"\n[env]\nmethod = \"ssh\"\n") ==
        "/etc/t.toml:4: key 'env.method' must be one of \"stdin\", \"setenv\", got \"ssh\"");
  CHECK(error_of("[ssh]\nhost = \"h\"\nidentity_file = \"key\"\n") ==
        "/etc/t.toml:3: key 'ssh.identity_file' must be an absolute path, got \"key\"");
  CHECK(error_of("[ssh]\nhost = \"h\"\n[env]\nforward = [\"A B\"]\n").find("/etc/t.toml:4: key 'env.forward'") == 0);
  CHECK(error_of("host = \"h\"\n").find("/etc/t.toml:1: 'host' must be a section") == 0);
  CHECK(error_of("[ssh]\nhost = \"h\"\n[daemon]\nsocket_mode = \"rw\"\n").find("octal mode") != std::string::npos);
  CHECK(error_of("[ssh]\nhost = \"-oProxyCommand=x\"\n").find("must not start with '-'") != std::string::npos);
}

TEST_CASE("config: syntax errors carry the line") {
  auto msg = error_of("[ssh]\nhost = \"h\"\nport = = 3\n");
  CHECK(msg.rfind("/etc/t.toml:3: syntax error:", 0) == 0);
  msg = error_of("[ssh]\nhost = \"unterminated\n");
  CHECK(msg.rfind("/etc/t.toml:2: syntax error:", 0) == 0);
}

TEST_CASE("config: unreadable file is a config error naming the path") {
  auto r = load_file("/nonexistent/ssb.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == Errc::config);
  CHECK(r.error().message.rfind("/nonexistent/ssb.toml: cannot read the configuration file", 0) == 0);
}

TEST_CASE("config: environment and command line layers override the file") {
  auto r = load_string(kMinimal, "/t");
  REQUIRE(r.ok());
  REQUIRE(apply_environment(*r, {"PATH=/bin", "SLURM_SSH_BRIDGE_SSH_PORT=2200", "SLURM_SSH_BRIDGE_CONFIG=/x",
                                 "SLURM_SSH_BRIDGE_ENV_FORWARD=A_*,B"})
              .ok());
  CHECK(r->ssh.port == 2200);
  CHECK(r->origins["ssh.port"] == "env:SLURM_SSH_BRIDGE_SSH_PORT");
  CHECK(r->env.forward == std::vector<std::string>{"A_*", "B"});
  REQUIRE(apply_override(*r, "ssh.port=2300", "command line").ok());
  CHECK(r->ssh.port == 2300);
  CHECK(r->origins["ssh.port"] == "command line");

  auto bad_env = apply_environment(*r, {"SLURM_SSH_BRIDGE_SSH_PROT=1"});
  REQUIRE_FALSE(bad_env.ok());
  CHECK(bad_env.error().message.find("environment variable SLURM_SSH_BRIDGE_SSH_PROT names no configuration key") == 0);
  auto bad_value = apply_override(*r, "ssh.port=abc", "command line");
  REQUIRE_FALSE(bad_value.ok());
  CHECK(bad_value.error().message == "command line: key 'ssh.port' must be a integer, got \"abc\"");
  CHECK_FALSE(apply_override(*r, "noequals", "command line").ok());
}

TEST_CASE("config: describe shows every key with its origin") {
  auto r = load_string(kMinimal, "/t");
  REQUIRE(r.ok());
  auto text = describe(*r);
  CHECK(text.find("host = \"login.example\"    # file:/t:2") != std::string::npos);
  CHECK(text.find("port = 22    # default") != std::string::npos);
  for (const auto& k : key_reference()) {
    CHECK(text.find(k.name.substr(k.name.find('.') + 1) + " = ") != std::string::npos);
  }
}

TEST_CASE("config: path resolution order") {
  CHECK(resolve_path("/cli", "/env") == "/cli");
  CHECK(resolve_path("", "/env") == "/env");
  CHECK(resolve_path("", nullptr) == kDefaultConfigPath);
  CHECK(resolve_path("", "") == kDefaultConfigPath);
}

TEST_CASE("config: a socket mode others may write needs an allow list") {
  auto msg = error_of(std::string(kMinimal) + "[daemon]\nsocket_mode = \"0666\"\n");
  CHECK_THAT(msg, Catch::Contains("daemon.socket_mode 0666 lets every local account submit and cancel jobs") &&
                      Catch::Contains("daemon.allowed_users"));
  auto ok = load_string(std::string(kMinimal) + "[daemon]\nsocket_mode = \"0666\"\nallowed_groups = [\"jupyterhub\"]\n",
                        "/etc/t.toml");
  REQUIRE(ok);
  CHECK(finalize(*ok).ok());
  CHECK_THAT(error_of(std::string(kMinimal) + "[daemon]\nallowed_users = [\"a b\"]\n"),
             Catch::Contains("daemon.allowed_users") && Catch::Contains("must be an account or group name"));
}

TEST_CASE("config: the client bounds of the daemon have limits") {
  CHECK_THAT(error_of(std::string(kMinimal) + "[daemon]\nmax_pending_per_client = 0\n"),
             Catch::Contains("daemon.max_pending_per_client"));
  CHECK_THAT(error_of(std::string(kMinimal) + "[daemon]\nline_timeout_s = 0\n"),
             Catch::Contains("daemon.line_timeout_s"));
}

TEST_CASE("config: a value in an error is shown bounded (64 bytes and its size), escaped") {
  const std::string host(100000, 'h');
  auto r = load_string("[ssh]\nhost = \"" + host + "/\"\n", "/etc/t.toml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.size() < 300);
  CHECK(r.error().message.find(std::string(64, 'h') + "... (100001 bytes)") != std::string::npos);
  Config c;
  auto st = apply_override(c, "ssh.port=" + std::string(5000, '\x1b'), "--set");
  REQUIRE_FALSE(st.ok());
  CHECK(st.error().message.size() < 400);
  CHECK(st.error().message.find('\x1b') == std::string::npos);
}

TEST_CASE("config: client.daemon_uid takes an account name or number, empty by default") {
  Config c;
  CHECK(c.client.daemon_uid.empty());
  CHECK(apply_override(c, "client.daemon_uid=0", "--set"));
  CHECK(c.client.daemon_uid == "0");
  CHECK(apply_override(c, "client.daemon_uid=_slurm-ssh-bridge", "--set"));
  auto bad = apply_override(c, "client.daemon_uid=a b", "--set");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message.find("client.daemon_uid") != std::string::npos);
}
