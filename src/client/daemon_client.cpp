#include "ssb/client/daemon_client.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ssb/client/submit_resolver.hpp"
#include "ssb/core/submit_rule.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/util/peer_credentials.hpp"

namespace ssb::client {

namespace {
using Clock = std::chrono::steady_clock;
}

Result<DaemonSocket> DaemonSocket::connect(const config::Config& config) {
  const auto& path = config.daemon.socket;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return make_error(Errc::daemon_unavailable, fmt::format("cannot create a socket: {}", std::strerror(errno)));
  DaemonSocket s(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    return make_error(Errc::daemon_unavailable, fmt::format("daemon.socket {} is too long", path));
  }
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno == EAGAIN || errno == EINPROGRESS) {
      // Backlog full: wait a bounded time for the daemon to accept.
      pollfd p{fd, POLLOUT, 0};
      int rc = ::poll(&p, 1, config.client.daemon_connect_timeout_ms);
      int err = 0;
      socklen_t len = sizeof err;
      if (rc <= 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        return make_error(Errc::daemon_unavailable,
                          fmt::format("the daemon on {} did not accept within client.daemon_connect_timeout_ms = {}",
                                      path, config.client.daemon_connect_timeout_ms));
      }
    } else {
      return make_error(
          Errc::daemon_unavailable,
          fmt::format("no daemon answers on {} (daemon.socket): {}; start `slurm-ssh-bridge serve` or set "
                      "client.mode = \"auto\"",
                      path, std::strerror(errno)));
    }
  }
  if (auto st = check_daemon_identity(fd, config); !st) return st.error();
  return s;
}

Status check_daemon_identity(int fd, const config::Config& config) {
  const auto& path = config.daemon.socket;
  const auto& want = config.client.daemon_uid;
  std::vector<uid_t> expected;
  if (want.empty()) {
    expected = {0};
    if (::geteuid() != 0) expected.push_back(::geteuid());
  } else if (want.find_first_not_of("0123456789") == std::string::npos) {
    expected = {static_cast<uid_t>(std::strtoul(want.c_str(), nullptr, 10))};
  } else if (const passwd* pw = ::getpwnam(want.c_str())) {
    expected = {pw->pw_uid};
  } else {
    return make_error(Errc::config,
                      fmt::format("client.daemon_uid names {}, which is not an account on this host", want));
  }
  auto peer = peer_credentials(fd);
  if (!peer) {
    return make_error(Errc::auth, fmt::format("cannot learn who listens on {} (daemon.socket): the kernel gave no "
                                              "peer credentials; nothing was sent",
                                              path));
  }
  for (uid_t uid : expected) {
    if (peer->uid == uid) return {};
  }
  std::string names;
  for (uid_t uid : expected) names += fmt::format("{}{}", names.empty() ? "" : " or ", uid);
  return make_error(Errc::auth,
                    fmt::format("the process listening on {} (daemon.socket) runs as uid {} (pid {}), not as the "
                                "daemon's account (uid {}); nothing was sent to it. If that is the real daemon, set "
                                "client.daemon_uid to its account; otherwise remove the impostor's socket",
                                path, peer->uid, peer->pid, names));
}

DaemonSocket::~DaemonSocket() {
  if (fd_ >= 0) ::close(fd_);
}

Status DaemonSocket::send_line(const std::string& line, bool& sent) {
  sent = false;
  std::string data = line + "\n";
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 30000) <= 0) return make_error(Errc::daemon_unavailable, "the daemon stopped reading");
      continue;
    }
    return make_error(Errc::daemon_unavailable, fmt::format("lost the daemon while sending: {}", std::strerror(errno)));
  }
  sent = true;
  return {};
}

Result<std::string> DaemonSocket::read_line(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return make_error(Errc::timeout, "the daemon did not answer in time");
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (rc < 0 && errno != EINTR) return make_error(Errc::daemon_unavailable, std::strerror(errno));
    if (rc <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return make_error(Errc::daemon_unavailable, "the daemon closed the connection before answering");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return make_error(Errc::daemon_unavailable, fmt::format("lost the daemon: {}", std::strerror(errno)));
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
  }
}

namespace {

// The protocol carries text: a script or value that is not UTF-8 could only
// arrive altered.
bool protocol_can_carry(const core::Request& request) {
  bool text_ok = protocol::valid_utf8(request.script);
  for (const auto& [name, value] : request.env) text_ok = text_ok && protocol::valid_utf8(value);
  return text_ok;
}

// The daemon bounds every request itself (queue wait + command timeout);
// this is only a backstop against a hung daemon.
std::chrono::milliseconds reply_backstop(const config::Config& config) {
  return std::chrono::seconds(config.pool.queue_timeout_s + config.ssh.command_timeout_s +
                              config.ssh.connect_timeout_s + 5);
}

// A submit the daemon may have received, lost with the daemon: never re-sent.
Error submit_lost(const core::Request& request, std::string why) {
  return core::classify_submit_failure(request, Error{Errc::transport, std::move(why)}, true);
}

Result<core::Response> decode_reply(const std::string& reply) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(reply);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::internal, fmt::format("the daemon sent an unreadable response: {}", e.what()));
  }
  return protocol::response_from_json(j);
}

}  // namespace

core::Response DaemonExecutor::execute(const core::Request& request) {
  const bool auto_mode = config_.client.mode == config::ClientMode::auto_select;
  const bool submit = request.op == core::Op::submit;
  auto start = Clock::now();
  auto fallback = [&]() { return DirectExecutor(config_).execute(request); };
  auto failed = [&](Error e) {
    auto r = core::from_error(request, std::move(e));
    r.path = "daemon";
    // A submit the daemon lost (or reported as unknown) is looked up by its
    // token over a direct connection: the daemon may be gone.
    if (r.error->code == Errc::submit_unknown) r = SubmitResolver(config_).resolve(request, std::move(r));
    r.path = "daemon";
    r.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    return r;
  };

  // Before anything is sent, any failure may go the direct path in auto mode.
  if (!protocol_can_carry(request)) {
    if (auto_mode) return fallback();
    return failed(Error{Errc::bad_request,
                        fmt::format("the job script or a forwarded variable of user {} is not valid UTF-8, which the "
                                    "daemon protocol cannot carry unchanged; use --mode direct",
                                    request.user)});
  }
  auto socket = DaemonSocket::connect(config_);
  // Only "no daemon" goes direct: a listener that is not the daemon is an
  // attack or a misconfiguration, and falling back would hide it.
  if (!socket)
    return auto_mode && socket.error().code == Errc::daemon_unavailable ? fallback() : failed(socket.error());

  // Once the request may have reached the daemon, a submit is never re-run.
  bool sent = false;
  if (auto st = socket->send_line(protocol::to_line(protocol::request_to_json("cli", request)), sent); !st) {
    if (auto_mode && (!sent || !submit)) return fallback();
    if (sent && submit) return failed(submit_lost(request, st.error().message));
    return failed(st.error());
  }
  auto reply = socket->read_line(reply_backstop(config_));
  if (!reply) {
    // The daemon died or hung with our request. A query or cancel is safe
    // to run again directly; a submit is not.
    if (submit)
      return failed(submit_lost(request, "the daemon failed while handling the submit: " + reply.error().message));
    if (auto_mode) return fallback();
    return failed(Error{Errc::daemon_unavailable, reply.error().message});
  }

  auto response = decode_reply(*reply);
  if (!response) return failed(response.error());
  // A stopping daemon answers shutting_down only for requests it never sent
  // (or queries/cancels, which are safe to repeat): in auto mode the direct
  // path serves them, so a hub restart costs no request.
  if (auto_mode && response->error && response->error->code == Errc::shutting_down) return fallback();
  if (response->error && response->error->code == Errc::submit_unknown) return failed(*response->error);
  return std::move(*response);
}

namespace {

// One request the daemon answers itself (status, metrics): sends it, reads
// the one reply line, and returns the reply's `field`.
Result<nlohmann::json> ask_daemon(const config::Config& config, const nlohmann::json& request, const char* field) {
  auto socket = DaemonSocket::connect(config);
  if (!socket) return socket.error();
  bool sent = false;
  if (auto st = socket->send_line(protocol::to_line(request), sent); !st) return st.error();
  auto reply = socket->read_line(std::chrono::seconds(10));
  if (!reply) return reply.error();
  try {
    auto j = nlohmann::json::parse(*reply);
    // A refusal (e.g. daemon.allowed_users) comes as an error envelope.
    if (!j.value("ok", false) && j.contains("error") && j.at("error").is_object()) {
      Errc code = Errc::internal;
      const auto& e = j.at("error");
      if (!errc_from_string(e.value("code", std::string()), code)) code = Errc::internal;
      return make_error(code, e.value("message", fmt::format("the daemon refused the {} request", field)));
    }
    if (!j.value("ok", false) || !j.contains(field)) {
      return make_error(Errc::internal, fmt::format("the daemon's {} response has no {}", field, field));
    }
    return j.at(field);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::internal, fmt::format("the daemon sent an unreadable {}: {}", field, e.what()));
  }
}

}  // namespace

Result<nlohmann::json> daemon_status(const config::Config& config) {
  auto status = ask_daemon(config, protocol::status_request("status"), "status");
  if (!status) return status.error();
  nlohmann::json out{{"ok", true}};
  out.update(*status);
  return out;
}

Result<std::string> daemon_metrics(const config::Config& config) {
  auto text = ask_daemon(config, protocol::metrics_request("metrics"), "metrics");
  if (!text) return text.error();
  if (!text->is_string()) return make_error(Errc::internal, "the daemon's metrics response is not text");
  return text->get<std::string>();
}

}  // namespace ssb::client
