#include "ssb/daemon/server.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "ssb/daemon/connection.hpp"
#include "ssb/daemon/inherited_socket.hpp"
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

Server::Server(const config::Config& config)
    : config_(config), signals_(io_, SIGTERM, SIGINT), acceptor_(io_), drain_timer_(io_), pool_(config) {}

Server::~Server() {
  if (socket_owned_) ::unlink(config_.daemon.socket.c_str());
}

Status Server::listen() {
  // The workers need libssh; a daemon that cannot load it must not start
  // (and take requests it could never run).
  if (auto lib = ssh::load_libssh(); !lib) return lib.error();
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
    if (!ec) {
      if (connections_.size() >= static_cast<std::size_t>(config_.daemon.max_clients)) {
        log::warn(fmt::format("refused a client: daemon.max_clients = {} reached", config_.daemon.max_clients));
      } else {
        auto c = std::make_shared<Connection>(std::move(socket), *this, ++accepted_);
        connections_.insert(c);
        c->start();
      }
    } else if (ec != asio::error::operation_aborted) {
      log::warn(fmt::format("accept failed: {}", ec.message()));
    }
    do_accept();
  });
}

void Server::remove(const std::shared_ptr<Connection>& connection) {
  connection->stop();
  connections_.erase(connection);
  if (stopping_) check_drained();
}

nlohmann::json Server::status() const {
  auto j = pool_.status();
  j["clients"] = connections_.size();
  j["pid"] = ::getpid();
  auto [rss, hwm] = memory_kib();
  j["rss_kib"] = rss;
  j["peak_rss_kib"] = hwm;
  j["socket"] = config_.daemon.socket;
  j["socket_activated"] = activated_;
  j["stopping"] = stopping_;
  return j;
}

void Server::begin_shutdown(int signal_number) {
  if (stopping_) return;
  stopping_ = true;
  log::info(fmt::format("signal {} received: not accepting new clients, draining {} request(s) for at most {} s",
                        signal_number, pool_.pending(), config_.daemon.drain_timeout_s));
  boost::system::error_code ignored;
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
