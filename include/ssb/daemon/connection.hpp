// One client of the daemon: reads request lines, answers each with one
// response line (possibly out of order), one write in flight at a time.
//
// Bounded by design: at most daemon.max_pending_per_client requests in
// flight or answered-but-unread (beyond that it stops reading: the client's
// own writes block, nothing piles up here), a started line must end within
// daemon.line_timeout_s, and a silent client with nothing in flight is
// closed after daemon.idle_timeout_s.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "ssb/daemon/peer.hpp"
#include "ssb/util/result.hpp"

namespace ssb::daemon {

class Server;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // `refusal`: a client the server will not serve (daemon.allowed_users):
  // its first request line is answered with this error, then it is closed.
  // Answering the request, rather than hanging up at once, lets the client
  // read why instead of failing on a broken pipe.
  // `peer`: the client's credentials as the server read them at accept.
  Connection(boost::asio::local::stream_protocol::socket socket, Server& server, std::uint64_t number,
             std::optional<Peer> peer = std::nullopt, std::optional<Error> refusal = std::nullopt);

  void start();
  void stop();
  // Responses still to be written or requests still being served.
  bool idle() const { return outstanding_ == 0 && writes_.empty() && !writing_; }
  // When it last sent or was sent anything (for the server's eviction).
  std::chrono::steady_clock::time_point last_activity() const { return last_activity_; }
  std::size_t queued_responses() const { return writes_.size(); }
  std::size_t buffered_bytes() const { return buffer_.size(); }
  std::uint64_t number() const { return number_; }

 private:
  void do_read();
  void handle_line(const std::string& line);
  void send(std::string line);  // appends '\n'; called on the io thread only
  void do_write();
  std::size_t pending() const { return outstanding_ + writes_.size(); }
  void resume_reading_if_room();
  void arm_timer();
  void on_tick();

  boost::asio::local::stream_protocol::socket socket_;
  Server& server_;
  std::uint64_t number_;
  boost::asio::streambuf buffer_;
  std::deque<std::string> writes_;
  bool writing_ = false;
  std::size_t outstanding_ = 0;
  std::uint64_t next_request_ = 0;
  bool reading_closed_ = false;
  std::optional<Error> refusal_;
  std::string peer_uid_ = "-";  // logged with each request
  bool reading_ = false;        // a read is outstanding
  bool paused_ = false;         // stopped reading: max_pending_per_client reached
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point line_started_{};  // a partial line arrived (zero: none)
};

}  // namespace ssb::daemon
