#include "ssb/ssh/session.hpp"

#include <fmt/format.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "ssb/util/file_safety.hpp"

namespace ssb::ssh {

Endpoint Endpoint::from_config(const config::Config& config) {
  Endpoint e;
  e.host = config.ssh.host;
  e.port = config.ssh.port;
  e.user = config.ssh.user;
  e.identity_file = config.ssh.identity_file;
  e.known_hosts = config.ssh.known_hosts;
  e.connect_timeout_s = config.ssh.connect_timeout_s;
  e.unacked_timeout_s = config.ssh.command_timeout_s;
  e.strict_key_permissions = config.ssh.strict_key_permissions;
  return e;
}

std::string Endpoint::display() const { return fmt::format("{}@{}:{}", user, host, port); }

Key& Key::operator=(Key&& other) noexcept {
  if (this != &other) {
    if (key_) libssh().ssh_key_free(key_);
    key_ = other.key_;
    other.key_ = nullptr;
  }
  return *this;
}

Key::~Key() {
  if (key_) libssh().ssh_key_free(key_);
}

std::string Key::fingerprint() const {
  if (!key_) return {};
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (libssh().ssh_get_publickey_hash(key_, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) return {};
  char* text = libssh().ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  std::string out = text ? text : "";
  libssh().ssh_string_free_char(text);
  libssh().ssh_clean_pubkey_hash(&hash);
  return out;
}

std::string Key::type_name() const {
  if (!key_) return {};
  const char* name = libssh().ssh_key_type_to_char(libssh().ssh_key_type(key_));
  return name ? name : "unknown";
}

Result<Key> load_identity(const Endpoint& endpoint, std::vector<std::string>& warnings) {
  const auto& path = endpoint.identity_file;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(
        Errc::auth, fmt::format("identity file {} (ssh.identity_file) cannot be read: {}", path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::auth, fmt::format("identity file {} (ssh.identity_file) is not a regular file", path));
  }
  if ((st.st_mode & 077) != 0) {
    auto text = fmt::format(
        "identity file {} has permissions {:04o}: group or others can access the key; run `chmod 600 {}` (or mount "
        "the Secret with defaultMode 0400)",
        path, st.st_mode & 07777, path);
    if (endpoint.strict_key_permissions) {
      return make_error(Errc::auth, text + "; set ssh.strict_key_permissions = false to only warn");
    }
    warnings.push_back(text);
  }
  // Owner and write access: never relaxed (strict_key_permissions = false
  // only tolerates others *reading* the key).
  if (auto safe = check_trusted_file(path, fmt::format("identity file {} (ssh.identity_file)", path), Errc::auth);
      !safe) {
    return safe.error();
  }
  if (auto lib = load_libssh(); !lib) return lib.error();
  ssh_key key = nullptr;
  int rc = libssh().ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &key);
  if (rc != SSH_OK || key == nullptr) {
    return make_error(Errc::auth,
                      fmt::format("identity file {} is not a usable private key (unreadable, not a key, or protected "
                                  "by a passphrase; the bridge needs a key without passphrase)",
                                  path));
  }
  return Key(key);
}

Status check_known_hosts(const Endpoint& endpoint) {
  const auto& path = endpoint.known_hosts;
  return check_trusted_file(path, fmt::format("known_hosts file {} (ssh.known_hosts)", path), Errc::host_key);
}

Status check_usable_known_hosts(const Endpoint& endpoint) {
  const auto& path = endpoint.known_hosts;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_error(Errc::host_key, fmt::format("known_hosts file {} (ssh.known_hosts) cannot be used: {}; put the "
                                                  "login host's key there (ssh-keyscan, verified)",
                                                  path, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return make_error(Errc::host_key, fmt::format("known_hosts file {} (ssh.known_hosts) is not a regular file", path));
  }
  if (::access(path.c_str(), R_OK) != 0) {
    return make_error(Errc::host_key, fmt::format("known_hosts file {} (ssh.known_hosts) cannot be read: {}", path,
                                                  std::strerror(errno)));
  }
  return check_known_hosts(endpoint);
}

Session::~Session() {
  if (session_) {
    if (libssh().ssh_is_connected(session_)) libssh().ssh_disconnect(session_);
    libssh().ssh_free(session_);
  }
}

void Session::quick_ack() const {
  socket_t fd = libssh().ssh_get_fd(session_);
  if (fd < 0) return;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

void Session::make_nonblocking() { libssh().ssh_set_blocking(session_, 0); }

bool Session::connected() const { return session_ && libssh().ssh_is_connected(session_) != 0; }

std::string Session::last_error() const {
  const char* e = libssh().ssh_get_error(session_);
  return e && *e ? e : "unknown libssh error";
}

Result<std::unique_ptr<Session>> Session::connect_only(const Endpoint& endpoint) {
  if (auto lib = load_libssh(); !lib) return lib.error();
  ssh_session s = libssh().ssh_new();
  if (!s) return make_error(Errc::internal, "libssh could not allocate a session");
  std::unique_ptr<Session> session(new Session(s, endpoint));

  long timeout = endpoint.connect_timeout_s;
  int port = endpoint.port;
  int no = 0;
  int yes = 1;
  int verbosity = SSH_LOG_NOLOG;
  bool ok = libssh().ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_HOST, endpoint.host.c_str()) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_PORT, &port) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_USER, endpoint.user.c_str()) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &timeout) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, endpoint.known_hosts.c_str()) == 0 &&
            // The global file is pointed at the same file so that nothing but
            // the configured known_hosts can vouch for the host.
            libssh().ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, endpoint.known_hosts.c_str()) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_NODELAY, &yes) == 0 &&
            libssh().ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity) == 0;
  if (!ok) {
    return make_error(Errc::config,
                      fmt::format("libssh rejected the options for {}: {}", endpoint.display(), session->last_error()));
  }

  auto start = std::chrono::steady_clock::now();
  if (libssh().ssh_connect(s) != SSH_OK) {
    auto waited = std::chrono::steady_clock::now() - start;
    bool timed_out = waited >= std::chrono::seconds(endpoint.connect_timeout_s);
    return make_error(
        timed_out ? Errc::timeout : Errc::transport,
        fmt::format(
            "cannot connect to {}{}: {}", endpoint.display(),
            timed_out ? fmt::format(" within ssh.connect_timeout_s = {} s", endpoint.connect_timeout_s) : std::string(),
            session->last_error()));
  }
  // Set as soon as the socket exists: key exchange and authentication are
  // bounded by connect_timeout_s already, everything after by this.
  if (socket_t fd = libssh().ssh_get_fd(s); fd >= 0) {
    unsigned int ms = static_cast<unsigned int>(endpoint.unacked_timeout_s) * 1000U;
    ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof ms);
  }
  return session;
}

Result<HostKeyVerdict> Session::verify_host_key() {
  const auto& e = endpoint_;
  std::string fp;
  std::string type;
  ssh_key server_key = nullptr;
  if (libssh().ssh_get_server_publickey(session_, &server_key) == SSH_OK) {
    Key k(server_key);
    fp = k.fingerprint();
    type = k.type_name();
  }
  std::string host = e.port == 22 ? e.host : fmt::format("[{}]:{}", e.host, e.port);
  if (auto safe = check_known_hosts(e); !safe) return safe.error();
  // libssh reports a missing file as "unknown host"; say what is wrong.
  struct stat st {};
  auto verdict = ::stat(e.known_hosts.c_str(), &st) != 0 ? SSH_KNOWN_HOSTS_NOT_FOUND
                                                         : libssh().ssh_session_is_known_server(session_);
  switch (verdict) {
    case SSH_KNOWN_HOSTS_OK: return HostKeyVerdict::known;
    case SSH_KNOWN_HOSTS_CHANGED:
      return make_error(Errc::host_key,
                        fmt::format("host key of {} does not match its entry in {} (ssh.known_hosts): it offered {} "
                                    "{}; the host was re-keyed or someone is in the middle. Verify the new key with "
                                    "the login host's admins, then replace the entry",
                                    host, e.known_hosts, type, fp));
    case SSH_KNOWN_HOSTS_OTHER:
      return make_error(Errc::host_key,
                        fmt::format("{} (ssh.known_hosts) holds a key of another type for {}, which offered {} {}; "
                                    "add the right key type for this host after verifying it",
                                    e.known_hosts, host, type, fp));
    case SSH_KNOWN_HOSTS_UNKNOWN:
      return make_error(Errc::host_key,
                        fmt::format("host {} is not in {} (ssh.known_hosts); it offered {} {}. Verify that "
                                    "fingerprint, then add the key (ssh-keyscan -p {} {} >> {})",
                                    host, e.known_hosts, type, fp, e.port, e.host, e.known_hosts));
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      return make_error(Errc::host_key,
                        fmt::format("known_hosts file {} (ssh.known_hosts) does not exist; the key of {} ({} {}) "
                                    "cannot be checked",
                                    e.known_hosts, host, type, fp));
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      return make_error(Errc::host_key, fmt::format("cannot check the host key of {} against {}: {}", host,
                                                    e.known_hosts, last_error()));
  }
}

Status Session::authenticate(const Key& identity) {
  int rc = libssh().ssh_userauth_publickey(session_, nullptr, identity.get());
  if (rc == SSH_AUTH_SUCCESS) return {};
  if (rc == SSH_AUTH_ERROR) {
    return make_error(Errc::transport, fmt::format("connection to {} failed during authentication: {}",
                                                   endpoint_.display(), last_error()));
  }
  return make_error(
      Errc::auth,
      fmt::format("{} refused public-key authentication with {} ({} {}); is its public key in the "
                  "service account's authorized_keys?",
                  endpoint_.display(), endpoint_.identity_file, identity.type_name(), identity.fingerprint()));
}

Result<std::unique_ptr<Session>> Session::open(const Endpoint& endpoint, const Key& identity) {
  auto session = connect_only(endpoint);
  if (!session) return session.error();
  auto verdict = (*session)->verify_host_key();
  if (!verdict) return verdict.error();
  if (auto st = (*session)->authenticate(identity); !st) return st.error();
  (*session)->make_nonblocking();
  return std::move(*session);
}

}  // namespace ssb::ssh
