// RAII over a libssh session: connect, strict host-key check against one
// known_hosts file, public-key authentication with one identity file.
//
// Threading: a Session (and every Exec on it) is used by one thread at a
// time; libssh sessions are not thread-safe.
#pragma once

#include "ssb/ssh/libssh.hpp"

#include <memory>
#include <string>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/util/result.hpp"

namespace ssb::ssh {

struct Endpoint {
  std::string host;
  int port = 22;
  std::string user;
  std::string identity_file;
  std::string known_hosts;
  int connect_timeout_s = 10;
  // Data the server has not acknowledged for this long drops the connection
  // (TCP_USER_TIMEOUT). A silently dropped link (a firewall that discards,
  // a cut cable) otherwise leaves a session that looks connected while TCP
  // retransmits with exponential backoff: after a few seconds of loss the
  // next retransmission can be more than a command timeout away, so a
  // recovered link still fails requests. From ssh.command_timeout_s.
  int unacked_timeout_s = 60;
  bool strict_key_permissions = true;

  static Endpoint from_config(const config::Config& config);
  std::string display() const;  // user@host:port
};

// Owns an ssh_key.
class Key {
 public:
  Key() = default;
  explicit Key(ssh_key key) : key_(key) {}
  Key(Key&& other) noexcept : key_(other.key_) { other.key_ = nullptr; }
  Key& operator=(Key&& other) noexcept;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key();
  ssh_key get() const { return key_; }
  std::string fingerprint() const;  // "SHA256:..."
  std::string type_name() const;

 private:
  ssh_key key_ = nullptr;
};

// Checks that the identity file exists, is a regular file, is not open to
// group/others (refused, or a warning in `warnings` when
// strict_key_permissions is false) and loads as an unencrypted private key.
Result<Key> load_identity(const Endpoint& endpoint, std::vector<std::string>& warnings);

// ssh.known_hosts is owned by root or us and writable by no one else
// (whoever may write it vouches for any host); a missing file passes here.
Status check_known_hosts(const Endpoint& endpoint);
// The same, and the file exists, is a regular file and can be read: what
// `serve` requires before it takes a request.
Status check_usable_known_hosts(const Endpoint& endpoint);

// Outcome of the host-key step, kept separate so `check` can report it.
enum class HostKeyVerdict { known, unknown, changed, other_type, no_file, error };

class Session {
 public:
  // Connects and verifies the host key; authenticates with `identity`.
  // Blocking, bounded by connect_timeout_s. Leaves the session in
  // non-blocking mode, ready for Exec.
  static Result<std::unique_ptr<Session>> open(const Endpoint& endpoint, const Key& identity);

  // Steps of open(), exposed for `check`.
  static Result<std::unique_ptr<Session>> connect_only(const Endpoint& endpoint);
  Result<HostKeyVerdict> verify_host_key();
  Status authenticate(const Key& identity);
  // After the steps above: switch to non-blocking mode, ready for Exec.
  void make_nonblocking();

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  ssh_session raw() const { return session_; }
  const Endpoint& endpoint() const { return endpoint_; }
  bool connected() const;

  // Asks the kernel to acknowledge the next segments at once. sshd sends a
  // few small packets before it enables TCP_NODELAY on its side; with
  // delayed ACKs each would stall ~40 ms. Not sticky: call before each poll.
  void quick_ack() const;
  std::string last_error() const;

 private:
  Session(ssh_session s, Endpoint e) : session_(s), endpoint_(std::move(e)) {}
  ssh_session session_;
  Endpoint endpoint_;
};

}  // namespace ssb::ssh
