#include "ssb/daemon/connection.hpp"
#include "ssb/util/token.hpp"

#include <fmt/format.h>

#include "ssb/core/validate.hpp"
#include "ssb/daemon/server.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/util/log.hpp"

namespace ssb::daemon {

namespace asio = boost::asio;

using Clock = std::chrono::steady_clock;

Connection::Connection(asio::local::stream_protocol::socket socket, Server& server, std::uint64_t number,
                       std::optional<Peer> peer, std::optional<Error> refusal)
    : socket_(std::move(socket)), server_(server), number_(number),
      buffer_(static_cast<std::size_t>(server.config().daemon.max_line_bytes) + 1), refusal_(std::move(refusal)),
      peer_uid_(peer ? std::to_string(peer->uid) : std::string("-")), timer_(server.io()) {}

void Connection::start() {
  do_read();
  arm_timer();
}

void Connection::stop() {
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void Connection::arm_timer() {
  // One check a second is fine-grained enough for timeouts counted in
  // seconds, and costs nothing next to a request.
  auto self = shared_from_this();
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this, self](boost::system::error_code ec) {
    if (!ec && socket_.is_open()) on_tick();
  });
}

void Connection::on_tick() {
  const auto& d = server_.config().daemon;
  const auto now = Clock::now();
  // A partial line: the bytes of a request that has not ended yet.
  if (buffer_.size() == 0) {
    line_started_ = {};
  } else if (line_started_ == Clock::time_point{}) {
    line_started_ = now;
  } else if (now - line_started_ >= std::chrono::seconds(d.line_timeout_s)) {
    log::info(
        fmt::format("client {}: a request line ({} bytes so far) did not end within daemon.line_timeout_s = "
                    "{} s; closed",
                    number_, buffer_.size(), d.line_timeout_s));
    send(protocol::to_line(protocol::error_envelope(
        nullptr, Error{Errc::bad_request, fmt::format("request line not completed within daemon.line_timeout_s = {} s",
                                                      d.line_timeout_s)})));
    buffer_.consume(buffer_.size());
    reading_closed_ = true;
    boost::system::error_code ignored;
    socket_.shutdown(asio::local::stream_protocol::socket::shutdown_receive, ignored);
    if (idle()) server_.remove(shared_from_this());
    return;
  }
  if (d.idle_timeout_s > 0 && idle() && buffer_.size() == 0 &&
      now - last_activity_ >= std::chrono::seconds(d.idle_timeout_s)) {
    log::debug(fmt::format("client {}: idle for daemon.idle_timeout_s = {} s; closed", number_, d.idle_timeout_s));
    server_.remove(shared_from_this());
    return;
  }
  arm_timer();
}

void Connection::resume_reading_if_room() {
  if (paused_ && !reading_closed_ &&
      pending() < static_cast<std::size_t>(server_.config().daemon.max_pending_per_client)) {
    paused_ = false;
    do_read();
  }
}

void Connection::do_read() {
  auto self = shared_from_this();
  reading_ = true;
  asio::async_read_until(socket_, buffer_, '\n', [this, self](boost::system::error_code ec, std::size_t n) {
    reading_ = false;
    last_activity_ = Clock::now();
    if (ec) {
      if (ec == asio::error::not_found) {
        // The line outgrew daemon.max_line_bytes: answer, then hang up,
        // since the rest of the stream cannot be framed any more.
        send(protocol::to_line(protocol::error_envelope(
            nullptr, Error{Errc::bad_request, fmt::format("request line is longer than daemon.max_line_bytes = {}",
                                                          server_.config().daemon.max_line_bytes)})));
        buffer_.consume(buffer_.size());
      }
      if (idle()) {
        server_.remove(self);
      } else {
        reading_closed_ = true;
      }
      return;
    }
    std::string line(asio::buffers_begin(buffer_.data()),
                     asio::buffers_begin(buffer_.data()) + static_cast<std::ptrdiff_t>(n));
    buffer_.consume(n);
    line.pop_back();
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) {
      try {
        handle_line(line);
      } catch (const std::exception& e) {
        // A bug must cost one request, never the daemon.
        log::error(fmt::format("client {}: internal error while handling a request: {}", number_, e.what()));
        send(protocol::to_line(
            protocol::error_envelope(nullptr, Error{Errc::internal, "internal error; see the daemon log"})));
      }
    }
    line_started_ = buffer_.size() > 0 ? Clock::now() : Clock::time_point{};
    if (!socket_.is_open() || reading_closed_) return;
    if (pending() >= static_cast<std::size_t>(server_.config().daemon.max_pending_per_client)) {
      paused_ = true;  // resumed when a response is written or a request ends
      return;
    }
    do_read();
  });
}

void Connection::handle_line(const std::string& line) {
  nlohmann::json id;
  auto parsed = protocol::parse_request(line, static_cast<std::size_t>(server_.config().daemon.max_line_bytes), id);
  if (refusal_) {
    send(protocol::to_line(protocol::error_envelope(id, *refusal_)));
    reading_closed_ = true;  // closed once the answer is written
    return;
  }
  std::string log_id = fmt::format("{}.{}", number_, ++next_request_);
  if (!parsed) {
    log::write(log::Level::info, "",
               {{"id", log_id, false, "req"},
                {"peer_uid", peer_uid_, peer_uid_ != "-"},
                {"op", "?"},
                {"outcome", std::string(to_string(parsed.error().code))},
                {"error", parsed.error().message}});
    send(protocol::to_line(protocol::error_envelope(id, parsed.error())));
    return;
  }
  auto& request = parsed->request;
  if (request.op == core::Op::status) {
    send(protocol::to_line(protocol::status_envelope(id, server_.status())));
    return;
  }
  if (request.op == core::Op::metrics) {
    send(protocol::to_line(protocol::metrics_envelope(id, server_.metrics())));
    return;
  }
  // A protocol client that sent no submit token gets one here, so every
  // job the daemon submits can be found by it (a given one is validated).
  if (request.op == core::Op::submit && request.token.empty()) request.token = random_token();
  if (auto st = core::validate(request, server_.config()); !st) {
    auto refused = core::from_error(request, st.error());
    server_.pool().record_refused(log_id, peer_uid_, request, refused);
    send(protocol::to_line(protocol::response_envelope(id, refused)));
    return;
  }
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  job->peer_uid = peer_uid_;
  job->log_id = id.is_string() ? fmt::format("{}/{}", log_id, core::printable(id.get<std::string>()))
                               : fmt::format("{}/{}", log_id, protocol::to_line(id));
  auto self = shared_from_this();
  auto& io = server_.io();
  job->done = [self, id, &io](const core::Response& response) {
    // Runs on a worker thread: serialise here, hand the bytes to the io thread.
    auto text = protocol::to_line(protocol::response_envelope(id, response));
    asio::post(io, [self, text = std::move(text)]() mutable {
      --self->outstanding_;
      self->send(std::move(text));
      self->resume_reading_if_room();
    });
  };
  ++outstanding_;
  server_.pool().enqueue(std::move(job));
}

void Connection::send(std::string line) {
  line += '\n';
  writes_.push_back(std::move(line));
  if (!writing_) do_write();
}

void Connection::do_write() {
  if (writes_.empty()) {
    writing_ = false;
    if (reading_closed_ && idle()) server_.remove(shared_from_this());
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  asio::async_write(socket_, asio::buffer(writes_.front()), [this, self](boost::system::error_code ec, std::size_t) {
    writes_.pop_front();
    last_activity_ = Clock::now();
    if (ec) {
      // The client went away; later responses are dropped with the socket.
      writes_.clear();
      writing_ = false;
      reading_closed_ = true;
      if (idle()) server_.remove(self);
      return;
    }
    resume_reading_if_room();
    do_write();
  });
}

}  // namespace ssb::daemon
