#include "ssb/daemon/pool.hpp"

#include <fmt/format.h>

#include "ssb/daemon/worker.hpp"
#include "ssb/util/log.hpp"
#include "ssb/util/printable.hpp"
#include "ssb/version.hpp"

namespace ssb::daemon {

namespace {

// A remote stderr line as one log line: printable ASCII only, bounded.
std::string log_safe(const std::string& line) {
  constexpr std::size_t kMax = 512;
  std::string out;
  for (char c : line.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (line.size() > kMax) out += "...";
  return out;
}

// The one request line of the log, for a served request (Pool::report) and
// for one the server refused before queueing it (Pool::record_refused).
// Never the script, never an environment value. The text line keeps its v1
// names (req=, job=, conn=, dur_ms=); JSON uses the long ones.
void write_request_line(const std::string& log_id, const std::string& peer_uid, core::Op op, const std::string& user,
                        const std::string& job_id, int worker, std::int64_t elapsed_ms, std::string outcome) {
  log::write(log::Level::info, "",
             {{"id", log_id, false, "req"},
              {"peer_uid", peer_uid, peer_uid != "-"},
              {"op", std::string(core::to_string(op))},
              {"user", user.empty() ? "-" : user},
              {"job_id", job_id.empty() ? "-" : job_id, false, "job"},
              {"path", "daemon"},
              {"connection", worker < 0 ? "-" : std::to_string(worker), worker >= 0, "conn"},
              {"elapsed_ms", std::to_string(elapsed_ms), true, "dur_ms"},
              {"outcome", std::move(outcome)}});
}

}  // namespace

namespace {
// sshd counts a connection against MaxStartups until its child reports the
// login done, a moment after the client sees authentication succeed.
constexpr auto kConnectSpacing = std::chrono::milliseconds(250);
}  // namespace

Pool::Pool(const config::Config& config)
    : config_(config), gate_(kConnectSpacing),
      coalesced_(config,
                 CoalescedStatus::Hooks{
                     [this](std::shared_ptr<Job> job) { enqueue(std::move(job)); },
                     [this](const std::shared_ptr<Job>& job, core::Response r) { report(job, std::move(r), -1); },
                 }) {
  JobSource& source = *this;
  for (int i = 0; i < config.pool.connections; ++i) {
    workers_.push_back(std::make_unique<Worker>(source, gate_, config, i));
  }
}

Pool::~Pool() { stop(); }

Status Pool::start() {
  if (auto lib = ssh::load_libssh(); !lib) return lib.error();
  for (auto& w : workers_) w->start();
  coalesced_.start();
  return {};
}

void Pool::enqueue(std::shared_ptr<Job> job) {
  auto now = Clock::now();
  if (job->enqueued == Clock::time_point{}) job->enqueued = now;  // a confirmation keeps its request's
  if (coalesced_.offer(job)) return;
  job->queue_deadline = now + std::chrono::seconds(config_.pool.queue_timeout_s);
  Error refusal;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      refusal = Error{Errc::shutting_down, "the daemon is shutting down; retry shortly"};
    } else if (queue_.size() >= static_cast<std::size_t>(config_.pool.queue_size) + free_channels()) {
      refusal = Error{Errc::overloaded,
                      fmt::format("{} requests already wait for a free channel (pool.queue_size = {}); retry later",
                                  queue_.size(), config_.pool.queue_size)};
    } else {
      queue_.push_back(std::move(job));
      job = nullptr;
    }
    if (job) ++running_;  // every finish() decrements
  }
  if (job) {
    finish(job, core::from_error(job->request, refusal), -1);
    return;
  }
  wake_all();
}

std::size_t Pool::free_channels() const {
  // Queued requests that a free channel will take at once do not count as
  // waiting: the bound applies to those beyond the pool's capacity.
  auto total = static_cast<std::size_t>(config_.pool.connections) *
               static_cast<std::size_t>(config_.pool.channels_per_connection);
  return total > running_ ? total - running_ : 0;
}

std::size_t Pool::pending() const {
  std::size_t n = coalesced_.held();
  std::lock_guard<std::mutex> lock(mutex_);
  return n + queue_.size() + running_;
}

bool Pool::has_queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !queue_.empty();
}

std::shared_ptr<Job> Pool::take(Clock::time_point now, Clock::time_point session_opened) {
  std::vector<std::shared_ptr<Job>> expired;
  std::shared_ptr<Job> job;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (now > (*it)->queue_deadline) {
        expired.push_back(std::move(*it));
        it = queue_.erase(it);
        continue;
      }
      if ((*it)->needs_session_after > session_opened) {
        ++it;  // a retry: leave it for a connection opened after its failure
        continue;
      }
      job = std::move(*it);
      queue_.erase(it);
      ++running_;
      stats_.record_queue_wait(now - job->enqueued);
      break;
    }
    running_ += expired.size();  // finish() decrements
  }
  for (auto& e : expired) {
    finish(e,
           core::from_error(e->request, Error{Errc::timeout, fmt::format("waited more than pool.queue_timeout_s = {} s "
                                                                         "for a free channel to the login host",
                                                                         config_.pool.queue_timeout_s)}),
           -1);
  }
  return job;
}

void Pool::requeue_front(std::shared_ptr<Job> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
    queue_.push_front(std::move(job));
  }
  wake_all();
}

void Pool::finish(const std::shared_ptr<Job>& job, core::Response response, int worker) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
  }
  report(job, std::move(response), worker);
}

void Pool::report(const std::shared_ptr<Job>& job, core::Response response, int worker) {
  response.elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - job->enqueued).count();
  response.path = "daemon";
  if (job->internal) {
    job->done(std::move(response));  // CoalescedStatus logs and counts its batches
    return;
  }
  stats_.record(response);
  if (log::enabled(log::Level::info)) {
    write_request_line(job->log_id, job->peer_uid, response.op, response.user, response.job_id, worker,
                       response.elapsed_ms, response.ok() ? "ok" : std::string(to_string(response.error->code)));
  }
  if (!response.audit.empty()) {
    // explain answered "unknown" (another user's job, or Slurm had none):
    // who asked for what, for an admin; the client never sees it.
    log::warn(fmt::format("req={} user={} {}", job->log_id, response.user, log_safe(response.audit)));
  }
  for (const auto& notice : response.notices) {
    // From the bridge's own remote snippet (e.g. the hub's HOME for a user
    // differs from the login host's passwd entry): worth an admin's look.
    log::warn(fmt::format("req={} user={} {}", job->log_id, response.user, log_safe(notice)));
  }
  job->done(std::move(response));
}

void Pool::connect_failed(const Error& error) {
  if (connected_.load() == 0) fail_queued(error);
}

void Pool::fail_queued(const Error& error) {
  std::deque<std::shared_ptr<Job>> failed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    failed.swap(queue_);
    running_ += failed.size();
  }
  for (auto& job : failed) {
    Error e = error;
    if (job->request.op == core::Op::submit) {
      e.message = "not submitted: " + e.message;  // never sent: safe to retry
    }
    finish(job, core::from_error(job->request, e), -1);
  }
}

void Pool::wake_all() {
  for (auto& w : workers_) w->wake();
}

void Pool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
  }
  // No new rounds; what waits for one is answered. Batches already queued
  // or running are answered below, with their requests.
  coalesced_.stop();
  for (auto& w : workers_) w->request_stop();
  for (auto& w : workers_) w->join();
  fail_queued(Error{Errc::shutting_down, "the daemon is shutting down; retry shortly"});
  workers_.clear();
}

nlohmann::json Pool::status() const {
  nlohmann::json conns = nlohmann::json::array();
  for (const auto& w : workers_) conns.push_back(w->status());
  std::size_t queued, running;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queued = queue_.size();
    running = running_;
  }
  auto j = stats_.to_json();
  j["version"] = kVersion;
  j["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  j["connections"] = conns;
  j["queue_depth"] = queued;
  j["running"] = running;
  j["status"] = coalesced_.status();
  j["pool"] = {{"connections", config_.pool.connections},
               {"channels_per_connection", config_.pool.channels_per_connection},
               {"queue_size", config_.pool.queue_size}};
  return j;
}

void Pool::record_refused(const std::string& log_id, const std::string& peer_uid, const core::Request& request,
                          const core::Response& response) {
  stats_.record(response);
  // The request's own user and job id (printable: the client's values, so
  // a hostile one stays one line), where a search by user or job finds it.
  if (log::enabled(log::Level::info)) {
    write_request_line(log_id, peer_uid, request.op, printable(request.user), printable(request.job_id), -1, 0,
                       std::string(to_string(response.error->code)));
  }
}

}  // namespace ssb::daemon
