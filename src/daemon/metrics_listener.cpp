#include "ssb/daemon/metrics_listener.hpp"

#include <fmt/format.h>

#include <memory>

#include "ssb/util/log.hpp"

namespace ssb::daemon {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

const char* reason(int code) {
  switch (code) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Error";
  }
}

// One scrape: the socket, its deadline and its request head.
struct Scrape {
  explicit Scrape(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
  tcp::socket socket;
  asio::steady_timer timer;
  asio::streambuf head{MetricsListener::kMaxRequestBytes};
  std::string reply;
};

}  // namespace

MetricsListener::MetricsListener(asio::io_context& io, std::function<std::string()> render)
    : render_(std::move(render)), acceptor_(io), retry_(io) {}

Status MetricsListener::open(const std::string& listen) {
  const auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  const auto port = static_cast<unsigned short>(std::stoul(listen.substr(colon + 1)));
  if (!ec) {
    tcp::endpoint endpoint(address, port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return make_error(Errc::config, fmt::format("cannot listen for metrics on metrics.listen = \"{}\": {}; choose "
                                                "another port, or set metrics.listen = \"\" to turn the listener off",
                                                listen, ec.message()));
  }
  return {};
}

unsigned short MetricsListener::port() const {
  boost::system::error_code ec;
  auto endpoint = acceptor_.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

void MetricsListener::start() {
  if (acceptor_.is_open()) do_accept();
}

void MetricsListener::close() {
  boost::system::error_code ignored;
  retry_.cancel();
  acceptor_.close(ignored);
}

void MetricsListener::do_accept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (active_ >= kMaxClients) {
        log::debug(fmt::format("metrics: {} scrapes already in progress; closed another", active_));
      } else {
        serve(std::move(socket));
      }
      do_accept();
      return;
    }
    // Out of descriptors (EMFILE/ENFILE): the connection stays in the
    // backlog, so an immediate retry fails the same way at once, a busy
    // loop. Wait, as the Unix acceptor does (Server::on_accept_error).
    log::debug(fmt::format("metrics: accept failed: {}; retrying in {} ms", ec.message(), kAcceptRetry.count()));
    retry_.expires_after(kAcceptRetry);
    retry_.async_wait([this](boost::system::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) do_accept();
    });
  });
}

std::pair<int, std::string> MetricsListener::route(const std::string& head) {
  // The request line: METHOD SP TARGET SP VERSION.
  const auto eol = head.find("\r\n");
  const std::string line = head.substr(0, eol);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    return {400, "not an HTTP request\n"};
  }
  const std::string method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));  // Prometheus may add parameters
  if (target != "/metrics") return {404, "not found; the metrics are at /metrics\n"};
  if (method != "GET" && method != "HEAD") return {405, "only GET /metrics\n"};
  return {200, std::string()};
}

void MetricsListener::serve(tcp::socket socket) {
  auto s = std::make_shared<Scrape>(std::move(socket));
  ++active_;
  auto done = [this, s] {
    boost::system::error_code ignored;
    s->timer.cancel();
    s->socket.shutdown(tcp::socket::shutdown_both, ignored);
    s->socket.close(ignored);
    --active_;
  };
  s->timer.expires_after(kReadTimeout);
  s->timer.async_wait([s](boost::system::error_code ec) {
    if (ec) return;
    boost::system::error_code ignored;
    s->socket.close(ignored);  // the pending read or write fails and ends the scrape
  });
  asio::async_read_until(s->socket, s->head, "\r\n\r\n", [this, s, done](boost::system::error_code ec, std::size_t n) {
    int code = 0;
    std::string body;
    if (ec == asio::error::not_found) {
      code = 431;
      body = fmt::format("request head longer than {} bytes\n", kMaxRequestBytes);
    } else if (ec) {
      done();  // closed, timed out, or reset: nobody to answer
      return;
    } else {
      std::string head(asio::buffers_begin(s->head.data()),
                       asio::buffers_begin(s->head.data()) + static_cast<std::ptrdiff_t>(n));
      std::tie(code, body) = route(head);
      if (code == 200) {
        body = render_();
        if (head.rfind("HEAD ", 0) == 0) body.clear();
      }
    }
    const char* type = code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8";
    s->reply = fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                           code, reason(code), type, body.size(), body);
    asio::async_write(s->socket, asio::buffer(s->reply), [s, done](boost::system::error_code, std::size_t) { done(); });
  });
}

}  // namespace ssb::daemon
