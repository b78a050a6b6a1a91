#include "ssb/daemon/coalesced_status.hpp"

#include <fmt/format.h>

#include "ssb/remote/command.hpp"
#include "ssb/util/log.hpp"

namespace ssb::daemon {

CoalescedStatus::CoalescedStatus(const config::Config& config, Hooks hooks)
    : config_(config), hooks_(std::move(hooks)),
      coalescer_(config.status.mode == config::StatusMode::coalesced,
                 std::chrono::milliseconds(config.status.window_ms), static_cast<std::size_t>(config.status.max_ids)) {}

CoalescedStatus::~CoalescedStatus() { stop(); }

void CoalescedStatus::start() {
  if (config_.status.mode != config::StatusMode::coalesced || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
  running_ = true;
}

void CoalescedStatus::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dirty_ = true;
  }
  cv_.notify_one();
}

bool CoalescedStatus::offer(const std::shared_ptr<Job>& job) {
  if (job->internal || job->per_user || !running_ || !coalescer_.accepts(job->request)) return false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_) return false;  // the pool answers it (shutting down)
  }
  const auto held = coalescer_.held();
  if (held >= static_cast<std::size_t>(config_.pool.queue_size) + static_cast<std::size_t>(config_.status.max_ids)) {
    hooks_.answer(job, core::from_error(job->request,
                                        Error{Errc::overloaded,
                                              fmt::format("{} queries already wait for the next coalesced squeue "
                                                          "(pool.queue_size + status.max_ids = {}); retry later",
                                                          held, config_.pool.queue_size + config_.status.max_ids)}));
    return true;
  }
  coalescer_.add(job, job->enqueued);
  wake();
  return true;
}

void CoalescedStatus::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    dirty_ = false;
    auto next = coalescer_.next_round();
    if (!next) {
      cv_.wait(lock, [&] { return stop_ || dirty_; });
      continue;
    }
    if (Clock::now() < *next) {
      cv_.wait_until(lock, *next, [&] { return stop_ || dirty_; });
      continue;
    }
    lock.unlock();
    for (const auto& batch : coalescer_.start_round(Clock::now())) start_batch(batch);
    lock.lock();
  }
}

void CoalescedStatus::start_batch(const StatusCoalescer::Batch& batch) {
  auto command = remote::build_status_batch(config_, batch.job_ids);
  if (!command) {
    for (auto& d : coalescer_.finish_batch(batch.id, command.error())) hooks_.answer(d.job, std::move(d.response));
    wake();
    return;
  }
  auto job = std::make_shared<Job>();
  job->request.op = core::Op::query;  // retried once on a fresh connection, like any query
  job->request.user = config_.ssh.user;
  job->log_id = fmt::format("batch-{}", batch.id);
  job->command = std::move(*command);
  job->internal = true;
  const auto id = batch.id;
  const auto ids = batch.job_ids.size();
  job->done = [this, id, ids](const core::Response& response) { on_batch_done(id, ids, response); };
  hooks_.enqueue(std::move(job));
}

void CoalescedStatus::on_batch_done(std::uint64_t batch_id, std::size_t ids, const core::Response& response) {
  Result<core::RemoteOutcome> result = make_error(Errc::internal, "no outcome");
  if (response.remote) {
    result = *response.remote;
  } else if (response.error) {
    result = *response.error;
  }
  log::info(fmt::format("req=batch-{} status squeue ids={} dur_ms={} outcome={}", batch_id, ids, response.elapsed_ms,
                        !result                    ? std::string(to_string(result.error().code))
                        : result->exit_status == 0 ? std::string("ok")
                                                   : fmt::format("exit {}", result->exit_status)));
  in_hand_ += ids;  // over-counts for a moment (a request may ask about an id another asked): harmless
  auto decisions = coalescer_.finish_batch(batch_id, result);
  in_hand_ += decisions.size();
  in_hand_ -= ids;
  for (auto& d : decisions) {
    if (d.kind == StatusCoalescer::Decision::Kind::confirm) {
      confirm(d.job);
    } else {
      if (d.refused) {
        log::warn(fmt::format("req={} status: refused to tell user={} about job={}: its owner is {}", d.job->log_id,
                              d.job->request.user, d.job->request.job_id, d.owner));
      }
      hooks_.answer(d.job, std::move(d.response));
    }
    --in_hand_;  // the pool holds it now, or it has its answer
  }
  wake();  // the round may be over: the next one can be scheduled
}

void CoalescedStatus::confirm(const std::shared_ptr<Job>& job) {
  // Today's per-user query for this one request, its answer returned as is.
  auto check = std::make_shared<Job>();
  check->request = job->request;
  check->log_id = job->log_id;
  check->enqueued = job->enqueued;  // elapsed_ms counts from the request's arrival
  check->per_user = true;
  auto done = job->done;
  check->done = [this, done, request = job->request](core::Response response) {
    if (coalescer_.confirmed(request, response)) {
      log::warn("status: switching to per_user mode for every later query: " + coalescer_.why());
    }
    done(std::move(response));
  };
  log::debug(fmt::format("req={} status: job={} not listed by the batch; confirming with the per-user wrapper",
                         job->log_id, job->request.job_id));
  hooks_.enqueue(std::move(check));
}

void CoalescedStatus::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  for (auto& job : coalescer_.take_waiting()) {
    hooks_.answer(
        job, core::from_error(job->request, Error{Errc::shutting_down, "the daemon is shutting down; retry shortly"}));
  }
}

}  // namespace ssb::daemon
