// A Worker against a JobSource written here (no Pool): the narrow interface
// is all it needs. The login host is a closed loopback port, so connects
// fail for real and no sshd is involved.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <deque>
#include <mutex>

#include "ssb/daemon/worker.hpp"
#include "ssb/ssh/libssh.hpp"
#include "ssb/util/log.hpp"
#include "support/loopback.hpp"

using namespace ssb;
using namespace ssb::daemon;
using namespace std::chrono_literals;

namespace {

// Records every call the worker makes.
struct RecordingSource final : JobSource {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Job>> queue;
  std::vector<Error> connect_failures;
  int taken = 0, finished = 0, ups = 0, downs = 0;

  std::shared_ptr<Job> take(Clock::time_point, Clock::time_point) override {
    std::lock_guard<std::mutex> l(m);
    if (queue.empty()) return nullptr;
    auto job = queue.front();
    queue.pop_front();
    ++taken;
    return job;
  }
  void requeue_front(std::shared_ptr<Job> job) override {
    std::lock_guard<std::mutex> l(m);
    queue.push_front(std::move(job));
  }
  void finish(const std::shared_ptr<Job>&, core::Response, int) override {
    std::lock_guard<std::mutex> l(m);
    ++finished;
  }
  bool has_queued() const override {
    std::lock_guard<std::mutex> l(const_cast<std::mutex&>(m));
    return !queue.empty();
  }
  void session_up() override { ++ups; }
  void session_down() override { ++downs; }
  void connect_failed(const Error& error) override {
    std::lock_guard<std::mutex> l(m);
    connect_failures.push_back(error);
    cv.notify_all();
  }
  bool wait_failures(std::size_t n, std::chrono::milliseconds t) {
    std::unique_lock<std::mutex> l(m);
    return cv.wait_for(l, t, [&] { return connect_failures.size() >= n; });
  }
};

config::Config closed_config() {
  log::set_level(log::Level::error);
  config::Config c;
  c.ssh.host = "127.0.0.1";
  c.ssh.port = test::closed_port();
  c.ssh.identity_file = SSB_SOURCE_DIR "/tests/unit/daemon/worker_test.cpp";  // not a key
  c.ssh.strict_key_permissions = false;
  c.pool.reconnect_min_ms = 10;
  c.pool.reconnect_max_ms = 20;
  return c;
}

}  // namespace

TEST_CASE("worker: connects only when work waits, reports a failed connect to its source, takes nothing") {
  REQUIRE(ssh::load_libssh().ok());
  auto config = closed_config();
  RecordingSource source;
  ConnectGate gate(0ms);
  Worker worker(source, gate, config, 0);
  worker.start();
  std::this_thread::sleep_for(100ms);
  {
    std::lock_guard<std::mutex> l(source.m);
    CHECK(source.connect_failures.empty());  // nothing queued: no attempt
  }
  auto job = std::make_shared<Job>();
  job->request = core::Request{core::Op::query, "alice.proj1", "42", "", {}};
  {
    std::lock_guard<std::mutex> l(source.m);
    source.queue.push_back(job);
  }
  worker.wake();
  REQUIRE(source.wait_failures(2, 5000ms));  // it keeps trying, with backoff
  worker.request_stop();
  worker.join();
  std::lock_guard<std::mutex> l(source.m);
  CHECK(source.connect_failures.front().code == Errc::auth);  // the identity file is no key
  CHECK(source.taken == 0);                                   // without a session no job is taken ...
  CHECK(source.finished == 0);                                // ... and failing queued jobs is the source's decision
  CHECK(source.ups == 0);
  CHECK(source.queue.size() == 1);
  auto status = worker.status();
  CHECK(status["state"] == "stopped");
  CHECK(status["last_error"].get<std::string>().find("worker_test.cpp") != std::string::npos);
}
