// Carries out StatusCoalescer's decisions (status.mode = "coalesced"): one
// thread that starts each round when it is due, the batch squeue runs as
// jobs on the pool (the service account's own command on a pooled
// connection, under ssh.command_timeout_s, retried once on a fresh
// connection like any query), the answers, the per-user confirmations of
// ids a batch did not list, and the one warning when coalescing falls back.
//
// It knows the pool only through two hooks: `enqueue` (the pool's queue,
// for batch jobs and confirmations) and `answer` (completes a request it
// holds: stats, log, reply). Hooks are never called with its locks held.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "ssb/config/config.hpp"
#include "ssb/daemon/job.hpp"
#include "ssb/daemon/status_coalescer.hpp"

namespace ssb::daemon {

class CoalescedStatus {
 public:
  struct Hooks {
    std::function<void(std::shared_ptr<Job>)> enqueue;
    std::function<void(const std::shared_ptr<Job>&, core::Response)> answer;
  };

  CoalescedStatus(const config::Config& config, Hooks hooks);
  ~CoalescedStatus();
  CoalescedStatus(const CoalescedStatus&) = delete;
  CoalescedStatus& operator=(const CoalescedStatus&) = delete;

  // Starts the round thread (only in coalesced mode).
  void start();

  // Takes a validated request when it is to be coalesced (true), else
  // leaves it to the caller. A request it takes is always answered, through
  // `answer` (or, for a confirmation, by the pool).
  bool offer(const std::shared_ptr<Job>& job);

  // Requests held and not answered yet (for the daemon's drain).
  std::size_t held() const { return coalescer_.held() + in_hand_.load(); }

  // Stops the round thread; requests still waiting for a round are answered
  // shutting_down. Batches already on the pool are answered by it.
  void stop();

  nlohmann::json status() const { return coalescer_.status(); }

 private:
  void run();
  void start_batch(const StatusCoalescer::Batch& batch);
  void on_batch_done(std::uint64_t batch_id, std::size_t ids, const core::Response& response);
  void confirm(const std::shared_ptr<Job>& job);
  void wake();

  const config::Config& config_;
  Hooks hooks_;
  StatusCoalescer coalescer_;
  std::mutex mutex_;
  std::condition_variable cv_;
  // Requests of a finished batch on their way to an answer or a
  // confirmation: still held, so that a drain does not end between.
  std::atomic<std::size_t> in_hand_{0};
  std::atomic<bool> running_{false};  // the round thread runs: offer() may take requests
  bool dirty_ = false;                // something changed: look at next_round() again
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ssb::daemon
