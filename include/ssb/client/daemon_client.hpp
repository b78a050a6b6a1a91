// The CLI's side of the daemon protocol: one request over the Unix socket.
#pragma once

#include <nlohmann/json.hpp>

#include "ssb/client/executor.hpp"
#include "ssb/util/result.hpp"

namespace ssb::client {

// A connected socket to the daemon (RAII).
class DaemonSocket {
 public:
  // Fails with daemon_unavailable when nothing answers on daemon.socket,
  // and with auth when what answers is not the daemon's account.
  static Result<DaemonSocket> connect(const config::Config& config);
  DaemonSocket(DaemonSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DaemonSocket& operator=(DaemonSocket&&) = delete;
  DaemonSocket(const DaemonSocket&) = delete;
  ~DaemonSocket();

  // Sends one request line; `sent` tells whether all of it left.
  Status send_line(const std::string& line, bool& sent);
  // Reads one response line within `timeout`.
  Result<std::string> read_line(std::chrono::milliseconds timeout);

 private:
  explicit DaemonSocket(int fd) : fd_(fd) {}
  int fd_ = -1;
  std::string buffer_;
};

// Before anything is sent on `fd`: the listener runs as client.daemon_uid
// (default: root or our own uid), by the kernel's SO_PEERCRED. A fake
// daemon would otherwise receive the hub's API token and could answer
// "job gone" for a running job; a mismatch is an `auth` error (the job's
// state reads as unknown) naming the socket, both uids and the key.
Status check_daemon_identity(int fd, const config::Config& config);

// Runs requests through the daemon. In client.mode = "auto" a daemon that
// does not answer means the direct path; one that fails mid-request means
// the direct path for query/cancel, and submit_unknown for a submit that
// was already sent (never a second submit).
class DaemonExecutor final : public Executor {
 public:
  explicit DaemonExecutor(const config::Config& config) : config_(config) {}
  core::Response execute(const core::Request& request) override;

 private:
  const config::Config& config_;
};

// `status`: the daemon's status object.
Result<nlohmann::json> daemon_status(const config::Config& config);

// `metrics`: the daemon's Prometheus text, as its HTTP listener serves it.
Result<std::string> daemon_metrics(const config::Config& config);

}  // namespace ssb::client
