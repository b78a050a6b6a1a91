// One remote command on one channel, driven without blocking so that many
// of them can share a session (the daemon) or one can run alone (direct).
//
// The owner calls step() whenever the session may have made progress (after
// ssh_event_dopoll) until finished(). Output arrives through libssh channel
// callbacks into this object, which therefore never moves (held by pointer).
#pragma once

#include "ssb/ssh/libssh.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "ssb/core/response.hpp"
#include "ssb/remote/command.hpp"
#include "ssb/ssh/session.hpp"
#include "ssb/util/result.hpp"

namespace ssb::ssh {

class Exec {
 public:
  Exec(remote::RemoteCommand command, std::size_t max_output);
  Exec(const Exec&) = delete;
  Exec& operator=(const Exec&) = delete;
  ~Exec();

  // Advances as far as possible without blocking.
  void step(Session& session);
  bool finished() const { return phase_ == Phase::done || phase_ == Phase::failed; }

  // True once the exec request may have reached the server: from then on a
  // failure leaves the command's effect unknown.
  bool maybe_started() const { return exec_sent_; }

  // True when the server refused to open the channel while the connection
  // stayed up (sshd's MaxSessions): the caller may try another connection.
  bool refused() const { return refused_; }

  // True once the server accepted the channel (it counts against MaxSessions).
  bool channel_open() const { return phase_ != Phase::open && phase_ != Phase::failed; }

  // After finished(): true once the server has closed the channel too, so
  // it no longer counts against the server's MaxSessions.
  bool released() const;

  // Gives up (deadline passed, shutdown): closes the channel.
  void abort(Error why);

  // After finished(): the wrapper's outcome, or why there is none.
  Result<core::RemoteOutcome> take_result();

 private:
  enum class Phase { open, env, exec, write, wait, done, failed };

  void fail(Errc code, std::string message);
  void fail_transport(const Session& session, std::string_view what);
  // The phases of step(), in order; each advances phase_ when it is done.
  void step_open(const Session& session);
  void step_env(const Session& session);
  void step_exec(const Session& session);
  void step_write(const Session& session);
  void step_wait(const Session& session);
  void close_channel();

  static int on_data(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr, void* self);
  static void on_eof(ssh_session, ssh_channel, void* self);
  static void on_close(ssh_session, ssh_channel, void* self);
  static void on_exit_status(ssh_session, ssh_channel, int status, void* self);
  static void on_exit_signal(ssh_session, ssh_channel, const char* signal, int core, const char* errmsg,
                             const char* lang, void* self);

  remote::RemoteCommand command_;
  std::size_t max_output_;
  ssh_channel channel_ = nullptr;
  ssh_channel_callbacks_struct callbacks_{};
  Phase phase_ = Phase::open;
  std::size_t env_index_ = 0;
  std::size_t written_ = 0;
  bool eof_sent_ = false;
  bool exec_sent_ = false;
  bool refused_ = false;
  bool got_eof_ = false;
  bool got_close_ = false;
  std::optional<int> exit_status_;
  std::string exit_signal_;
  bool overflow_ = false;
  core::RemoteOutcome outcome_;
  std::optional<Error> error_;
};

// Direct path: runs one command on its own session to completion, or until
// `timeout` passes.
Result<core::RemoteOutcome> run_to_completion(Session& session, remote::RemoteCommand command,
                                              std::chrono::milliseconds timeout, std::size_t max_output,
                                              bool& maybe_started);

}  // namespace ssb::ssh
