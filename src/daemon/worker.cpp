#include "ssb/daemon/worker.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "ssb/core/submit_rule.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/libssh.hpp"
#include "ssb/util/log.hpp"

namespace ssb::daemon {

namespace {
constexpr int kMaxPollMs = 250;
// How long a finished channel may wait for the server's CLOSE before it no
// longer counts against our capacity.
constexpr auto kCloseWait = std::chrono::seconds(2);
// With a tight budget, how long a channel the server just closed still
// counts (sshd frees the slot on its next garbage-collection pass).
constexpr auto kTightGrace = std::chrono::milliseconds(20);
}  // namespace

Worker::Worker(JobSource& source, ConnectGate& gate, const config::Config& config, int index)
    : source_(source), gate_(gate), config_(config), index_(index), budget_(config.pool.channels_per_connection),
      backoff_(config.pool.reconnect_min_ms, config.pool.reconnect_max_ms,
               static_cast<unsigned>(std::random_device{}()) + static_cast<unsigned>(index)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  capacity_reported_ = budget_.capacity();
}

Worker::~Worker() {
  request_stop();
  join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void Worker::request_stop() {
  stop_ = true;
  wake();
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

int Worker::on_wake(socket_t fd, int, void*) {
  std::uint64_t value;
  while (::read(fd, &value, sizeof value) > 0) {
  }
  return 0;
}

void Worker::set_state(const char* state) {
  std::lock_guard<std::mutex> lock(status_mutex_);
  state_ = state;
}

void Worker::report_capacity() {
  std::lock_guard<std::mutex> lock(status_mutex_);
  capacity_reported_ = budget_.capacity();
}

int Worker::open_channels() const {
  int n = 0;
  for (const auto& a : active_) n += a.exec->channel_open() ? 1 : 0;
  return n;
}

nlohmann::json Worker::status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  nlohmann::json j{{"index", index_},
                   {"state", state_},
                   {"channels_in_use", in_use_},
                   {"capacity", capacity_reported_},
                   {"reconnects", reconnects_},
                   {"requests", requests_},
                   {"refused_channels", refused_channels_}};
  if (!last_error_.empty()) j["last_error"] = last_error_;
  return j;
}

void Worker::connect(Clock::time_point now) {
  auto turn = gate_.wait_turn();  // one attempt at a time across the pool, spaced
  if (stop_) return;
  set_state("connecting");
  auto endpoint = ssh::Endpoint::from_config(config_);
  std::vector<std::string> warnings;
  Result<std::unique_ptr<ssh::Session>> session = make_error(Errc::internal, "not connected");
  auto key = ssh::load_identity(endpoint, warnings);
  for (const auto& w : warnings) log::warn(w);
  if (key) {
    session = ssh::Session::open(endpoint, *key);
  } else {
    session = key.error();
  }
  if (!session) {
    auto delay = backoff_.failed();
    next_connect_ = Clock::now() + delay;
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      state_ = "backoff";
      last_error_ = session.error().message;
    }
    log::warn(fmt::format("conn={} connect failed ({}: {}); next attempt in {} ms", index_,
                          to_string(session.error().code), session.error().message, delay.count()));
    source_.connect_failed(session.error());
    return;
  }
  session_ = std::move(*session);
  session_opened_ = Clock::now();
  turn.succeeded(session_opened_);
  budget_.new_session();
  ssh::libssh().ssh_event_add_session(event_, session_->raw());
  source_.session_up();
  backoff_.reset();
  last_activity_ = now;
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    state_ = "connected";
    last_error_.clear();
    if (ever_connected_) ++reconnects_;
  }
  log::info(fmt::format("conn={} connected to {}", index_, endpoint.display()));
  ever_connected_ = true;
}

void Worker::drop_session(const Error& why, Clock::time_point now) {
  if (!session_) return;
  log::warn(fmt::format("conn={} connection lost: {}", index_, why.message));
  active_.clear();  // Execs close their channels before the session goes
  closing_.clear();
  ssh::libssh().ssh_event_remove_session(event_, session_->raw());
  session_.reset();
  source_.session_down();
  next_connect_ = now;  // first reconnect at once; backoff applies if it fails
  std::lock_guard<std::mutex> lock(status_mutex_);
  state_ = "disconnected";
  last_error_ = why.message;
  in_use_ = 0;
}

void Worker::start_job(std::shared_ptr<Job> job, Clock::time_point now) {
  Active a;
  a.exec = std::make_unique<ssh::Exec>(job->command ? *job->command : remote::build(job->request, config_),
                                       static_cast<std::size_t>(config_.limits.max_output_bytes));
  a.deadline = now + std::chrono::seconds(config_.ssh.command_timeout_s);
  a.job = std::move(job);
  active_.push_back(std::move(a));
  std::lock_guard<std::mutex> lock(status_mutex_);
  ++requests_;
}

bool Worker::retry_after_transport_failure(Active& a, const Error& error) {
  auto& job = a.job;
  if (job->request.op == core::Op::submit) {
    if (a.exec->maybe_started()) return false;  // at most once: never re-sent
    source_.requeue_front(job);                 // never reached the server
    return true;
  }
  if (job->retried) return false;
  job->retried = true;
  job->needs_session_after = Clock::now();
  log::info(fmt::format("req={} retrying {} once on a fresh connection after: {}", job->log_id,
                        core::to_string(job->request.op), error.message));
  source_.requeue_front(job);
  return true;
}

void Worker::complete(Active& a, Result<core::RemoteOutcome> result) {
  if (result) {
    source_.finish(a.job, core::from_remote(a.job->request, std::move(*result)), index_);
  } else {
    source_.finish(a.job,
                   core::from_error(a.job->request, core::classify_submit_failure(a.job->request, result.error(),
                                                                                  a.exec->maybe_started())),
                   index_);
  }
}

void Worker::step_all(Clock::time_point now) {
  step_execs(now);
  Error lost_why{Errc::transport, "connection closed"};
  bool lost = collect_finished(now, lost_why);
  budget_.observe_open(open_channels());
  prune_closing(now);
  if (lost || !session_->connected()) fail_on_lost_session(lost_why, now);
  std::lock_guard<std::mutex> lock(status_mutex_);
  in_use_ = active_.size();
}

void Worker::step_execs(Clock::time_point now) {
  for (auto& a : active_) {
    a.exec->step(*session_);
    if (!a.exec->finished() && now > a.deadline) {
      a.exec->abort(
          Error{Errc::timeout, fmt::format("the command on {} did not finish within ssh.command_timeout_s = {} s",
                                           session_->endpoint().display(), config_.ssh.command_timeout_s)});
    }
  }
}

bool Worker::collect_finished(Clock::time_point now, Error& lost_why) {
  bool lost = false;
  for (auto it = active_.begin(); it != active_.end();) {
    auto& a = *it;
    if (!a.exec->finished()) {
      ++it;
      continue;
    }
    last_activity_ = now;
    auto result = a.exec->take_result();
    if (result) budget_.command_finished();
    if (!result && a.exec->refused()) {
      on_channel_refused(a, now);
      it = active_.erase(it);
      continue;
    }
    if (!result && !session_->connected()) {
      lost = true;
      lost_why = result.error();
      if (retry_after_transport_failure(a, result.error())) {
        it = active_.erase(it);
        continue;
      }
    }
    complete(a, std::move(result));
    closing_.push_back({std::move(a.exec), now + kCloseWait, {}});
    it = active_.erase(it);
  }
  return lost;
}

void Worker::on_channel_refused(Active& a, Clock::time_point now) {
  // sshd's MaxSessions is below our capacity: keep the healthy channels,
  // lower the capacity to what the server holds open for us now (requests
  // still opening alongside this one are not counted), pause new opens.
  const int open_now = open_channels();
  const bool changed = budget_.refused(open_now, now);
  {
    std::lock_guard<std::mutex> lock(status_mutex_);
    ++refused_channels_;
    capacity_reported_ = budget_.capacity();
  }
  log::write(changed ? log::Level::info : log::Level::debug,
             fmt::format("conn={} sshd refused a channel with {} open; capacity now {}", index_, open_now,
                         budget_.capacity()));
  // Not this request's failure: it waits for a channel like any other
  // (bounded by its queue deadline).
  source_.requeue_front(a.job);
}

void Worker::prune_closing(Clock::time_point now) {
  // Channels we finished with leave the server's count when it closes them.
  // When sshd's MaxSessions is known to be tight, a released channel still
  // counts for a short grace: sshd frees the slot only after its next
  // garbage-collection pass, and an open sent right behind our CLOSE would
  // be refused.
  const bool tight = budget_.tight();
  for (auto& c : closing_) {
    if (c.exec->released() && c.released_at == Clock::time_point{}) c.released_at = now;
  }
  closing_.erase(std::remove_if(closing_.begin(), closing_.end(),
                                [&](const Closing& c) {
                                  if (now >= c.give_up) return true;
                                  if (c.released_at == Clock::time_point{}) return false;
                                  return !tight || now >= c.released_at + kTightGrace;
                                }),
                 closing_.end());
}

void Worker::fail_on_lost_session(const Error& why, Clock::time_point now) {
  // Everything still running on this session failed with it.
  for (auto& a : active_) {
    a.exec->abort(Error{Errc::transport, fmt::format("connection to {} lost: {}", session_->endpoint().display(),
                                                     session_->last_error())});
    auto result = a.exec->take_result();
    if (!retry_after_transport_failure(a, result.error())) complete(a, std::move(result));
  }
  drop_session(why, now);
}

int Worker::poll_timeout_ms(Clock::time_point now) const {
  auto wait = std::chrono::milliseconds(kMaxPollMs);
  if (!closing_.empty()) wait = std::min(wait, std::chrono::milliseconds(5));
  if (session_ && budget_.paused_until() > now) {
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(budget_.paused_until() - now) +
                              std::chrono::milliseconds(1));
  }
  if (!session_ && next_connect_ > now) {
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(next_connect_ - now));
  }
  return static_cast<int>(std::max<std::int64_t>(1, wait.count()));
}

void Worker::run() {
  event_ = ssh::libssh().ssh_event_new();
  ssh::libssh().ssh_event_add_fd(event_, wake_fd_, POLLIN, &Worker::on_wake, this);
  while (!stop_) {
    try {
      iterate();
    } catch (const std::exception& e) {
      // A bug must not take the pool down: fail what runs here, start over.
      log::error(fmt::format("conn={} internal error: {}", index_, e.what()));
      for (auto& a : active_) {
        source_.finish(a.job,
                       core::from_error(a.job->request, Error{Errc::internal, "internal error; see the daemon log"}),
                       index_);
      }
      active_.clear();
      drop_session(Error{Errc::internal, e.what()}, Clock::now());
    }
  }
  shutdown_jobs();
}

void Worker::iterate() {
  auto now = Clock::now();
  // Connections are opened lazily: only when work waits.
  if (!session_ && now >= next_connect_ && source_.has_queued()) connect(now);
  now = Clock::now();
  if (session_) {
    if (budget_.restore_if_due(now)) report_capacity();
    take_jobs(now);
    if (!active_.empty() || !closing_.empty()) step_all(now);
    keepalive_if_idle(now);
  }
  if (session_) session_->quick_ack();
  int rc = ssh::libssh().ssh_event_dopoll(event_, poll_timeout_ms(Clock::now()));
  if (rc == SSH_ERROR && session_ && !session_->connected()) {
    if (active_.empty()) {
      drop_session(Error{Errc::transport, session_->last_error()}, Clock::now());
    } else {
      step_all(Clock::now());
    }
  }
}

void Worker::take_jobs(Clock::time_point now) {
  while (budget_.allows_another(static_cast<int>(active_.size() + closing_.size()), now)) {
    auto job = source_.take(now, session_opened_);
    if (!job) break;
    start_job(std::move(job), now);
  }
}

void Worker::keepalive_if_idle(Clock::time_point now) {
  // Keeps NAT and firewall state alive on an idle connection; a dead peer
  // shows up as a read error on the next poll.
  if (!session_ || !active_.empty()) return;
  if (now - last_activity_ < std::chrono::seconds(config_.ssh.keepalive_interval_s)) return;
  if (ssh::libssh().ssh_send_ignore(session_->raw(), "") == SSH_ERROR || !session_->connected()) {
    drop_session(Error{Errc::transport, "keepalive failed: " + session_->last_error()}, now);
  }
  last_activity_ = now;
}

void Worker::shutdown_jobs() {
  // Shutdown: whatever still runs is reported, never silently dropped.
  for (auto& a : active_) {
    a.exec->abort(Error{Errc::shutting_down, "the daemon stopped before the command finished"});
    auto result = a.exec->take_result();
    // A submit already sent becomes submit_unknown (the rule in core).
    complete(a, std::move(result));
  }
  active_.clear();
  closing_.clear();
  if (session_) {
    ssh::libssh().ssh_event_remove_session(event_, session_->raw());
    session_.reset();
    source_.session_down();
  }
  ssh::libssh().ssh_event_remove_fd(event_, wake_fd_);  // frees what ssh_event_add_fd allocated
  ssh::libssh().ssh_event_free(event_);
  event_ = nullptr;
  set_state("stopped");
}

}  // namespace ssb::daemon
