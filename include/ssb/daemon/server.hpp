// The daemon's front: owns the io_context, the signal set and the Unix
// socket acceptor (the shape of Asio's HTTP server example). Shutdown stops
// accepting, lets in-flight requests finish (bounded by
// daemon.drain_timeout_s), then stops the pool and exits cleanly.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <memory>
#include <set>
#include <string>

#include "ssb/config/config.hpp"
#include "ssb/daemon/metrics_listener.hpp"
#include "ssb/daemon/peer.hpp"
#include "ssb/daemon/pool.hpp"
#include "ssb/util/result.hpp"

namespace ssb::daemon {

class Connection;

class Server {
 public:
  explicit Server(const config::Config& config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Takes the socket systemd passed (socket activation), else binds it:
  // refuses when another daemon answers on it, replaces a stale socket
  // file, applies daemon.socket_mode / socket_group.
  Status listen();

  // Runs until SIGTERM/SIGINT and the drain are over. Returns the exit status.
  int run();

  // Used by connections.
  boost::asio::io_context& io() { return io_; }
  Pool& pool() { return pool_; }
  const config::Config& config() const { return config_; }
  bool stopping() const { return stopping_; }
  void remove(const std::shared_ptr<Connection>& connection);
  nlohmann::json status() const;
  // The Prometheus text (the `metrics` op and GET /metrics): from status()
  // and the pool's Stats, so it never disagrees with `status`.
  std::string metrics() const;
  // The metrics listener's port (0: off); for the tests, which bind port 0.
  unsigned short metrics_port() const { return metrics_.port(); }

 private:
  Status listen_socket();  // daemon.socket: inherited from systemd, else bound here
  // The phases of listen_socket(), in order.
  static Status prepare_socket_path(const std::string& path);  // length, directory, stale socket
  Status bind_private(const std::string& path);                // owner-only until grant_access
  static Status grant_access(const std::string& path, const std::string& group, const std::string& mode_text);
  void raise_file_limit();
  void do_accept();
  void on_accept_error(const boost::system::error_code& ec);
  void admit(boost::asio::local::stream_protocol::socket socket);
  bool evict_idlest();
  // The error a client not in daemon.allowed_users / allowed_groups gets.
  std::optional<Error> refusal_for(const std::optional<Peer>& peer);
  void begin_shutdown(int signal_number);
  void check_drained();
  void finish();

  const config::Config& config_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::local::stream_protocol::acceptor acceptor_;
  boost::asio::steady_timer drain_timer_;
  boost::asio::steady_timer accept_timer_;  // the acceptor's pause after EMFILE/ENFILE
  int accept_backoff_ms_ = 0;
  std::size_t max_clients_ = 0;  // daemon.max_clients, lowered to what RLIMIT_NOFILE allows
  long fd_limit_ = -1;           // the soft RLIMIT_NOFILE after raise_file_limit()
  // One per kind, so that a flood of one kind does not hide the first of another.
  struct RateLimitedWarning {
    Clock::time_point last{};
    std::uint64_t unlogged = 0;
    void warn(const std::string& message);
  };
  RateLimitedWarning accept_failures_;
  RateLimitedWarning busy_refusals_;
  RateLimitedWarning peer_refusals_;
  Clock::time_point drain_deadline_{};
  Pool pool_;
  MetricsListener metrics_;  // metrics.listen; closed unless configured
  PeerPolicy peers_;         // daemon.allowed_users / allowed_groups
  std::set<std::shared_ptr<Connection>> connections_;
  bool stopping_ = false;
  bool socket_owned_ = false;  // we bound it: we remove it
  bool activated_ = false;     // systemd passed it (inherited_socket.hpp)
  bool finished_ = false;
  std::uint64_t accepted_ = 0;  // numbers clients in the log
  Clock::time_point started_ = Clock::now();
};

}  // namespace ssb::daemon
