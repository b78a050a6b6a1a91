// The pool: `pool.connections` SSH sessions to the login host, each owned by
// one worker thread that multiplexes up to `pool.channels_per_connection`
// commands on it. Requests wait in one bounded queue shared by the workers;
// a worker with a free channel takes the next one.
//
// Threading: enqueue(), status(), pending() and stop() are called from the
// server's io thread; everything about a session happens on its worker's
// thread (libssh: one thread per session). Job::done is called on a worker
// thread (or on the caller's, for a refused enqueue) and must hand the
// response over to its own thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/core/request.hpp"
#include "ssb/core/response.hpp"
#include "ssb/daemon/stats.hpp"

namespace ssb::daemon {

class Worker;
using Clock = std::chrono::steady_clock;

struct Job {
  core::Request request;
  std::string log_id;                        // request id as logged
  std::function<void(core::Response)> done;  // called exactly once
  Clock::time_point enqueued{};
  Clock::time_point queue_deadline{};
  bool retried = false;  // query/cancel: already re-run once after a transport failure
  // A retry must run on a connection opened after the failure, not on a
  // sibling that may have died in the same outage.
  Clock::time_point needs_session_after{};
};

class Pool {
 public:
  explicit Pool(const config::Config& config);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts the workers. Fails (and starts none) when libssh cannot be loaded.
  Status start();

  // Queues a validated request. Refuses it (done(overloaded), immediately)
  // when pool.queue_size requests already wait beyond the free channels, or
  // (done(shutting_down)) when stopping.
  void enqueue(std::shared_ptr<Job> job);

  // Requests queued or running.
  std::size_t pending() const;

  // Stops the workers: whatever still runs or waits is completed with
  // Errc::shutting_down. Joins the threads.
  void stop();

  nlohmann::json status() const;

 private:
  friend class Worker;

  // Called by workers.
  // The next job this worker may run: its session was opened at
  // `session_opened` (jobs needing a fresher session are left for others).
  std::shared_ptr<Job> take(Clock::time_point now, Clock::time_point session_opened);
  void requeue_front(std::shared_ptr<Job> job);
  void finish(const std::shared_ptr<Job>& job, core::Response response, int worker);
  void fail_queued(const Error& error);  // every worker is down: fail fast instead of waiting
  bool has_queued() const;
  void wake_all();
  std::size_t free_channels() const;  // mutex_ held

  const config::Config& config_;
  Stats stats_;
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<int> connected_{0};
  std::mutex connect_mutex_;  // one connection attempt at a time: no bursts against MaxStartups
  Clock::time_point last_connected_{};  // guarded by connect_mutex_
  Clock::time_point started_ = Clock::now();
};

}  // namespace ssb::daemon
