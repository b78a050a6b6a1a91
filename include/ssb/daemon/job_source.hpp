// What a Worker needs from its owner, and nothing more: where jobs come
// from, where results go, and the pool-wide facts a worker's decisions
// depend on. The Pool implements it; unit tests can too, without sshd.
// Every call is made from a worker thread and is thread-safe.
#pragma once

#include <memory>

#include "ssb/daemon/job.hpp"

namespace ssb::daemon {

class JobSource {
 public:
  virtual ~JobSource() = default;

  // The next job a worker may run on a session opened at `session_opened`
  // (a retry waits for a session opened after its failure); nullptr if none.
  virtual std::shared_ptr<Job> take(Clock::time_point now, Clock::time_point session_opened) = 0;
  // A job taken but not run (a refused channel, a submit that never left):
  // back at the head of the queue.
  virtual void requeue_front(std::shared_ptr<Job> job) = 0;
  // A job's answer, exactly once per job taken.
  virtual void finish(const std::shared_ptr<Job>& job, core::Response response, int worker) = 0;
  // Whether any job waits (a worker connects only when work waits).
  virtual bool has_queued() const = 0;

  // A worker's session came up or went down.
  virtual void session_up() = 0;
  virtual void session_down() = 0;
  // A connection attempt failed. When no session is up anywhere, waiting
  // jobs fail at once with this error instead of waiting out their deadline.
  virtual void connect_failed(const Error& error) = 0;
};

}  // namespace ssb::daemon
