// The daemon's loopback HTTP listener for Prometheus (metrics.listen): GET
// /metrics answers the text exposition, anything else 404 (or 405 for
// another method), one response per connection, then close. Runs on the
// server's io thread, like the Unix socket's clients.
//
// Hostile-input limits, as for the Unix socket: a request head is at most
// kMaxRequestBytes and must arrive within kReadTimeout, at most kMaxClients
// scrapes are served at once (more are closed at accept), so a slow or
// flooding peer costs a bounded amount of memory and descriptors.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include "ssb/util/result.hpp"

namespace ssb::daemon {

class MetricsListener {
 public:
  static constexpr std::size_t kMaxRequestBytes = 8192;
  static constexpr std::chrono::seconds kReadTimeout{5};
  static constexpr std::size_t kMaxClients = 16;
  // After a failed accept (out of descriptors), the next one waits this long.
  static constexpr std::chrono::milliseconds kAcceptRetry{250};

  // `render`: the body of GET /metrics, called on the io thread.
  MetricsListener(boost::asio::io_context& io, std::function<std::string()> render);

  // Binds `listen` ("127.0.0.1:9464", "[::1]:9464"; checked by the config).
  Status open(const std::string& listen);
  void start();
  void close();
  // The bound port (the configured one, or the kernel's choice for port 0).
  unsigned short port() const;

  // The status line and body for one request head (pure: unit-tested).
  static std::pair<int, std::string> route(const std::string& head);

 private:
  void do_accept();
  void serve(boost::asio::ip::tcp::socket socket);

  std::function<std::string()> render_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;
  std::size_t active_ = 0;
};

}  // namespace ssb::daemon
