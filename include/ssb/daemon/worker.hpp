// One pooled SSH connection and the thread that owns it (see pool.hpp).
//
// A Worker knows its owner only as a JobSource (jobs in, answers out) and
// the pool-wide ConnectGate; its own policies are separate pieces: the
// ChannelBudget (what sshd allows on this connection now) and the Backoff
// (when to connect again). What remains here is the loop that drives them
// and the libssh session.
#pragma once

#include "ssb/ssh/libssh.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ssb/config/config.hpp"
#include "ssb/daemon/backoff.hpp"
#include "ssb/daemon/channel_budget.hpp"
#include "ssb/daemon/connect_gate.hpp"
#include "ssb/daemon/job_source.hpp"
#include "ssb/ssh/exec.hpp"
#include "ssb/ssh/session.hpp"

namespace ssb::daemon {

class Worker {
 public:
  Worker(JobSource& source, ConnectGate& gate, const config::Config& config, int index);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void wake();
  void request_stop();
  void join();
  nlohmann::json status() const;

 private:
  struct Active {
    std::shared_ptr<Job> job;
    std::unique_ptr<ssh::Exec> exec;
    Clock::time_point deadline;
  };

  struct Closing {
    std::unique_ptr<ssh::Exec> exec;
    Clock::time_point give_up;
    Clock::time_point released_at;  // when the server's CLOSE arrived
  };

  void run();
  void iterate();        // one turn of the loop: connect, take work, step, poll
  void shutdown_jobs();  // on stop: answer everything still running
  void connect(Clock::time_point now);
  void drop_session(const Error& why, Clock::time_point now);
  void take_jobs(Clock::time_point now);
  void start_job(std::shared_ptr<Job> job, Clock::time_point now);
  void keepalive_if_idle(Clock::time_point now);

  // step_all's phases.
  void step_all(Clock::time_point now);
  void step_execs(Clock::time_point now);                         // drive each exec, enforce deadlines
  bool collect_finished(Clock::time_point now, Error& lost_why);  // answer or requeue; true: session lost
  void on_channel_refused(Active& a, Clock::time_point now);
  void prune_closing(Clock::time_point now);
  void fail_on_lost_session(const Error& why, Clock::time_point now);

  void complete(Active& a, Result<core::RemoteOutcome> result);
  bool retry_after_transport_failure(Active& a, const Error& error);
  int open_channels() const;
  void set_state(const char* state);
  void report_capacity();
  int poll_timeout_ms(Clock::time_point now) const;

  static int on_wake(socket_t fd, int revents, void* self);

  JobSource& source_;
  ConnectGate& gate_;
  const config::Config& config_;
  const int index_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  ssh_event event_ = nullptr;

  std::unique_ptr<ssh::Session> session_;
  std::vector<Active> active_;
  std::vector<Closing> closing_;  // finished, waiting for the server's CLOSE
  ChannelBudget budget_;
  Backoff backoff_;
  Clock::time_point session_opened_{};
  Clock::time_point next_connect_{};
  Clock::time_point last_activity_{};
  bool ever_connected_ = false;

  // Reported by status(); written on the worker thread.
  mutable std::mutex status_mutex_;
  std::string state_ = "idle";
  std::string last_error_;
  std::uint64_t reconnects_ = 0;
  std::uint64_t requests_ = 0;
  std::uint64_t refused_channels_ = 0;
  std::size_t in_use_ = 0;
  int capacity_reported_ = 0;
};

}  // namespace ssb::daemon
