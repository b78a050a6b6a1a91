#include "ssb/daemon/worker.hpp"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>

#include "ssb/client/executor.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/libssh.hpp"
#include "ssb/util/log.hpp"

namespace ssb::daemon {

namespace {
// After sshd refused a channel, the lowered capacity holds this long before
// the configured one is tried again (MaxSessions may have been raised).
constexpr auto kCapacityHold = std::chrono::seconds(30);
constexpr int kMaxPollMs = 250;
// How long a finished channel may wait for the server's CLOSE before it no
// longer counts against our capacity.
constexpr auto kCloseWait = std::chrono::seconds(2);
constexpr auto kTightGrace = std::chrono::milliseconds(20);
constexpr auto kConnectSpacing = std::chrono::milliseconds(250);
}  // namespace

Worker::Worker(Pool& pool, int index)
    : pool_(pool), index_(index), capacity_(pool.config_.pool.channels_per_connection),
      rng_(static_cast<unsigned>(std::random_device{}()) + static_cast<unsigned>(index)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  capacity_reported_ = capacity_;
}

Worker::~Worker() {
  request_stop();
  join();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void Worker::start() { thread_ = std::thread([this] { run(); }); }

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

nlohmann::json Worker::status() const {
  std::lock_guard<std::mutex> lock(status_mutex_);
  nlohmann::json j{{"index", index_},        {"state", state_},         {"channels_in_use", in_use_},
                   {"capacity", capacity_reported_}, {"reconnects", reconnects_}, {"requests", requests_},
                   {"refused_channels", refused_channels_}};
  if (!last_error_.empty()) j["last_error"] = last_error_;
  return j;
}

void Worker::connect(Clock::time_point now) {
  // One attempt at a time across the pool, so a restart or an outage never
  // turns into a burst of handshakes against sshd's MaxStartups.
  std::lock_guard<std::mutex> serial(pool_.connect_mutex_);
  if (stop_) return;
  // sshd counts a connection against MaxStartups until its child reports
  // the login done, a moment after we see authentication succeed: leave a
  // gap after the previous connection before starting the next.
  auto since = Clock::now() - pool_.last_connected_;
  if (since < kConnectSpacing) std::this_thread::sleep_for(kConnectSpacing - since);
  set_state("connecting");
  const auto& config = pool_.config_;
  auto endpoint = ssh::Endpoint::from_config(config);
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
    ++failures_;
    auto base = std::min<std::int64_t>(config.pool.reconnect_max_ms,
                                       static_cast<std::int64_t>(config.pool.reconnect_min_ms)
                                           << std::min(failures_ - 1, 20));
    // Full jitter in [base/2, base]: workers that failed together retry apart.
    std::uniform_int_distribution<std::int64_t> jitter(base / 2, base);
    auto delay = std::chrono::milliseconds(jitter(rng_));
    next_connect_ = Clock::now() + delay;
    {
      std::lock_guard<std::mutex> lock(status_mutex_);
      state_ = "backoff";
      last_error_ = session.error().message;
    }
    log::warn(fmt::format("conn={} connect failed ({}: {}); next attempt in {} ms", index_,
                          to_string(session.error().code), session.error().message, delay.count()));
    if (pool_.connected_.load() == 0) pool_.fail_queued(session.error());
    return;
  }
  session_ = std::move(*session);
  session_opened_ = Clock::now();
  pool_.last_connected_ = session_opened_;
  peak_open_ = 0;
  hold_until_ = Clock::time_point{};
  ssh::libssh().ssh_event_add_session(event_, session_->raw());
  pool_.connected_.fetch_add(1);
  failures_ = 0;
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
  pool_.connected_.fetch_sub(1);
  next_connect_ = now;  // first reconnect at once; backoff applies if it fails
  std::lock_guard<std::mutex> lock(status_mutex_);
  state_ = "disconnected";
  last_error_ = why.message;
  in_use_ = 0;
}

void Worker::start_job(std::shared_ptr<Job> job, Clock::time_point now) {
  const auto& config = pool_.config_;
  Active a;
  a.exec = std::make_unique<ssh::Exec>(remote::build(job->request, config),
                                       static_cast<std::size_t>(config.limits.max_output_bytes));
  a.deadline = now + std::chrono::seconds(config.ssh.command_timeout_s);
  a.job = std::move(job);
  active_.push_back(std::move(a));
  std::lock_guard<std::mutex> lock(status_mutex_);
  ++requests_;
}

bool Worker::retry_after_transport_failure(Active& a, const Error& error) {
  auto& job = a.job;
  if (job->request.op == core::Op::submit) {
    if (a.exec->maybe_started()) return false;  // at most once: never re-sent
    pool_.requeue_front(job);                     // never reached the server
    return true;
  }
  if (job->retried) return false;
  job->retried = true;
  job->needs_session_after = Clock::now();
  log::info(fmt::format("req={} retrying {} once on a fresh connection after: {}", job->log_id,
                        core::to_string(job->request.op), error.message));
  pool_.requeue_front(job);
  return true;
}

void Worker::complete(Active& a, Result<core::RemoteOutcome> result) {
  if (result) {
    pool_.finish(a.job, core::from_remote(a.job->request, std::move(*result)), index_);
  } else {
    pool_.finish(a.job,
                 core::from_error(a.job->request,
                                  client::classify_submit_failure(a.job->request, result.error(), a.exec->maybe_started())),
                 index_);
  }
}

void Worker::step_all(Clock::time_point now) {
  bool lost = false;
  Error lost_why{Errc::transport, "connection closed"};
  for (auto it = active_.begin(); it != active_.end();) {
    auto& a = *it;
    a.exec->step(*session_);
    if (!a.exec->finished() && now > a.deadline) {
      a.exec->abort(Error{Errc::timeout, fmt::format("the command on {} did not finish within ssh.command_timeout_s = {} s",
                                                     session_->endpoint().display(), pool_.config_.ssh.command_timeout_s)});
    }
    if (!a.exec->finished()) {
      ++it;
      continue;
    }
    last_activity_ = now;
    auto result = a.exec->take_result();
    if (result) hold_until_ = Clock::time_point{};
    if (!result && a.exec->refused()) {
      // sshd's MaxSessions is below our capacity: keep the healthy channels,
      // lower the capacity, and let this request wait for a channel.
      // The new capacity is what the server holds open for us right now;
      // requests still opening alongside this one are not counted.
      // sshd frees a session slot a little after the channel closes, so a
      // refusal can come with fewer channels open than the real limit: never
      // go below the most channels this session has held at once.
      int open_now = 0;
      for (const auto& other : active_) open_now += other.exec->channel_open() ? 1 : 0;
      const int before = capacity_;
      capacity_ = std::max(1, std::min(capacity_, std::max(open_now, peak_open_)));
      // Open nothing new until one of our channels finishes (or a short
      // pause): re-trying at once would only be refused again.
      hold_until_ = now + std::chrono::milliseconds(100);
      capacity_reset_ = now + kCapacityHold;
      {
        std::lock_guard<std::mutex> lock(status_mutex_);
        ++refused_channels_;
        capacity_reported_ = capacity_;
      }
      log::write(capacity_ != before ? log::Level::info : log::Level::debug,
                 fmt::format("conn={} sshd refused a channel with {} open; capacity now {}", index_, open_now,
                             capacity_));
      // Not this request's failure: it waits for a channel like any other
      // (bounded by its queue deadline).
      pool_.requeue_front(a.job);
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
  int open_now = 0;
  for (const auto& a : active_) open_now += a.exec->channel_open() ? 1 : 0;
  peak_open_ = std::max(peak_open_, open_now);
  // Channels we finished with leave the server's count when it closes them.
  // When sshd's MaxSessions is known to be tight (a refusal lowered our
  // capacity), a released channel still counts for a short grace: sshd frees
  // the slot only after its next garbage-collection pass, and an open sent
  // right behind our CLOSE would be refused.
  const bool tight = capacity_ < pool_.config_.pool.channels_per_connection;
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
  if (!lost && !session_->connected()) lost = true;
  if (lost) {
    // Everything still running on this session failed with it.
    for (auto& a : active_) {
      a.exec->abort(Error{Errc::transport, fmt::format("connection to {} lost: {}", session_->endpoint().display(),
                                                       session_->last_error())});
      auto result = a.exec->take_result();
      if (!retry_after_transport_failure(a, result.error())) complete(a, std::move(result));
    }
    drop_session(lost_why, now);
  }
  std::lock_guard<std::mutex> lock(status_mutex_);
  in_use_ = active_.size();
}

int Worker::poll_timeout_ms(Clock::time_point now) const {
  auto wait = std::chrono::milliseconds(kMaxPollMs);
  if (!closing_.empty()) wait = std::min(wait, std::chrono::milliseconds(5));
  if (session_ && hold_until_ > now) {
    wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(hold_until_ - now) +
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
        pool_.finish(a.job, core::from_error(a.job->request, Error{Errc::internal, "internal error; see the daemon log"}),
                     index_);
      }
      active_.clear();
      drop_session(Error{Errc::internal, e.what()}, Clock::now());
    }
  }
  shutdown_jobs();
}

void Worker::iterate() {
  const auto keepalive = std::chrono::seconds(pool_.config_.ssh.keepalive_interval_s);
  {
    auto now = Clock::now();
    // Connections are opened lazily: only when work waits.
    if (!session_ && now >= next_connect_ && pool_.has_queued()) connect(now);
    now = Clock::now();
    if (session_) {
      if (capacity_ < pool_.config_.pool.channels_per_connection && now >= capacity_reset_) {
        capacity_ = pool_.config_.pool.channels_per_connection;
        std::lock_guard<std::mutex> lock(status_mutex_);
        capacity_reported_ = capacity_;
      }
      while (static_cast<int>(active_.size() + closing_.size()) < capacity_ && now >= hold_until_) {
        auto job = pool_.take(now, session_opened_);
        if (!job) break;
        start_job(std::move(job), now);
      }
      if (!active_.empty() || !closing_.empty()) step_all(now);
      if (session_ && active_.empty() && now - last_activity_ >= keepalive) {
        // Keeps NAT and firewall state alive on an idle connection; a dead
        // peer shows up as a read error on the next poll.
        if (ssh::libssh().ssh_send_ignore(session_->raw(), "") == SSH_ERROR || !session_->connected()) {
          drop_session(Error{Errc::transport, "keepalive failed: " + session_->last_error()}, now);
        }
        last_activity_ = now;
      }
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
}

void Worker::shutdown_jobs() {
  // Shutdown: whatever still runs is reported, never silently dropped.
  for (auto& a : active_) {
    a.exec->abort(Error{Errc::shutting_down, "the daemon stopped before the command finished"});
    auto result = a.exec->take_result();
    if (a.job->request.op == core::Op::submit && a.exec->maybe_started()) {
      pool_.finish(a.job,
                   core::from_error(a.job->request,
                                    Error{Errc::submit_unknown,
                                          fmt::format("submit for user {}: outcome unknown, the daemon stopped after "
                                                      "the job script was sent; check `squeue -u {}` before "
                                                      "submitting again",
                                                      a.job->request.user, a.job->request.user)}),
                   index_);
    } else {
      complete(a, std::move(result));
    }
  }
  active_.clear();
  closing_.clear();
  if (session_) {
    ssh::libssh().ssh_event_remove_session(event_, session_->raw());
    session_.reset();
    pool_.connected_.fetch_sub(1);
  }
  ssh::libssh().ssh_event_remove_fd(event_, wake_fd_);  // frees what ssh_event_add_fd allocated
  ssh::libssh().ssh_event_free(event_);
  event_ = nullptr;
  set_state("stopped");
}

}  // namespace ssb::daemon
