// One pooled SSH connection and the thread that owns it (see pool.hpp).
#pragma once

#include "ssb/ssh/libssh.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ssb/daemon/pool.hpp"
#include "ssb/ssh/exec.hpp"
#include "ssb/ssh/session.hpp"

namespace ssb::daemon {

class Worker {
 public:
  Worker(Pool& pool, int index);
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
  void iterate();       // one turn of the loop: connect, take work, step, poll
  void shutdown_jobs();  // on stop: answer everything still running
  void connect(Clock::time_point now);
  void drop_session(const Error& why, Clock::time_point now);
  void start_job(std::shared_ptr<Job> job, Clock::time_point now);
  void step_all(Clock::time_point now);
  void complete(Active& a, Result<core::RemoteOutcome> result);
  bool retry_after_transport_failure(Active& a, const Error& error);
  void set_state(const char* state);
  int poll_timeout_ms(Clock::time_point now) const;

  static int on_wake(socket_t fd, int revents, void* self);

  Pool& pool_;
  const int index_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  ssh_event event_ = nullptr;

  std::unique_ptr<ssh::Session> session_;
  std::vector<Active> active_;
  std::vector<Closing> closing_;  // finished, waiting for the server's CLOSE
  int capacity_;
  Clock::time_point capacity_reset_{};
  Clock::time_point hold_until_{};  // after a refused channel: open nothing new before this
  Clock::time_point session_opened_{};
  int peak_open_ = 0;               // most channels this session has held open at once
  Clock::time_point next_connect_{};
  Clock::time_point last_activity_{};
  int failures_ = 0;
  bool ever_connected_ = false;
  std::mt19937 rng_;

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
