#include "ssb/ssh/exec.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ssb::ssh {

namespace {
constexpr std::size_t kWriteChunk = std::size_t{32} * 1024;
}

Exec::Exec(remote::RemoteCommand command, std::size_t max_output)
    : command_(std::move(command)), max_output_(max_output) {
  ssh_callbacks_init(&callbacks_);
  callbacks_.userdata = this;
  callbacks_.channel_data_function = &Exec::on_data;
  callbacks_.channel_eof_function = &Exec::on_eof;
  callbacks_.channel_close_function = &Exec::on_close;
  callbacks_.channel_exit_status_function = &Exec::on_exit_status;
  callbacks_.channel_exit_signal_function = &Exec::on_exit_signal;
}

Exec::~Exec() { close_channel(); }

void Exec::close_channel() {
  if (channel_) {
    libssh().ssh_remove_channel_callbacks(channel_, &callbacks_);
    if (libssh().ssh_channel_is_open(channel_)) libssh().ssh_channel_close(channel_);
    libssh().ssh_channel_free(channel_);
    channel_ = nullptr;
  }
}

void Exec::fail(Errc code, std::string message) {
  if (!error_) error_ = Error{code, std::move(message)};
  phase_ = Phase::failed;
  close_channel();
}

void Exec::abort(Error why) {
  if (finished()) return;
  error_ = std::move(why);
  phase_ = Phase::failed;
  close_channel();
}

int Exec::on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self) {
  auto* e = static_cast<Exec*>(self);
  std::string& sink = is_stderr ? e->outcome_.err : e->outcome_.out;
  if (sink.size() + len > e->max_output_) {
    e->overflow_ = true;
  } else {
    sink.append(static_cast<const char*>(data), len);
  }
  return static_cast<int>(len);
}

void Exec::on_eof(ssh_session, ssh_channel, void* self) { static_cast<Exec*>(self)->got_eof_ = true; }
void Exec::on_close(ssh_session, ssh_channel, void* self) { static_cast<Exec*>(self)->got_close_ = true; }
void Exec::on_exit_status(ssh_session, ssh_channel, int status, void* self) {
  static_cast<Exec*>(self)->exit_status_ = status;
}
void Exec::on_exit_signal(ssh_session, ssh_channel, const char* signal, int, const char*, const char*, void* self) {
  static_cast<Exec*>(self)->exit_signal_ = signal ? signal : "?";
}

void Exec::step(Session& session) {
  // Each phase either finishes (and the next one runs at once), waits for
  // the server (the phase stays) or fails (Phase::failed): running the
  // phases in order therefore stops wherever the exec has to wait.
  if (phase_ == Phase::open) step_open(session);
  if (phase_ == Phase::env) step_env(session);
  if (phase_ == Phase::exec) step_exec(session);
  if (phase_ == Phase::write) step_write(session);
  if (phase_ == Phase::wait) step_wait(session);
}

void Exec::fail_transport(const Session& session, std::string_view what) {
  fail(Errc::transport,
       fmt::format("connection to {} failed while {}: {}", session.endpoint().display(), what, session.last_error()));
}

void Exec::step_open(const Session& session) {
  if (!channel_) {
    channel_ = libssh().ssh_channel_new(session.raw());
    if (!channel_) return fail_transport(session, "creating a channel");
    libssh().ssh_set_channel_callbacks(channel_, &callbacks_);
  }
  int rc = libssh().ssh_channel_open_session(channel_);
  if (rc == SSH_AGAIN) return;
  if (rc != SSH_OK) {
    if (session.connected()) {
      // The server said no to this channel but kept the connection:
      // typically MaxSessions. Not this request's fault.
      refused_ = true;
      return fail(Errc::overloaded, fmt::format("{} refused a new channel ({}); its MaxSessions may be lower "
                                                "than pool.channels_per_connection",
                                                session.endpoint().display(), session.last_error()));
    }
    return fail_transport(session, "opening a channel");
  }
  phase_ = command_.env_requests.empty() ? Phase::exec : Phase::env;
}

void Exec::step_env(const Session& session) {
  while (env_index_ < command_.env_requests.size()) {
    const auto& [name, value] = command_.env_requests[env_index_];
    int rc = libssh().ssh_channel_request_env(channel_, name.c_str(), value.c_str());
    if (rc == SSH_AGAIN) return;
    if (rc != SSH_OK) {
      if (!session.connected()) return fail_transport(session, "sending environment variables");
      // The value is never part of the message.
      return fail(Errc::config,
                  fmt::format("sshd on {} refused the environment variable {}; add `AcceptEnv {}` (or a matching "
                              "pattern) to its sshd_config, or set env.method = \"stdin\"",
                              session.endpoint().display(), name, name));
    }
    ++env_index_;
  }
  phase_ = Phase::exec;
}

void Exec::step_exec(const Session& session) {
  exec_sent_ = true;
  int rc = libssh().ssh_channel_request_exec(channel_, command_.command.c_str());
  if (rc == SSH_AGAIN) return;
  if (rc != SSH_OK) {
    if (!session.connected()) return fail_transport(session, "starting the remote command");
    return fail(Errc::remote_failed, fmt::format("sshd on {} refused to run the command: {}",
                                                 session.endpoint().display(), session.last_error()));
  }
  phase_ = Phase::write;
}

void Exec::step_write(const Session& session) {
  while (written_ < command_.stdin_data.size()) {
    std::size_t window = libssh().ssh_channel_window_size(channel_);
    if (window == 0) break;
    std::size_t n = std::min({window, kWriteChunk, command_.stdin_data.size() - written_});
    int rc = libssh().ssh_channel_write(channel_, command_.stdin_data.data() + written_, static_cast<uint32_t>(n));
    if (rc == SSH_ERROR) return fail_transport(session, "sending the job script");
    if (rc == 0) break;
    written_ += static_cast<std::size_t>(rc);
  }
  if (written_ == command_.stdin_data.size() && !eof_sent_) {
    int rc = libssh().ssh_channel_send_eof(channel_);
    if (rc == SSH_ERROR) return fail_transport(session, "closing the command's input");
    if (rc == SSH_OK) eof_sent_ = true;
  }
  if (eof_sent_) {
    phase_ = Phase::wait;
    // Free the (possibly large, possibly secret-bearing) input early.
    command_.stdin_data.clear();
    command_.stdin_data.shrink_to_fit();
  }
}

void Exec::step_wait(const Session& session) {
  bool have_exit = exit_status_.has_value() || !exit_signal_.empty();
  if (have_exit && (got_eof_ || got_close_)) {
    phase_ = Phase::done;
    // Send our CLOSE but keep the channel until the server's CLOSE: sshd
    // counts the session against MaxSessions until both have crossed.
    if (libssh().ssh_channel_is_open(channel_)) libssh().ssh_channel_close(channel_);
    return;
  }
  if (got_close_ || !session.connected() || (channel_ && libssh().ssh_channel_is_closed(channel_) && !have_exit)) {
    if (!session.connected()) return fail_transport(session, "waiting for the command to finish");
    fail(Errc::transport, fmt::format("the channel to {} closed before the command reported an exit status",
                                      session.endpoint().display()));
  }
}

bool Exec::released() const { return channel_ == nullptr || got_close_; }

Result<core::RemoteOutcome> Exec::take_result() {
  if (phase_ == Phase::failed) return error_.value_or(Error{Errc::internal, "command failed"});
  if (phase_ != Phase::done) return make_error(Errc::internal, "command result taken before it finished");
  if (overflow_) {
    return make_error(Errc::remote_failed,
                      fmt::format("the wrapper printed more than limits.max_output_bytes = {} bytes", max_output_));
  }
  if (!exit_signal_.empty()) {
    return make_error(Errc::remote_failed, fmt::format("the wrapper was killed by signal SIG{}", exit_signal_));
  }
  outcome_.exit_status = *exit_status_;
  return std::move(outcome_);
}

Result<core::RemoteOutcome> run_to_completion(Session& session, remote::RemoteCommand command,
                                              std::chrono::milliseconds timeout, std::size_t max_output,
                                              bool& maybe_started) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + timeout;
  Exec exec(std::move(command), max_output);
  ssh_event event = libssh().ssh_event_new();
  if (!event) return make_error(Errc::internal, "libssh could not allocate an event loop");
  libssh().ssh_event_add_session(event, session.raw());
  Result<core::RemoteOutcome> result = make_error(Errc::internal, "not run");
  while (true) {
    exec.step(session);
    maybe_started = exec.maybe_started();
    if (exec.finished()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) {
      exec.abort(
          Error{Errc::timeout, fmt::format("the command on {} did not finish within ssh.command_timeout_s = {} s",
                                           session.endpoint().display(), timeout.count() / 1000)});
      break;
    }
    session.quick_ack();
    int rc = libssh().ssh_event_dopoll(event, static_cast<int>(std::min<long long>(left.count(), 200)));
    if (rc == SSH_ERROR && !session.connected()) {
      exec.step(session);  // lets the exec record the transport failure
      if (!exec.finished()) {
        exec.abort(Error{Errc::transport,
                         fmt::format("connection to {} lost: {}", session.endpoint().display(), session.last_error())});
      }
      break;
    }
  }
  result = exec.take_result();
  libssh().ssh_event_remove_session(event, session.raw());
  libssh().ssh_event_free(event);
  return result;
}

}  // namespace ssb::ssh
