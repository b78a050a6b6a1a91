// ssh/ error paths that need no sshd: the identity file's checks, and
// connecting to loopback ports on which nothing or no SSH server answers
// (real sockets on 127.0.0.1 only).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "ssb/ssh/session.hpp"
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"

using namespace ssb;
using test::TempDir;
namespace fs = std::filesystem;

namespace {

fs::path write_file(const fs::path& path, const std::string& text, fs::perms mode) {
  std::ofstream(path) << text;
  fs::permissions(path, mode);
  return path;
}

ssh::Endpoint endpoint(int port, const std::string& identity = "/nonexistent/key") {
  ssh::Endpoint e;
  e.host = "127.0.0.1";
  e.port = port;
  e.user = "nobody";
  e.identity_file = identity;
  e.known_hosts = "/nonexistent/known_hosts";
  e.connect_timeout_s = 5;
  e.strict_key_permissions = true;
  return e;
}

// A loopback TCP listener; `serve` runs once on the first accepted client.
class Listener {
 public:
  template <typename Serve>
  explicit Listener(Serve serve) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, serve] {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      serve(client);
      ::close(client);
    });
  }
  ~Listener() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes accept() when no client came
    thread_.join();
    ::close(fd_);
  }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("ssh: a missing identity file is an auth error naming the file and the key") {
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint(22, "/nonexistent/ssb/id_ed25519"), warnings);
  REQUIRE_FALSE(key);
  CHECK(key.error().code == Errc::auth);
  CHECK_THAT(key.error().message, Catch::Contains("/nonexistent/ssb/id_ed25519 (ssh.identity_file) cannot be read"));
  CHECK_THAT(key.error().message, Catch::Contains("No such file or directory"));
}

TEST_CASE("ssh: an identity that is a directory is refused") {
  TempDir dir{"ssb-ssh-test"};
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint(22, dir.path.string()), warnings);
  REQUIRE_FALSE(key);
  CHECK(key.error().code == Errc::auth);
  CHECK_THAT(key.error().message, Catch::Contains("is not a regular file"));
}

TEST_CASE("ssh: an identity others may read is refused, or only warned about when not strict") {
  TempDir dir{"ssb-ssh-test"};
  auto path =
      write_file(dir.path / "id", "not a key\n",
                 fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read);
  auto e = endpoint(22, path.string());
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(e, warnings);
  REQUIRE_FALSE(key);
  CHECK(key.error().code == Errc::auth);
  CHECK_THAT(key.error().message, Catch::Contains("has permissions 0644"));
  CHECK_THAT(key.error().message, Catch::Contains("chmod 600"));
  CHECK_THAT(key.error().message, Catch::Contains("ssh.strict_key_permissions = false"));
  CHECK(warnings.empty());

  e.strict_key_permissions = false;
  key = ssh::load_identity(e, warnings);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::Contains("has permissions 0644"));
  REQUIRE_FALSE(key);  // then the content is checked: not a key
  CHECK_THAT(key.error().message, Catch::Contains("is not a usable private key"));
}

TEST_CASE("ssh: a file that is not a private key is refused without quoting it") {
  TempDir dir{"ssb-ssh-test"};
  auto path = write_file(dir.path / "id", "-----BEGIN SECRET-----\nhunter2\n", fs::perms::owner_read);
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint(22, path.string()), warnings);
  REQUIRE_FALSE(key);
  CHECK(key.error().code == Errc::auth);
  CHECK_THAT(key.error().message, Catch::Contains("is not a usable private key"));
  CHECK_THAT(key.error().message, !Catch::Contains("hunter2"));
  CHECK(warnings.empty());
}

TEST_CASE("ssh: a real key without passphrase loads; its type and fingerprint are known") {
  TempDir dir{"ssb-ssh-test"};
  auto path = dir.path / "id_ed25519";
  std::string cmd = "ssh-keygen -q -t ed25519 -N '' -f '" + path.string() + "' >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    WARN("ssh-keygen is not available; skipped");
    return;
  }
  std::vector<std::string> warnings;
  auto key = ssh::load_identity(endpoint(22, path.string()), warnings);
  REQUIRE(key);
  CHECK(key->type_name() == "ssh-ed25519");
  CHECK_THAT(key->fingerprint(), Catch::StartsWith("SHA256:"));
  CHECK(warnings.empty());
}

TEST_CASE("ssh: connecting to a closed loopback port is a transport error naming the endpoint") {
  int port = test::closed_port();
  auto session = ssh::Session::connect_only(endpoint(port));
  REQUIRE_FALSE(session);
  CHECK(session.error().code == Errc::transport);
  CHECK_THAT(session.error().message, Catch::Contains("cannot connect to nobody@127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("ssh: a listener that closes at once is a transport error, not a hang") {
  Listener listener([](int) {});
  auto start = std::chrono::steady_clock::now();
  auto session = ssh::Session::connect_only(endpoint(listener.port()));
  REQUIRE_FALSE(session);
  CHECK(session.error().code == Errc::transport);
  CHECK_THAT(session.error().message, Catch::Contains("cannot connect to nobody@127.0.0.1:"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("ssh: a listener that speaks something other than SSH is a clear error") {
  Listener listener([](int fd) {
    const std::string garbage = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    (void)::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    char buf[256];
    (void)::recv(fd, buf, sizeof buf, 0);  // wait for the client's banner or close
  });
  auto session = ssh::Session::connect_only(endpoint(listener.port()));
  REQUIRE_FALSE(session);
  CHECK(session.error().code == Errc::transport);
  CHECK_THAT(session.error().message, Catch::Contains("cannot connect to nobody@127.0.0.1:"));
  INFO(session.error().message);
  CHECK_THAT(session.error().message, Catch::Contains("mismatch") || Catch::Contains("banner") ||
                                          Catch::Contains("Socket") || Catch::Contains("closed"));
}
