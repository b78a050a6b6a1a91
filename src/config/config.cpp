#include "ssb/config/config.hpp"
#include "ssb/config/toml_guard.hpp"
#include "ssb/util/file_safety.hpp"
#include "ssb/util/printable.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>
// toml++ 3.3 marks paths unreachable that are reachable (see
// ssb/config/toml_guard.hpp); reaching one would be undefined behaviour.
// Make it a trap instead: find_toml_hazard keeps such input away, and a
// fuzzer build crashes loudly if it ever misses a case.
#include <toml++/impl/preprocessor.h>
#undef TOML_UNREACHABLE
#define TOML_UNREACHABLE __builtin_trap()
#include <toml++/toml.h>
#include <variant>

namespace ssb::config {

namespace {

enum class Type { string, integer, boolean, string_list };

using Value = std::variant<std::string, std::int64_t, bool, std::vector<std::string>>;

const char* type_name(Type t) {
  switch (t) {
    case Type::string: return "string";
    case Type::integer: return "integer";
    case Type::boolean: return "boolean";
    case Type::string_list: return "string list";
  }
  return "?";
}

// A setter returns an explanation when the (well-typed) value is out of range.
using Setter = std::function<std::optional<std::string>(Config&, const Value&)>;
using Getter = std::function<std::string(const Config&)>;

struct Key {
  KeyInfo info;
  Type type;
  Setter set;
  Getter get;
  bool required = false;
};

std::string quote_toml(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// An input value in an error message: quoted, bounded, escaped.
std::string shown(const std::string& s) { return "\"" + printable(s) + "\""; }

std::string list_text(const std::vector<std::string>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote_toml(v[i]);
  return out + "]";
}

template <class Ref>
Key int_key(std::string name, Ref ref, std::int64_t min, std::int64_t max, std::string help) {
  Config defaults;
  Key k;
  k.info = {std::move(name), type_name(Type::integer), std::to_string(ref(defaults)), std::move(help)};
  k.type = Type::integer;
  k.set = [ref, min, max](Config& c, const Value& v) -> std::optional<std::string> {
    auto n = std::get<std::int64_t>(v);
    if (n < min || n > max) return fmt::format("must be between {} and {}, got {}", min, max, n);
    ref(c) = static_cast<std::remove_reference_t<decltype(ref(c))>>(n);
    return std::nullopt;
  };
  k.get = [ref](const Config& c) { return std::to_string(ref(c)); };
  return k;
}

template <class Ref>
Key string_key(std::string name, Ref ref, std::string help,
               const std::function<std::optional<std::string>(const std::string&)>& check = {}) {
  Config defaults;
  Key k;
  k.info = {std::move(name), type_name(Type::string), quote_toml(ref(defaults)), std::move(help)};
  k.type = Type::string;
  k.set = [ref, check](Config& c, const Value& v) -> std::optional<std::string> {
    const auto& s = std::get<std::string>(v);
    if (check) {
      if (auto why = check(s)) return why;
    }
    ref(c) = s;
    return std::nullopt;
  };
  k.get = [ref](const Config& c) { return quote_toml(ref(c)); };
  return k;
}

template <class Ref>
Key bool_key(std::string name, Ref ref, std::string help) {
  Config defaults;
  Key k;
  k.info = {std::move(name), type_name(Type::boolean), ref(defaults) ? "true" : "false", std::move(help)};
  k.type = Type::boolean;
  k.set = [ref](Config& c, const Value& v) -> std::optional<std::string> {
    ref(c) = std::get<bool>(v);
    return std::nullopt;
  };
  k.get = [ref](const Config& c) { return std::string(ref(c) ? "true" : "false"); };
  return k;
}

template <class Ref>
Key list_key(std::string name, Ref ref, std::string help,
             const std::function<std::optional<std::string>(const std::string&)>& check_item = {}) {
  Config defaults;
  Key k;
  k.info = {std::move(name), type_name(Type::string_list), list_text(ref(defaults)), std::move(help)};
  k.type = Type::string_list;
  k.set = [ref, check_item](Config& c, const Value& v) -> std::optional<std::string> {
    const auto& items = std::get<std::vector<std::string>>(v);
    if (check_item) {
      for (const auto& item : items) {
        if (auto why = check_item(item)) return why;
      }
    }
    ref(c) = items;
    return std::nullopt;
  };
  k.get = [ref](const Config& c) { return list_text(ref(c)); };
  return k;
}

std::optional<std::string> absolute_path(const std::string& s) {
  if (s.empty() || s[0] != '/') return fmt::format("must be an absolute path, got {}", shown(s));
  return std::nullopt;
}

std::optional<std::string> env_pattern(const std::string& s) {
  if (s.empty()) return std::string("must not contain an empty pattern");
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '*';
    if (!ok) return fmt::format("pattern {} may only hold letters, digits, '_' and '*'", shown(s));
  }
  return std::nullopt;
}

std::optional<std::string> host_name(const std::string& s) {
  if (s.empty()) return std::string("must not be empty");
  if (s[0] == '-') return fmt::format("must not start with '-', got {}", shown(s));
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
              c == ':' || c == '_';
    if (!ok) return fmt::format("is not a host name or IP address: {}", shown(s));
  }
  return std::nullopt;
}

std::optional<std::string> user_name(const std::string& s) {
  if (s.empty() || s[0] == '-' || s.size() > 64) return fmt::format("is not a valid account name: {}", shown(s));
  for (char c : s) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return fmt::format("is not a valid account name: {}", shown(s));
  }
  return std::nullopt;
}

std::optional<std::string> one_of(const std::string& s, std::initializer_list<const char*> choices) {
  std::string all;
  for (const char* c : choices) {
    if (s == c) return std::nullopt;
    all += (all.empty() ? "" : ", ") + quote_toml(c);
  }
  return fmt::format("must be one of {}, got {}", all, shown(s));
}

// metrics.listen: empty (off), or a loopback "ADDRESS:PORT". The listener has
// no authentication and answers anyone who can connect, so it never binds
// to an address other hosts reach; a remote Prometheus scrapes through a
// proxy or reads `slurm-ssh-bridge metrics` from the textfile collector.
std::optional<std::string> loopback_listen(const std::string& s) {
  if (s.empty()) return std::nullopt;
  const auto colon = s.rfind(':');
  const std::string usage =
      "must be \"127.0.0.1:PORT\" (or another 127.x.y.z, or \"[::1]:PORT\"), got " + quote_toml(s);
  if (colon == std::string::npos || colon == 0) return usage;
  std::string host = s.substr(0, colon);
  const std::string port = s.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stol(port) < 1 || std::stol(port) > 65535) {
    return usage + " (the port must be 1 to 65535)";
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (host == "[::1]") return std::nullopt;
  } else {
    int parts[4];
    char tail = 0;
    if (std::sscanf(host.c_str(), "%3d.%3d.%3d.%3d%c", &parts[0], &parts[1], &parts[2], &parts[3], &tail) == 4 &&
        parts[0] == 127 && std::all_of(parts, parts + 4, [](int p) { return p >= 0 && p <= 255; })) {
      return std::nullopt;
    }
  }
  return usage +
         ": the metrics listener has no authentication, so it listens on loopback only; scrape it "
         "through a local proxy, or use `slurm-ssh-bridge metrics` with node_exporter's textfile collector";
}

std::optional<std::string> octal_mode(const std::string& s) {
  if (s.size() < 3 || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos)
    return fmt::format("must be an octal mode such as \"0660\", got {}", shown(s));
  return std::nullopt;
}

// An account or group as the allow lists name it: a POSIX-portable name or
// a number (resolved when the daemon starts, so a typo fails there, loudly).
std::optional<std::string> account_name(const std::string& s) {
  static const std::string allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
  if (s.empty() || s.size() > 64 || s.find_first_not_of(allowed) != std::string::npos || s[0] == '-')
    return fmt::format("must be an account or group name or a number, got {}", shown(s));
  return std::nullopt;
}

// Enum-valued keys are stored as strings in the file and mapped here: each
// spelling with its value, the first spelling being what an unknown value
// reads back as.
template <class E, class Ref>
Key enum_key(std::string name, Ref ref, std::vector<std::pair<const char*, E>> choices, std::string help) {
  auto spelling = [choices](E value) {
    for (const auto& [text, e] : choices) {
      if (e == value) return std::string(text);
    }
    return std::string(choices.front().first);
  };
  Config defaults;
  Key k;
  k.info = {std::move(name), "string", quote_toml(spelling(ref(defaults))), std::move(help)};
  k.type = Type::string;
  k.set = [ref, choices](Config& c, const Value& v) -> std::optional<std::string> {
    const auto& s = std::get<std::string>(v);
    std::string all;
    for (const auto& [text, e] : choices) {
      if (s == text) {
        ref(c) = e;
        return std::nullopt;
      }
      all += (all.empty() ? "" : ", ") + quote_toml(text);
    }
    return fmt::format("must be one of {}, got {}", all, shown(s));
  };
  k.get = [ref, spelling](const Config& c) { return quote_toml(spelling(ref(c))); };
  return k;
}

// A command on the login host: a bare name (found on the service account's
// PATH) or an absolute path. Either way it is quoted as one word.
std::optional<std::string> command_name(const std::string& s) {
  if (s.empty()) return std::string("must not be empty");
  if (s[0] == '/') return std::nullopt;
  for (char c : s) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok || s[0] == '-') {
      return fmt::format("must be a command name (letters, digits, '.', '-', '_') or an absolute path, got {}",
                         shown(s));
    }
  }
  return std::nullopt;
}

// submit.tag: it goes into a Slurm job comment and is matched literally by
// `jobs`, so it is kept to a small, unambiguous alphabet (no ':').
std::optional<std::string> submit_tag(const std::string& s) {
  bool ok = !s.empty() && s.size() <= 64;
  for (char c : s) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                c == '_');
  }
  if (ok) return std::nullopt;
  return fmt::format(
      "must be 1 to 64 of the characters A-Z a-z 0-9 . _ - (it goes into the job comment ssb:TAG:TOKEN), "
      "got {}",
      quote_toml(s.substr(0, 80)));
}

// A member accessor for the key table; `member` is a path (ssh.host), which
// parentheses would break.
#define SSB_REF(member) \
  [](auto& c) -> auto& { return c.member; }  // NOLINT(bugprone-macro-parentheses)

const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    constexpr std::int64_t kMaxInt = std::numeric_limits<int>::max();
    std::vector<Key> t;
    Key host = string_key("ssh.host", SSB_REF(ssh.host), "Slurm login host to connect to (name or address). Required.",
                          host_name);
    host.required = true;
    host.info.default_text = "(none: required)";
    t.push_back(host);
    t.push_back(int_key("ssh.port", SSB_REF(ssh.port), 1, 65535, "TCP port of sshd on the login host."));
    t.push_back(string_key("ssh.user", SSB_REF(ssh.user), "Service account the bridge logs in as.", user_name));
    t.push_back(string_key("ssh.identity_file", SSB_REF(ssh.identity_file),
                           "Private key (no passphrase) used for public-key authentication; the only credential "
                           "tried.",
                           absolute_path));
    t.push_back(string_key("ssh.known_hosts", SSB_REF(ssh.known_hosts),
                           "known_hosts file holding the login host's key; checking is always strict.", absolute_path));
    t.push_back(bool_key("ssh.strict_key_permissions", SSB_REF(ssh.strict_key_permissions),
                         "Refuse an identity file readable or writable by group or others (false: warn only)."));
    t.push_back(int_key("ssh.connect_timeout_s", SSB_REF(ssh.connect_timeout_s), 1, 3600,
                        "Seconds allowed for TCP connect, key exchange and authentication."));
    t.push_back(
        int_key("ssh.command_timeout_s", SSB_REF(ssh.command_timeout_s), 1, 86400,
                "Seconds allowed for one wrapper run, from channel open to exit status; also how long sent data may "
                "stay unacknowledged before the connection counts as dead (TCP_USER_TIMEOUT)."));
    t.push_back(int_key("ssh.keepalive_interval_s", SSB_REF(ssh.keepalive_interval_s), 1, 3600,
                        "Daemon: seconds between keepalive probes on idle pooled connections."));
    t.push_back(string_key("remote.wrappers_dir", SSB_REF(remote.wrappers_dir),
                           "Directory on the login host holding slurmspawner_sbatch, slurmspawner_squeue and "
                           "slurmspawner_scancel.",
                           absolute_path));
    t.push_back(string_key("remote.sudo", SSB_REF(remote.sudo), "Path of sudo on the login host.", absolute_path));
    t.push_back(
        string_key("remote.bash", SSB_REF(remote.bash),
                   "Path of bash on the login host, for env.method = \"stdin\" when the service account's login "
                   "shell is not bash.",
                   absolute_path));
    t.push_back(string_key("remote.scontrol", SSB_REF(remote.scontrol),
                           "Path of scontrol on the login host; explain runs `scontrol -o show job ID` as the service "
                           "account (no sudo) to tell a user why their job pends or how it ended.",
                           absolute_path));
    t.push_back(string_key("remote.sacct", SSB_REF(remote.sacct),
                           "Path of sacct on the login host; explain asks it about a job slurmctld no longer holds "
                           "(needs Slurm accounting; without it explain degrades to not_found).",
                           absolute_path));
    t.push_back(list_key("env.forward", SSB_REF(env.forward),
                         "Names (glob patterns, '*' only) of environment variables forwarded to the wrapper on "
                         "submit. The login host's sudoers env_keep must keep them too.",
                         env_pattern));
    t.push_back(enum_key<EnvMethod>(
        "env.method", SSB_REF(env.method), {{"stdin", EnvMethod::stdin_records}, {"setenv", EnvMethod::setenv}},
        "How forwarded variables reach the wrapper: \"stdin\" (NUL-separated records ahead of the job script, "
        "exported by a fixed bash snippet; no sshd change needed) or \"setenv\" (SSH environment requests; the "
        "login host's sshd needs AcceptEnv for the forwarded names)."));
    t.push_back(list_key("env.secret_patterns", SSB_REF(env.secret_patterns),
                         "Names (glob patterns) whose values are secrets: never logged, never shown, never put on "
                         "a command line.",
                         env_pattern));
    t.push_back(int_key("limits.max_script_bytes", SSB_REF(limits.max_script_bytes), 1, 64LL << 20,
                        "Largest job script accepted on submit."));
    t.push_back(int_key("limits.max_env_bytes", SSB_REF(limits.max_env_bytes), 0, 16LL << 20,
                        "Largest total size of forwarded environment (names and values)."));
    t.push_back(int_key("limits.max_output_bytes", SSB_REF(limits.max_output_bytes), 1024, 64LL << 20,
                        "Largest stdout or stderr kept from one wrapper run; more is an error."));
    t.push_back(
        string_key("daemon.socket", SSB_REF(daemon.socket), "Unix socket the daemon listens on.", absolute_path));
    t.push_back(string_key("daemon.socket_mode", SSB_REF(daemon.socket_mode),
                           "Permissions of the daemon socket (octal string).", octal_mode));
    t.push_back(string_key("daemon.socket_group", SSB_REF(daemon.socket_group),
                           "Group given access to the socket (with socket_mode \"0660\"); empty: unchanged."));
    t.push_back(int_key("daemon.drain_timeout_s", SSB_REF(daemon.drain_timeout_s), 0, 3600,
                        "On SIGTERM/SIGINT, seconds in-flight requests get to finish."));
    t.push_back(int_key("daemon.max_line_bytes", SSB_REF(daemon.max_line_bytes), 1024, 256LL << 20,
                        "Largest request line accepted by the daemon."));
    t.push_back(int_key("daemon.max_clients", SSB_REF(daemon.max_clients), 1, 100000,
                        "Most client connections the daemon holds at once (lowered to what the open-file limit "
                        "allows; `status` shows the effective value). At the limit, the client idle longest is "
                        "closed to make room."));
    t.push_back(int_key("daemon.max_pending_per_client", SSB_REF(daemon.max_pending_per_client), 1, 100000,
                        "Requests one client may have in flight or answered but not yet read; beyond it the daemon "
                        "stops reading that client until it reads (back-pressure)."));
    t.push_back(int_key("daemon.idle_timeout_s", SSB_REF(daemon.idle_timeout_s), 0, 86400,
                        "Seconds a client with nothing in flight may stay silent before it is closed (0: never)."));
    t.push_back(list_key("daemon.allowed_users", SSB_REF(daemon.allowed_users),
                         "Local accounts (names or numeric uids) whose processes may use the daemon socket, checked "
                         "per connection with SO_PEERCRED; the daemon's own account always may. Empty (and "
                         "allowed_groups empty): whoever the socket's mode and group admit.",
                         account_name));
    t.push_back(list_key("daemon.allowed_groups", SSB_REF(daemon.allowed_groups),
                         "Local groups (names or numeric gids) whose members may use the daemon socket (the peer's "
                         "primary and supplementary groups), checked per connection.",
                         account_name));
    t.push_back(int_key("daemon.line_timeout_s", SSB_REF(daemon.line_timeout_s), 1, 3600,
                        "Seconds a client has to finish a request line it started; then it is answered "
                        "bad_request and closed."));
    t.push_back(int_key("pool.connections", SSB_REF(pool.connections), 1, 64,
                        "SSH connections the daemon keeps open to the login host."));
    t.push_back(int_key("pool.channels_per_connection", SSB_REF(pool.channels_per_connection), 1, 1024,
                        "Concurrent channels per connection; keep below sshd's MaxSessions (default 10)."));
    t.push_back(
        int_key("pool.queue_size", SSB_REF(pool.queue_size), 0, kMaxInt,
                "Requests that may wait, beyond the free channels, before new ones are refused as overloaded."));
    t.push_back(int_key("pool.queue_timeout_s", SSB_REF(pool.queue_timeout_s), 1, 3600,
                        "Seconds a request may wait for a free channel."));
    t.push_back(int_key("pool.reconnect_min_ms", SSB_REF(pool.reconnect_min_ms), 1, 3600000,
                        "First delay before reconnecting a failed connection (doubles, with jitter)."));
    t.push_back(int_key("pool.reconnect_max_ms", SSB_REF(pool.reconnect_max_ms), 1, 3600000,
                        "Largest delay between reconnect attempts."));
    t.push_back(enum_key<StatusMode>(
        "status.mode", SSB_REF(status.mode), {{"per_user", StatusMode::per_user}, {"coalesced", StatusMode::coalesced}},
        "Daemon: how queries are answered. \"per_user\": one sudo'd slurmspawner_squeue run per query; "
        "\"coalesced\": one squeue run as the service account for all job ids asked about in a window "
        "(status.window_ms), answering each user only about their own jobs (README, \"Coalesced status\")."));
    t.push_back(int_key("status.window_ms", SSB_REF(status.window_ms), 10, 60000,
                        "Coalesced status: least milliseconds between the starts of two squeue runs; queries "
                        "arriving meanwhile wait for the next run. Bounds the service account's RPC rate "
                        "(compare slurm.conf's rl_refill_rate)."));
    t.push_back(int_key("status.max_ids", SSB_REF(status.max_ids), 1, 5000,
                        "Coalesced status: most job ids on one squeue command line; more in a window are split "
                        "into several runs."));
    t.push_back(string_key("status.squeue", SSB_REF(status.squeue),
                           "Coalesced status: squeue on the login host, run as the service account (no sudo): a "
                           "command name on its PATH or an absolute path.",
                           command_name));
    t.push_back(string_key("submit.tag", SSB_REF(submit.tag),
                           "Exactly-once submit: every submitted script gets `#SBATCH --comment=ssb:TAG:TOKEN` "
                           "after its shebang (TOKEN: 32 random hex digits per submit), so a submit whose outcome "
                           "was lost is looked up in Slurm by its token, and `jobs` lists this hub's jobs. Give "
                           "each hub sharing a cluster its own tag (README, \"Exactly-once submit\").",
                           submit_tag));
    t.push_back(enum_key<ClientMode>(
        "client.mode", SSB_REF(client.mode),
        {{"auto", ClientMode::auto_select}, {"daemon", ClientMode::daemon}, {"direct", ClientMode::direct}},
        "\"auto\": use the daemon when its socket answers, else connect directly; \"daemon\": only the "
        "daemon (fail if it is not running); \"direct\": never use the daemon."));
    t.push_back(int_key("client.daemon_connect_timeout_ms", SSB_REF(client.daemon_connect_timeout_ms), 1, 60000,
                        "How long the CLI waits for the daemon's socket to accept."));
    t.push_back(string_key("client.daemon_uid", SSB_REF(client.daemon_uid),
                           "The account (name or number) the daemon must run as: before sending anything, the CLI "
                           "asks the kernel who listens on daemon.socket (SO_PEERCRED) and refuses any other, in "
                           "every client.mode (an `auth` error, never a fall-back). Empty: root or the CLI's own "
                           "account.",
                           [](const std::string& s) -> std::optional<std::string> {
                             if (s.empty()) return std::nullopt;
                             return account_name(s);
                           }));
    t.push_back(string_key("log.level", SSB_REF(log.level),
                           "Daemon log level: \"debug\", \"info\", \"warn\", \"error\".", [](const std::string& s) {
                             return one_of(s, {"debug", "info", "warn", "error"});
                           }));
    t.push_back(string_key("log.format", SSB_REF(log.format),
                           "Daemon log lines: \"text\" (\"TIME LEVEL message key=value ...\") or \"json\" (one "
                           "object per line: ts, level, msg and the fields; per request: id, op, user, job_id, "
                           "outcome, elapsed_ms, connection, peer_uid). Never a script or an environment value.",
                           [](const std::string& s) {
                             return one_of(s, {"text", "json"});
                           }));
    t.push_back(string_key("metrics.listen", SSB_REF(metrics.listen),
                           "Daemon: serve Prometheus metrics at GET /metrics on this loopback \"ADDRESS:PORT\" "
                           "(e.g. \"127.0.0.1:9464\"); empty: no listener (`slurm-ssh-bridge metrics` prints the "
                           "same text). Loopback only: the listener has no authentication.",
                           loopback_listen));
    return t;
  }();
  return table;
}

#undef SSB_REF

const Key* find_key(const std::string& name) {
  for (const auto& k : keys()) {
    if (k.info.name == name) return &k;
  }
  return nullptr;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggestion(const std::string& name) {
  const Key* best = nullptr;
  std::size_t best_d = 4;
  for (const auto& k : keys()) {
    auto d = edit_distance(name, k.info.name);
    if (d < best_d) {
      best_d = d;
      best = &k;
    }
  }
  return best ? fmt::format(" (did you mean '{}'?)", best->info.name) : std::string();
}

std::string section_suggestion(const std::string& section) {
  std::string best;
  std::size_t best_d = 3;
  for (const auto& k : keys()) {
    auto known = k.info.name.substr(0, k.info.name.find('.'));
    auto d = edit_distance(section, known);
    if (d < best_d) {
      best_d = d;
      best = known;
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean [{}]?)", best);
}

std::string location(const std::string& path, const toml::source_region& src) {
  if (src.begin.line == 0) return path;
  return fmt::format("{}:{}", path, src.begin.line);
}

std::optional<Value> value_from_node(const toml::node& node, Type type) {
  switch (type) {
    case Type::string:
      if (auto v = node.value<std::string>(); v && node.is_string()) return Value{*v};
      return std::nullopt;
    case Type::integer:
      if (node.is_integer()) return Value{*node.value<std::int64_t>()};
      return std::nullopt;
    case Type::boolean:
      if (node.is_boolean()) return Value{*node.value<bool>()};
      return std::nullopt;
    case Type::string_list: {
      const auto* arr = node.as_array();
      if (!arr) return std::nullopt;
      std::vector<std::string> items;
      for (const auto& item : *arr) {
        if (!item.is_string()) return std::nullopt;
        items.push_back(*item.value<std::string>());
      }
      return Value{std::move(items)};
    }
  }
  return std::nullopt;
}

const char* toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date/time";
  }
}

std::optional<Value> value_from_text(const std::string& text, Type type) {
  switch (type) {
    case Type::string: return Value{text};
    case Type::integer: {
      if (text.empty() || text.size() > 18) return std::nullopt;
      std::size_t i = text[0] == '-' ? 1 : 0;
      if (i == text.size() || text.find_first_not_of("0123456789", i) != std::string::npos) return std::nullopt;
      return Value{static_cast<std::int64_t>(std::stoll(text))};
    }
    case Type::boolean:
      if (text == "true" || text == "1" || text == "yes") return Value{true};
      if (text == "false" || text == "0" || text == "no") return Value{false};
      return std::nullopt;
    case Type::string_list: {
      std::vector<std::string> items;
      std::string cur;
      std::istringstream in(text);
      while (std::getline(in, cur, ',')) {
        if (!cur.empty()) items.push_back(cur);
      }
      return Value{std::move(items)};
    }
  }
  return std::nullopt;
}

Status apply_text(Config& config, const std::string& name, const std::string& text, const std::string& origin) {
  const Key* key = find_key(name);
  if (!key) {
    return make_error(Errc::config,
                      fmt::format("{}: unknown configuration key '{}'{}", origin, printable(name), suggestion(name)));
  }
  auto value = value_from_text(text, key->type);
  if (!value) {
    return make_error(Errc::config, fmt::format("{}: key '{}' must be a {}, got \"{}\"", origin, name,
                                                type_name(key->type), printable(text)));
  }
  if (auto why = key->set(config, *value)) {
    return make_error(Errc::config, fmt::format("{}: key '{}' {}", origin, name, *why));
  }
  config.origins[name] = origin;
  return {};
}

}  // namespace

const std::vector<KeyInfo>& key_reference() {
  static const std::vector<KeyInfo> infos = [] {
    std::vector<KeyInfo> v;
    for (const auto& k : keys()) v.push_back(k.info);
    return v;
  }();
  return infos;
}

Result<Config> load_string(const std::string& text, const std::string& path) {
  Config config;
  config.source_path = path;
  for (const auto& k : keys()) config.origins[k.info.name] = "default";

  if (auto hazard = find_toml_hazard(text)) {
    return make_error(Errc::config, fmt::format("{}:{}: {}", path, hazard->line, hazard->message));
  }
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& err) {
    return make_error(Errc::config, fmt::format("{}: syntax error: {}", location(path, err.source()),
                                                std::string(err.description())));
  }

  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    const auto* table = section_node.as_table();
    if (!table) {
      return make_error(
          Errc::config,
          fmt::format("{}: '{}' must be a section ([{}]), not {}; keys belong under a section such as "
                      "[ssh]",
                      location(path, section_node.source()), section, section, toml_type_name(section_node)));
    }
    bool known_section = false;
    for (const auto& k : keys()) {
      if (k.info.name.rfind(section + ".", 0) == 0) known_section = true;
    }
    if (!known_section) {
      return make_error(Errc::config,
                        fmt::format("{}: unknown section [{}]{}; sections are [ssh], [remote], [env], [limits], "
                                    "[daemon], [pool], [status], [submit], [client], [log], [metrics]",
                                    location(path, section_key.source()), section, section_suggestion(section)));
    }
    for (const auto& [key_name, node] : *table) {
      std::string name = section + "." + std::string(key_name.str());
      const Key* key = find_key(name);
      if (!key) {
        return make_error(Errc::config, fmt::format("{}: unknown key '{}'{}", location(path, key_name.source()),
                                                    printable(name), suggestion(name)));
      }
      auto value = value_from_node(node, key->type);
      if (!value) {
        return make_error(Errc::config, fmt::format("{}: key '{}' must be a {}, got {}", location(path, node.source()),
                                                    name, type_name(key->type), toml_type_name(node)));
      }
      if (auto why = key->set(config, *value)) {
        return make_error(Errc::config, fmt::format("{}: key '{}' {}", location(path, node.source()), name, *why));
      }
      config.origins[name] = fmt::format("file:{}", location(path, node.source()));
    }
  }
  return config;
}

Result<Config> load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return make_error(Errc::config,
                      fmt::format("{}: cannot read the configuration file ({}); pass --config PATH or set {}", path,
                                  std::strerror(errno), kConfigPathEnv));
  }
  // Whoever may rewrite the file chooses the host, the key and the socket.
  if (auto st = check_trusted_file(path, fmt::format("configuration file {}", path), Errc::config); !st) {
    return st.error();
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  return load_string(buf.str(), path);
}

Status apply_environment(Config& config, const std::vector<std::string>& environ_entries) {
  static const std::string prefix = "SLURM_SSH_BRIDGE_";
  for (const auto& entry : environ_entries) {
    if (entry.rfind(prefix, 0) != 0) continue;
    auto eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string var = entry.substr(0, eq);
    if (var == kConfigPathEnv || var == kTestingInsecureFilesEnv) continue;
    // SLURM_SSH_BRIDGE_SSH_CONNECT_TIMEOUT_S -> ssh.connect_timeout_s: the
    // section is the first word, the key the rest (sections hold no '_').
    std::string rest = var.substr(prefix.size());
    auto us = rest.find('_');
    std::string name;
    if (us != std::string::npos) {
      name = rest.substr(0, us) + "." + rest.substr(us + 1);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    }
    if (name.empty() || !find_key(name)) {
      return make_error(Errc::config, fmt::format("environment variable {} names no configuration key{}",
                                                  printable(var), name.empty() ? std::string() : suggestion(name)));
    }
    if (auto st = apply_text(config, name, entry.substr(eq + 1), "env:" + var); !st) return st;
  }
  return {};
}

Status apply_override(Config& config, const std::string& assignment, const std::string& origin) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    return make_error(Errc::config,
                      fmt::format("{}: expected SECTION.KEY=VALUE (for example ssh.port=2222), got \"{}\"", origin,
                                  printable(assignment)));
  }
  return apply_text(config, assignment.substr(0, eq), assignment.substr(eq + 1), origin);
}

Status finalize(Config& config) {
  std::string where = config.source_path.empty() ? std::string("configuration") : config.source_path;
  for (const auto& k : keys()) {
    if (k.required && config.origins[k.info.name] == "default") {
      return make_error(Errc::config,
                        fmt::format("{}: required key '{}' is missing; add it under [{}] (for example host = "
                                    "\"login.example.org\")",
                                    where, k.info.name, k.info.name.substr(0, k.info.name.find('.'))));
    }
  }
  // A socket others may write lets every local user submit and cancel jobs
  // as any user; only an allow list makes that safe.
  const auto mode = std::stoul(config.daemon.socket_mode, nullptr, 8);
  if ((mode & 0002U) != 0 && config.daemon.allowed_users.empty() && config.daemon.allowed_groups.empty()) {
    return make_error(Errc::config,
                      fmt::format("{}: daemon.socket_mode {} lets every local account submit and cancel jobs as any "
                                  "user; use socket_group with mode 0660, or list who may in daemon.allowed_users / "
                                  "daemon.allowed_groups",
                                  where, config.daemon.socket_mode));
  }
  if (config.pool.reconnect_min_ms > config.pool.reconnect_max_ms) {
    return make_error(Errc::config,
                      fmt::format("{}: pool.reconnect_min_ms ({}) must not exceed pool.reconnect_max_ms ({})", where,
                                  config.pool.reconnect_min_ms, config.pool.reconnect_max_ms));
  }
  return {};
}

std::string describe(const Config& config) {
  std::string out;
  out += fmt::format("# configuration file: {}\n", config.source_path.empty() ? "(none)" : config.source_path);
  std::string section;
  for (const auto& k : keys()) {
    auto dot = k.info.name.find('.');
    std::string s = k.info.name.substr(0, dot);
    if (s != section) {
      out += fmt::format("{}[{}]\n", section.empty() ? "" : "\n", s);
      section = s;
    }
    auto it = config.origins.find(k.info.name);
    std::string origin = it == config.origins.end() ? "default" : it->second;
    out += fmt::format("{} = {}    # {}\n", k.info.name.substr(dot + 1), k.get(config), origin);
  }
  return out;
}

std::string reference_markdown() {
  std::string out = "| key | type | default | meaning |\n| --- | --- | --- | --- |\n";
  for (const auto& k : key_reference()) {
    std::string def = k.default_text;
    std::string help = k.help;
    for (auto* s : {&def, &help}) {
      std::string esc;
      for (char c : *s) esc += (c == '|') ? std::string("\\|") : std::string(1, c);
      *s = esc;
    }
    out += fmt::format("| `{}` | {} | `{}` | {} |\n", k.name, k.type, def, help);
  }
  return out;
}

std::string resolve_path(const std::string& cli_value, const char* env_value) {
  if (!cli_value.empty()) return cli_value;
  if (env_value && *env_value) return env_value;
  return kDefaultConfigPath;
}

}  // namespace ssb::config
