// The daemon's front (Server) and its clients (Connection) on a private Unix
// socket in a temporary directory, with a pool whose workers cannot connect
// (the identity is not a key), so no SSH is involved: status requests,
// malformed lines, clients that vanish, many responses on one connection.
#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "ssb/daemon/server.hpp"
#include "ssb/protocol/json.hpp"
#include "ssb/util/log.hpp"
#include "support/temp_dir.hpp"

using namespace ssb;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

config::Config server_config(const fs::path& dir) {
  log::set_level(log::Level::error);
  config::Config c;
  c.ssh.host = "127.0.0.1";
  c.ssh.port = 1;                                                             // never reached: the identity fails first
  c.ssh.identity_file = SSB_SOURCE_DIR "/tests/unit/daemon/server_test.cpp";  // not a key
  c.ssh.strict_key_permissions = false;
  c.pool.connections = 1;
  c.pool.reconnect_min_ms = 10;
  c.pool.reconnect_max_ms = 20;
  c.daemon.socket = (dir / "bridge.sock").string();
  c.daemon.socket_mode = "0600";
  c.daemon.max_line_bytes = 4096;
  return c;
}

// A blocking client of the daemon socket.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Client() { close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      REQUIRE(n > 0);
      off += static_cast<std::size_t>(n);
    }
  }
  // One line without its '\n', or nothing when the daemon hung up or 10 s passed.
  std::optional<std::string> read_line() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (true) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
  }
  nlohmann::json read_json() {
    auto line = read_line();
    REQUIRE(line);
    return nlohmann::json::parse(*line);
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  std::string buffer_;
};

// A listening server running on its own thread; stopped (io_context first,
// then the pool, as Server::run does) when it goes out of scope.
class RunningServer {
 public:
  explicit RunningServer(const config::Config& config) : server_(config) {
    auto st = server_.listen();
    REQUIRE(st);
    thread_ = std::thread([this] { status_ = server_.run(); });
  }
  ~RunningServer() {
    boost::asio::post(server_.io(), [this] { server_.io().stop(); });
    thread_.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

 private:
  daemon::Server server_;
  std::thread thread_;
  int status_ = -1;
};

std::string status_line(const nlohmann::json& id) { return protocol::to_line(protocol::status_request(id)) + "\n"; }

}  // namespace

TEST_CASE("server: a status request is answered with the daemon's status and the request's id") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  RunningServer server(config);
  struct stat st {};
  REQUIRE(::stat(config.daemon.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  Client client(config.daemon.socket);
  client.send(status_line("s1"));
  auto j = client.read_json();
  CHECK(j.at("id") == "s1");
  CHECK(j.at("ok") == true);
  CHECK(j.at("status").at("socket") == config.daemon.socket);
  CHECK(j.at("status").at("clients") == 1);
  CHECK(j.at("status").at("stopping") == false);
}

TEST_CASE("server: a malformed request gets bad_request with its id; the connection stays usable") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  RunningServer server(config);
  Client client(config.daemon.socket);

  client.send(R"({"v":1,"id":"x7","op":"nope"})"
              "\n");
  auto j = client.read_json();
  CHECK(j.at("id") == "x7");
  CHECK(j.at("ok") == false);
  CHECK(j.at("error").at("code") == "bad_request");
  CHECK_THAT(j.at("error").at("message").get<std::string>(), Catch::Contains("unknown op"));

  client.send("this is not json\r\n");
  j = client.read_json();
  CHECK(j.at("id").is_null());
  CHECK(j.at("error").at("code") == "bad_request");

  client.send(status_line(8));
  CHECK(client.read_json().at("id") == 8);
}

TEST_CASE("server: an invalid job request is answered without reaching the pool") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  RunningServer server(config);
  Client client(config.daemon.socket);
  client.send(R"({"v":1,"id":"q1","op":"query","user":"alice","job_id":"12; rm -rf /"})"
              "\n");
  auto j = client.read_json();
  CHECK(j.at("id") == "q1");
  CHECK(j.at("ok") == false);
  CHECK(j.at("error").at("code") == "invalid_job_id");
}

TEST_CASE("server: a line longer than daemon.max_line_bytes is refused and the client is hung up on") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  config.daemon.max_line_bytes = 256;
  RunningServer server(config);
  Client client(config.daemon.socket);
  client.send(std::string(1000, 'a'));
  auto j = client.read_json();
  CHECK(j.at("error").at("code") == "bad_request");
  CHECK_THAT(j.at("error").at("message").get<std::string>(), Catch::Contains("daemon.max_line_bytes = 256"));
  CHECK_FALSE(client.read_line());  // closed

  Client next(config.daemon.socket);
  next.send(status_line("after"));
  CHECK(next.read_json().at("id") == "after");
}

TEST_CASE("server: clients that disconnect mid-request do not disturb the daemon") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  RunningServer server(config);
  {
    Client partial(config.daemon.socket);
    partial.send(R"({"v":1,"id":"p","op":"sta)");  // no newline: half a request
  }
  {
    // A job the pool answers (with the identity error) after its client left:
    // the response has nowhere to go and is dropped.
    Client gone(config.daemon.socket);
    gone.send(R"({"v":1,"id":"g","op":"query","user":"alice","job_id":"42"})"
              "\n");
  }
  {
    Client many(config.daemon.socket);
    for (int i = 0; i < 20; ++i) many.send(status_line(i));
  }
  Client client(config.daemon.socket);
  client.send(R"({"v":1,"id":"q","op":"query","user":"alice","job_id":"42"})"
              "\n");
  auto j = client.read_json();  // the pool's answer: the identity is not a key
  CHECK(j.at("id") == "q");
  CHECK(j.at("ok") == false);
  CHECK(j.at("error").at("code") == "auth");
  client.send(status_line("alive"));
  CHECK(client.read_json().at("id") == "alive");
}

TEST_CASE("server: many requests on one connection each get exactly one whole response line") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  RunningServer server(config);
  Client client(config.daemon.socket);
  constexpr int kRequests = 200;
  std::string batch;
  for (int i = 0; i < kRequests; ++i) batch += status_line(i);
  client.send(batch);  // one write: the daemon queues its answers behind one write in flight
  std::set<int> ids;
  for (int i = 0; i < kRequests; ++i) {
    auto j = client.read_json();
    CHECK(j.at("ok") == true);
    ids.insert(j.at("id").get<int>());
  }
  CHECK(ids.size() == kRequests);
  CHECK(*ids.begin() == 0);
  CHECK(*ids.rbegin() == kRequests - 1);
}

TEST_CASE("server: listen refuses a path that is not a socket, a live daemon, and a path too long") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);

  SECTION("a regular file") {
    std::ofstream(config.daemon.socket) << "x";
    daemon::Server server(config);
    auto st = server.listen();
    REQUIRE_FALSE(st);
    CHECK(st.error().code == Errc::config);
    CHECK_THAT(st.error().message, Catch::Contains("exists and is not a socket"));
  }
  SECTION("another daemon answering") {
    RunningServer first(config);
    daemon::Server second(config);
    auto st = second.listen();
    REQUIRE_FALSE(st);
    CHECK(st.error().code == Errc::config);
    CHECK_THAT(st.error().message, Catch::Contains("already listening"));
  }
  SECTION("longer than sun_path") {
    config.daemon.socket = (dir.path / std::string(200, 's')).string();
    daemon::Server server(config);
    auto st = server.listen();
    REQUIRE_FALSE(st);
    CHECK(st.error().code == Errc::config);
    CHECK_THAT(st.error().message, Catch::Contains("longer than a Unix socket path may be"));
  }
}

TEST_CASE("server: listen replaces a stale socket file and creates a missing directory") {
  TempDir dir{"ssb-server-test"};
  auto config = server_config(dir.path);
  config.daemon.socket = (dir.path / "sub" / "dir" / "bridge.sock").string();
  {
    daemon::Server dead(config);
    REQUIRE(dead.listen());
  }  // its destructor removes the file: leave a stale one behind instead
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, config.daemon.socket.c_str(), sizeof addr.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ::close(fd);  // bound, never listened on: nothing answers
  REQUIRE(fs::exists(config.daemon.socket));

  RunningServer server(config);
  Client client(config.daemon.socket);
  client.send(status_line("fresh"));
  CHECK(client.read_json().at("id") == "fresh");
}
