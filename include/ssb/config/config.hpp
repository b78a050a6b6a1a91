// Typed configuration of the bridge, filled in layers:
//   built-in defaults -> TOML file -> SLURM_SSH_BRIDGE_* environment -> command line
// Each value remembers where it came from, so `slurm-ssh-bridge config` can
// show the origin of every setting.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ssb/util/result.hpp"

namespace ssb::config {

inline constexpr const char* kDefaultConfigPath = "/etc/slurm-ssh-bridge/config.toml";
inline constexpr const char* kConfigPathEnv = "SLURM_SSH_BRIDGE_CONFIG";

enum class EnvMethod { stdin_records, setenv };
enum class ClientMode { auto_select, daemon, direct };
enum class StatusMode { per_user, coalesced };

struct Config {
  struct Ssh {
    std::string host;  // required
    int port = 22;
    std::string user = "jupyterspawner";
    std::string identity_file = "/srv/jupyterhub/ssh_key";
    std::string known_hosts = "/etc/ssh/ssh_known_hosts";
    bool strict_key_permissions = true;
    int connect_timeout_s = 10;
    int command_timeout_s = 60;
    int keepalive_interval_s = 30;
  } ssh;

  struct Remote {
    std::string wrappers_dir = "/opt/jupyter/slurmspawner_wrappers/bin";
    std::string sudo = "/usr/bin/sudo";
    std::string bash = "/bin/bash";
    std::string scontrol = "/usr/bin/scontrol";  // explain: run as the service account, no sudo
    std::string sacct = "/usr/bin/sacct";
  } remote;

  struct Env {
    std::vector<std::string> forward{"JUPYTERHUB_*", "JPY_API_TOKEN"};
    EnvMethod method = EnvMethod::stdin_records;
    std::vector<std::string> secret_patterns{"*TOKEN*", "*SECRET*", "*PASSWORD*", "*KEY*"};
  } env;

  struct Limits {
    std::int64_t max_script_bytes = 1 << 20;
    std::int64_t max_env_bytes = 256 << 10;
    std::int64_t max_output_bytes = 1 << 20;
  } limits;

  struct Daemon {
    std::string socket = "/run/slurm-ssh-bridge/bridge.sock";
    std::string socket_mode = "0600";
    std::string socket_group;
    int drain_timeout_s = 30;
    std::int64_t max_line_bytes = 4 << 20;
    int max_clients = 1024;
    int max_pending_per_client = 256;
    int idle_timeout_s = 600;
    int line_timeout_s = 30;
    // Local accounts (names or uids) and groups whose processes may use
    // the socket; both empty: whoever the socket's mode admits.
    std::vector<std::string> allowed_users;
    std::vector<std::string> allowed_groups;
  } daemon;

  struct Pool {
    int connections = 2;
    int channels_per_connection = 8;
    int queue_size = 1024;
    int queue_timeout_s = 30;
    int reconnect_min_ms = 200;
    int reconnect_max_ms = 30000;
  } pool;

  // How the daemon answers queries: one sudo'd wrapper run per query, or
  // one squeue run as the service account for every id asked about in a
  // window (daemon/status_coalescer.hpp).
  struct Status {
    StatusMode mode = StatusMode::per_user;
    int window_ms = 200;
    int max_ids = 500;
    std::string squeue = "squeue";
  } status;

  // Exactly-once submit: the tag in the comment `ssb:<tag>:<token>` that
  // each submit's job carries (core/submit_token.hpp).
  struct Submit {
    std::string tag = "jupyterhub";
  } submit;

  struct Client {
    ClientMode mode = ClientMode::auto_select;
    int daemon_connect_timeout_ms = 1000;
    std::string daemon_uid;  // empty: root or the CLI's own uid
  } client;

  struct Log {
    std::string level = "info";
    std::string format = "text";  // "text" or "json"
  } log;

  struct Metrics {
    std::string listen;  // "ADDRESS:PORT" on loopback; empty: no HTTP listener
  } metrics;

  // Where the configuration file came from (may be empty when none was read).
  std::string source_path;
  // "section.key" -> human-readable origin ("default", "file:PATH:LINE",
  // "env:NAME", "command line").
  std::map<std::string, std::string> origins;
};

// One documented key: used by the loader, the env/CLI layers, the
// `config` subcommand and the README's reference table.
struct KeyInfo {
  std::string name;          // "ssh.port"
  std::string type;          // "string", "integer", "boolean", "string list"
  std::string default_text;  // as it would be written in TOML
  std::string help;
};
const std::vector<KeyInfo>& key_reference();

// Reads the TOML file at `path` on top of the defaults. Every problem is an
// Errc::config error naming the file, the line and the key.
Result<Config> load_file(const std::string& path);

// Parses TOML text (for tests and for `load_file`); `path` names it in errors.
Result<Config> load_string(const std::string& text, const std::string& path);

// Applies SLURM_SSH_BRIDGE_<SECTION>_<KEY> variables from `environ`-style
// entries ("NAME=VALUE"). Unknown SLURM_SSH_BRIDGE_* names are errors, except
// SLURM_SSH_BRIDGE_CONFIG.
Status apply_environment(Config& config, const std::vector<std::string>& environ_entries);

// Applies one "section.key=value" override from the command line.
Status apply_override(Config& config, const std::string& assignment, const std::string& origin);

// Checks cross-key constraints and required keys after all layers.
Status finalize(Config& config);

// Renders the effective configuration with origins (for `config`).
std::string describe(const Config& config);

// The reference table of every key (README's configuration section).
std::string reference_markdown();

// Which config file to read: --config value, else $SLURM_SSH_BRIDGE_CONFIG,
// else the default path.
std::string resolve_path(const std::string& cli_value, const char* env_value);

}  // namespace ssb::config
