// One client of the daemon: reads request lines, answers each with one
// response line (possibly out of order), one write in flight at a time.
#pragma once

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <deque>
#include <memory>
#include <string>

namespace ssb::daemon {

class Server;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::local::stream_protocol::socket socket, Server& server, std::uint64_t number);

  void start();
  void stop();
  // Responses still to be written or requests still being served.
  bool idle() const { return outstanding_ == 0 && writes_.empty() && !writing_; }

 private:
  void do_read();
  void handle_line(const std::string& line);
  void send(std::string line);  // appends '\n'; called on the io thread only
  void do_write();

  boost::asio::local::stream_protocol::socket socket_;
  Server& server_;
  std::uint64_t number_;
  boost::asio::streambuf buffer_;
  std::deque<std::string> writes_;
  bool writing_ = false;
  std::size_t outstanding_ = 0;
  std::uint64_t next_request_ = 0;
  bool reading_closed_ = false;
};

}  // namespace ssb::daemon
