#include "ssb/daemon/server.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "ssb/daemon/connection.hpp"
#include "ssb/daemon/inherited_socket.hpp"
#include "ssb/daemon/metrics.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/ssh/libssh.hpp"
#include "ssb/util/log.hpp"

namespace ssb::daemon {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

namespace {

// True when something accepts connections on the socket path.
bool socket_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// VmRSS and VmHWM (peak) of this process, in KiB.
std::pair<long, long> memory_kib() {
  std::ifstream in("/proc/self/status");
  long rss = -1, hwm = -1;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::stol(line.substr(6));
  }
  return {rss, hwm};
}

}  // namespace

// Descriptors kept back from daemon.max_clients: the pool's SSH sockets and
// wake-up eventfds, the listener, the log, libssh's and the resolver's own.
constexpr long kReservedFds = 64;
constexpr int kMaxAcceptBackoffMs = 1000;
constexpr auto kAcceptLogEvery = std::chrono::seconds(10);

Server::Server(const config::Config& config)
    : config_(config), signals_(io_, SIGTERM, SIGINT), acceptor_(io_), drain_timer_(io_), accept_timer_(io_),
      max_clients_(static_cast<std::size_t>(config.daemon.max_clients)), pool_(config),
      metrics_(io_, [this] { return metrics(); }) {}

void Server::raise_file_limit() {
  // The usual soft limit (1024) is below what daemon.max_clients (1024) plus
  // the daemon's own descriptors need; the hard limit is usually far higher.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  fd_limit_ = lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<long>(lim.rlim_cur);
  if (fd_limit_ > 0) {
    const long room = std::max(1L, fd_limit_ - kReservedFds - 2L * config_.pool.connections);
    if (static_cast<long>(max_clients_) > room) {
      log::warn(
          fmt::format("daemon.max_clients = {} lowered to {}: the open-file limit is {} (raise LimitNOFILE= "
                      "or ulimit -n)",
                      config_.daemon.max_clients, room, fd_limit_));
      max_clients_ = static_cast<std::size_t>(room);
    }
  }
}

Server::~Server() {
  if (socket_owned_) ::unlink(config_.daemon.socket.c_str());
}

Status Server::listen() {
  // The workers need libssh; a daemon that cannot load it must not start
  // (and take requests it could never run).
  if (auto lib = ssh::load_libssh(); !lib) return lib.error();
  raise_file_limit();
  auto peers = PeerPolicy::from_config(config_);
  if (!peers) return peers.error();
  peers_ = *peers;
  if (auto st = listen_socket(); !st) return st;
  // Bound by the daemon itself under socket activation too: the unit passes
  // only the Unix socket (and allows AF_INET for this).
  if (!config_.metrics.listen.empty()) return metrics_.open(config_.metrics.listen);
  return {};
}

Status Server::listen_socket() {
  const auto& path = config_.daemon.socket;
  auto inherited = inherited_listener(path);
  if (!inherited) return inherited.error();
  if (*inherited) {
    // systemd owns the socket, its mode and group (the .socket unit's
    // SocketMode= / SocketGroup=), and removes it: we only accept on it.
    boost::system::error_code ec;
    acceptor_.assign(stream(), **inherited, ec);
    if (ec) return make_error(Errc::config, fmt::format("cannot use the socket systemd passed: {}", ec.message()));
    activated_ = true;
    return {};
  }
  if (auto st = prepare_socket_path(path); !st) return st;
  if (auto st = bind_private(path); !st) return st;
  socket_owned_ = true;
  return grant_access(path, config_.daemon.socket_group, config_.daemon.socket_mode);
}

Status Server::prepare_socket_path(const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return make_error(Errc::config, fmt::format("daemon.socket {} is longer than a Unix socket path may be ({} bytes)",
                                                path, sizeof(sockaddr_un::sun_path) - 1));
  }
  std::error_code fs_ec;
  auto dir = std::filesystem::path(path).parent_path();
  if (!dir.empty() && !std::filesystem::exists(dir, fs_ec)) {
    std::filesystem::create_directories(dir, fs_ec);
    if (fs_ec) {
      return make_error(Errc::config, fmt::format("cannot create the directory {} for daemon.socket: {}", dir.string(),
                                                  fs_ec.message()));
    }
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return make_error(Errc::config, fmt::format("daemon.socket {} exists and is not a socket; remove it or choose "
                                                  "another path",
                                                  path));
    }
    if (socket_answers(path)) {
      return make_error(Errc::config, fmt::format("another slurm-ssh-bridge daemon is already listening on {}; stop it "
                                                  "first or set daemon.socket to another path",
                                                  path));
    }
    ::unlink(path.c_str());  // stale: left by a daemon that died
    log::info(fmt::format("replaced stale socket file {}", path));
  }
  return {};
}

Status Server::bind_private(const std::string& path) {
  // Create the socket with no access for anyone but us (grant_access then
  // widens it to the configured mode): no window in which others could connect.
  mode_t old_mask = ::umask(0177);
  boost::system::error_code ec;
  acceptor_.open(stream(), ec);
  if (!ec) acceptor_.bind(stream::endpoint(path), ec);
  ::umask(old_mask);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return make_error(Errc::config, fmt::format("cannot listen on {}: {}", path, ec.message()));
  return {};
}

Status Server::grant_access(const std::string& path, const std::string& group, const std::string& mode_text) {
  auto mode = static_cast<mode_t>(std::stoul(mode_text, nullptr, 8));  // validated by the config (octal_mode)
  if (!group.empty()) {
    struct group* gr = ::getgrnam(group.c_str());
    if (!gr) return make_error(Errc::config, fmt::format("daemon.socket_group {} is not a group on this host", group));
    if (::chown(path.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0) {
      return make_error(Errc::config, fmt::format("cannot give {} to group {}: {}", path, group, std::strerror(errno)));
    }
  }
  if (::chmod(path.c_str(), mode) != 0) {
    return make_error(Errc::config, fmt::format("cannot set mode {} on {}: {}", mode_text, path, std::strerror(errno)));
  }
  return {};
}

int Server::run() {
  if (auto st = pool_.start(); !st) {
    log::error(st.error().message);
    return exit_status_for(st.error().code);
  }
  signals_.async_wait([this](boost::system::error_code ec, int signo) {
    if (!ec) begin_shutdown(signo);
  });
  do_accept();
  metrics_.start();
  if (!config_.metrics.listen.empty()) {
    log::info(fmt::format("serving metrics at http://{}/metrics", config_.metrics.listen));
  }
  log::info(fmt::format("listening on {}{} (pool: {} connections x {} channels to {}@{}:{})", config_.daemon.socket,
                        activated_ ? " (socket from systemd)" : "", config_.pool.connections,
                        config_.pool.channels_per_connection, config_.ssh.user, config_.ssh.host, config_.ssh.port));
  io_.run();
  pool_.stop();
  log::info("stopped");
  return 0;
}

void Server::do_accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, stream::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec) {
      on_accept_error(ec);
      return;
    }
    accept_backoff_ms_ = 0;
    admit(std::move(socket));
    do_accept();
  });
}

void Server::on_accept_error(const boost::system::error_code& ec) {
  if (ec == asio::error::operation_aborted) return;
  // Out of descriptors (EMFILE/ENFILE, or ENOBUFS/ENOMEM): the pending
  // connection stays in the backlog and accept would fail again at once, a
  // busy loop. Pause the acceptor, doubling up to 1 s, and log at a bounded
  // rate.
  accept_backoff_ms_ = std::min(kMaxAcceptBackoffMs, std::max(10, accept_backoff_ms_ * 2));
  accept_failures_.warn(fmt::format("accept failed: {} ({} clients; pausing the acceptor for up to {} ms)",
                                    ec.message(), connections_.size(), kMaxAcceptBackoffMs));
  accept_timer_.expires_after(std::chrono::milliseconds(accept_backoff_ms_));
  accept_timer_.async_wait([this](boost::system::error_code tec) {
    if (!tec && acceptor_.is_open()) do_accept();
  });
}

void Server::RateLimitedWarning::warn(const std::string& message) {
  // One line per kAcceptLogEvery with the count of those not written: a
  // flood of clients must not become a flood of log lines.
  ++unlogged;
  const auto now = Clock::now();
  if (now - last < kAcceptLogEvery) return;
  log::warn(fmt::format("{} [{} such event(s) since the last report]", message, unlogged));
  last = now;
  unlogged = 0;
}

std::optional<Error> Server::refusal_for(const std::optional<Peer>& peer) {
  if (!peers_.restricted()) return std::nullopt;
  if (peer && peers_.allows(*peer)) return std::nullopt;
  const std::string who = peer ? fmt::format("uid {} (pid {})", peer->uid, peer->pid) : std::string("an unknown peer");
  peer_refusals_.warn(fmt::format("refused a client: {} is not in daemon.allowed_users / allowed_groups", who));
  return Error{Errc::auth, fmt::format("{} may not use this daemon (daemon.allowed_users / allowed_groups); ask the "
                                       "hub's admin",
                                       who)};
}

void Server::admit(stream::socket socket) {
  const auto peer = peer_of(socket.native_handle());  // once: for the allow lists and the request log
  auto refusal = refusal_for(peer);
  if (connections_.size() >= max_clients_ && !evict_idlest()) {
    busy_refusals_.warn(
        fmt::format("refused a client: {} clients, all busy (daemon.max_clients)", connections_.size()));
    return;  // the socket closes here: the client sees the connection end
  }
  auto c = std::make_shared<Connection>(std::move(socket), *this, ++accepted_, peer, std::move(refusal));
  connections_.insert(c);
  c->start();
}

bool Server::evict_idlest() {
  // At the limit, the client that has had nothing in flight for longest
  // makes room: idle clients cannot lock out one that has work.
  std::shared_ptr<Connection> idlest;
  for (const auto& c : connections_) {
    if (!c->idle() || c->buffered_bytes() > 0) continue;
    if (!idlest || c->last_activity() < idlest->last_activity()) idlest = c;
  }
  if (!idlest) return false;
  log::debug(fmt::format("client {} closed to make room (idle longest, daemon.max_clients = {})", idlest->number(),
                         max_clients_));
  remove(idlest);
  return true;
}

void Server::remove(const std::shared_ptr<Connection>& connection) {
  const bool large = connection->buffered_bytes() > 0 || connection->queued_responses() > 16;
  connection->stop();
  connections_.erase(connection);
  // Hand memory a client's lines or unread answers held back to the system:
  // glibc keeps freed heap otherwise, and one hostile burst would leave the
  // daemon large for good.
  if (large) ::malloc_trim(0);
  if (stopping_) check_drained();
}

nlohmann::json Server::status() const {
  auto j = pool_.status();
  j["clients"] = connections_.size();
  j["max_clients"] = max_clients_;
  j["fd_limit"] = fd_limit_;
  std::size_t queued = 0;
  std::size_t buffered = 0;
  for (const auto& c : connections_) {
    queued += c->queued_responses();
    buffered += c->buffered_bytes();
  }
  j["queued_responses"] = queued;
  j["buffered_request_bytes"] = buffered;
  j["pid"] = ::getpid();
  auto [rss, hwm] = memory_kib();
  j["rss_kib"] = rss;
  j["peak_rss_kib"] = hwm;
  j["socket"] = config_.daemon.socket;
  j["socket_activated"] = activated_;
  j["stopping"] = stopping_;
  return j;
}

std::string Server::metrics() const { return render_metrics(status(), pool_.stats()); }

void Server::begin_shutdown(int signal_number) {
  if (stopping_) return;
  stopping_ = true;
  log::info(fmt::format("signal {} received: not accepting new clients, draining {} request(s) for at most {} s",
                        signal_number, pool_.pending(), config_.daemon.drain_timeout_s));
  boost::system::error_code ignored;
  accept_timer_.cancel();
  acceptor_.close(ignored);
  if (socket_owned_) {
    ::unlink(config_.daemon.socket.c_str());
    socket_owned_ = false;
  }
  drain_deadline_ = Clock::now() + std::chrono::seconds(config_.daemon.drain_timeout_s);
  // A second signal ends the drain at once.
  signals_.async_wait([this](boost::system::error_code ec, int) {
    if (!ec) finish();
  });
  check_drained();
}

void Server::check_drained() {
  bool idle = pool_.pending() == 0;
  for (const auto& c : connections_) idle = idle && c->idle();
  if (idle || Clock::now() >= drain_deadline_) {
    finish();
    return;
  }
  drain_timer_.expires_after(std::chrono::milliseconds(50));
  drain_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check_drained();
  });
}

void Server::finish() {
  if (finished_) return;
  finished_ = true;
  drain_timer_.cancel();
  signals_.cancel();
  metrics_.close();
  // Requests still running get their shutting_down / submit_unknown answer;
  // give the io thread a moment to write those before closing.
  pool_.stop();
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(200));
  timer->async_wait([this, timer](boost::system::error_code) {
    for (const auto& c : connections_) c->stop();
    connections_.clear();
    io_.stop();
  });
}

}  // namespace ssb::daemon
