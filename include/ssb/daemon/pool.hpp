// The pool: `pool.connections` SSH sessions to the login host, each owned by
// one worker thread that multiplexes up to `pool.channels_per_connection`
// commands on it. Requests wait in one bounded queue shared by the workers;
// a worker with a free channel takes the next one.
//
// Threading: enqueue(), status(), pending() and stop() are called from the
// server's io thread; everything about a session happens on its worker's
// thread (libssh: one thread per session). Workers see the pool only as a
// JobSource. Job::done is called on a worker
// thread (or on the caller's, for a refused enqueue) and must hand the
// response over to its own thread.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/daemon/coalesced_status.hpp"
#include "ssb/daemon/connect_gate.hpp"
#include "ssb/daemon/job.hpp"
#include "ssb/daemon/job_source.hpp"
#include "ssb/daemon/stats.hpp"

namespace ssb::daemon {

class Worker;

class Pool final : private JobSource {
 public:
  explicit Pool(const config::Config& config);
  ~Pool() override;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts the workers. Fails (and starts none) when libssh cannot be loaded.
  Status start();

  // Queues a validated request. Refuses it (done(overloaded), immediately)
  // when pool.queue_size requests already wait beyond the free channels, or
  // (done(shutting_down)) when stopping.
  void enqueue(std::shared_ptr<Job> job);

  // Requests queued, running, or waiting for a coalesced status round.
  std::size_t pending() const;

  // Stops the workers: whatever still runs or waits is completed with
  // Errc::shutting_down. Joins the threads.
  void stop();

  nlohmann::json status() const;
  Stats::Snapshot stats() const { return stats_.snapshot(); }
  // Counts and logs a request the server answered itself because it failed
  // validation (never queued), so requests_total and the log hold every
  // answer; the log line is the one a served request gets.
  void record_refused(const std::string& log_id, const std::string& peer_uid, const core::Request& request,
                      const core::Response& response);

 private:
  // JobSource: called by the workers.
  std::shared_ptr<Job> take(Clock::time_point now, Clock::time_point session_opened) override;
  void requeue_front(std::shared_ptr<Job> job) override;
  void finish(const std::shared_ptr<Job>& job, core::Response response, int worker) override;
  bool has_queued() const override;
  void session_up() override { connected_.fetch_add(1); }
  void session_down() override { connected_.fetch_sub(1); }
  void connect_failed(const Error& error) override;

  // Completes a request: elapsed time, statistics, the log line, done().
  void report(const std::shared_ptr<Job>& job, core::Response response, int worker);
  void fail_queued(const Error& error);
  void wake_all();
  std::size_t free_channels() const;  // mutex_ held

  const config::Config& config_;
  Stats stats_;
  mutable std::mutex mutex_;
  std::deque<std::shared_ptr<Job>> queue_;
  std::size_t running_ = 0;
  bool stopping_ = false;
  std::atomic<int> connected_{0};
  ConnectGate gate_;
  std::vector<std::unique_ptr<Worker>> workers_;
  CoalescedStatus coalesced_;  // after everything its hooks use
  Clock::time_point started_ = Clock::now();
};

}  // namespace ssb::daemon
