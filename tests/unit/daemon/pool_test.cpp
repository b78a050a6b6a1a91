// The pool's queueing and failure paths, against a real but closed loopback
// port (nothing listens on it, so every connect is refused for real).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>

#include "ssb/daemon/pool.hpp"
#include "ssb/util/log.hpp"
#include "support/loopback.hpp"

using namespace ssb;

namespace {

// A loopback port with no listener: bind, read the port, close.
struct Collector {
  std::mutex m;
  std::condition_variable cv;
  std::vector<core::Response> got;
  std::function<void(core::Response)> sink() {
    return [this](core::Response r) {
      std::lock_guard<std::mutex> l(m);
      got.push_back(std::move(r));
      cv.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::seconds t) {
    std::unique_lock<std::mutex> l(m);
    return cv.wait_for(l, t, [&] { return got.size() >= n; });
  }
};

config::Config base_config() {
  log::set_level(log::Level::error);  // the daemon's per-request lines are not under test here
  config::Config c;
  c.ssh.host = "127.0.0.1";
  c.ssh.port = test::closed_port();
  c.ssh.identity_file = SSB_SOURCE_DIR "/tests/unit/daemon/pool_test.cpp";  // not a key: fails before connecting
  c.ssh.strict_key_permissions = false;
  c.pool.connections = 1;
  c.pool.reconnect_min_ms = 10;
  c.pool.reconnect_max_ms = 20;
  return c;
}

std::shared_ptr<daemon::Job> job(core::Op op, Collector& c) {
  auto j = std::make_shared<daemon::Job>();
  j->request = core::Request{op, "alice", op == core::Op::submit ? "" : "1", op == core::Op::submit ? "x" : "", {}};
  j->log_id = "t";
  j->done = c.sink();
  return j;
}

}  // namespace

TEST_CASE("pool: with the login host unreachable, queued requests fail fast with the connect error") {
  auto config = base_config();
  config.ssh.identity_file = "/nonexistent/key";
  daemon::Pool pool(config);
  REQUIRE(pool.start());
  Collector c;
  pool.enqueue(job(core::Op::query, c));
  pool.enqueue(job(core::Op::submit, c));
  REQUIRE(c.wait_for(2, std::chrono::seconds(10)));
  for (const auto& r : c.got) {
    REQUIRE(r.error);
    CHECK(r.error->code == Errc::auth);
    CHECK(r.path == "daemon");
  }
  // The submit was never sent: its message says so.
  bool saw_submit = false;
  for (const auto& r : c.got) {
    if (r.op == core::Op::submit) {
      saw_submit = true;
      CHECK(r.error->message.rfind("not submitted: ", 0) == 0);
    }
  }
  CHECK(saw_submit);
  CHECK(pool.pending() == 0);
  auto status = pool.status();
  CHECK(status["connections"][0]["state"] == "backoff");
  CHECK(status["counters"]["query"]["auth"] == 1);
  pool.stop();
}

TEST_CASE("pool: refused connections are transport errors") {
  auto config = base_config();
  // A real key so the connect itself is attempted (and refused).
  char dir[] = "/tmp/ssb-pool-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string key = std::string(dir) + "/k";
  REQUIRE(system(("ssh-keygen -q -t ed25519 -N '' -f " + key).c_str()) == 0);
  config.ssh.identity_file = key;
  daemon::Pool pool(config);
  REQUIRE(pool.start());
  Collector c;
  pool.enqueue(job(core::Op::cancel, c));
  REQUIRE(c.wait_for(1, std::chrono::seconds(10)));
  REQUIRE(c.got[0].error);
  CHECK(c.got[0].error->code == Errc::transport);
  CHECK(c.got[0].error->message.find("Connection refused") != std::string::npos);
  pool.stop();
  REQUIRE(system(("rm -rf " + std::string(dir)).c_str()) == 0);
}

TEST_CASE("pool: a stopped pool refuses new work as shutting_down") {
  auto config = base_config();
  daemon::Pool pool(config);
  REQUIRE(pool.start());
  pool.stop();
  Collector c;
  pool.enqueue(job(core::Op::query, c));
  REQUIRE(c.wait_for(1, std::chrono::seconds(1)));
  CHECK(c.got[0].error->code == Errc::shutting_down);
}

TEST_CASE("pool: past pool.queue_size requests are refused as overloaded") {
  auto config = base_config();
  config.pool.queue_size = 2;
  daemon::Pool pool(config);  // not started: nothing drains the queue
  Collector c;
  // 1 connection x 8 channels free + 2 waiting = 10 accepted, 2 refused.
  for (int i = 0; i < 12; ++i) pool.enqueue(job(core::Op::query, c));
  REQUIRE(c.wait_for(2, std::chrono::seconds(1)));
  CHECK(c.got.size() == 2);
  for (const auto& r : c.got) {
    REQUIRE(r.error);
    CHECK(r.error->code == Errc::overloaded);
    CHECK(r.error->message.find("pool.queue_size = 2") != std::string::npos);
  }
  CHECK(pool.pending() == 10);
  pool.stop();  // the queued ones end as shutting_down
  REQUIRE(c.wait_for(12, std::chrono::seconds(1)));
  CHECK(c.got.back().error->code == Errc::shutting_down);
}
