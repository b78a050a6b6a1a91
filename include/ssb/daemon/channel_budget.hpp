// How many channels one pooled connection may hold open right now, and why.
//
// sshd's MaxSessions may be lower than pool.channels_per_connection, and the
// server says so only by refusing a channel. The budget then drops to what
// the server demonstrably held for us, opens nothing new for a moment (an
// open right after a refusal is refused again), and tries the configured
// size again after a while (the limit may have been raised). Pure logic,
// no I/O: one per Worker, used on its thread only.
#pragma once

#include <chrono>

#include "ssb/daemon/job.hpp"

namespace ssb::daemon {

class ChannelBudget {
 public:
  // After a refusal the lowered capacity holds this long.
  static constexpr auto kCapacityHold = std::chrono::seconds(30);
  // After a refusal, open nothing new for this long (or until a command
  // finishes).
  static constexpr auto kRefusalPause = std::chrono::milliseconds(100);

  explicit ChannelBudget(int configured);

  int capacity() const { return capacity_; }
  // A refusal lowered the capacity below the configured size.
  bool tight() const { return capacity_ < configured_; }
  // Whether one more channel may open, with `held` channels counted against
  // the server (running, plus finished ones not yet closed by it).
  bool allows_another(int held, Clock::time_point now) const { return held < capacity_ && now >= hold_until_; }
  // When the pause after a refusal ends (time_point{} when none).
  Clock::time_point paused_until() const { return hold_until_; }

  // A fresh session: no history of what the server held.
  void new_session();
  // `open_now` channels are open on the session (tracked as the peak).
  void observe_open(int open_now);
  // A command finished on this session: the server is taking channels again.
  void command_finished() { hold_until_ = Clock::time_point{}; }
  // The server refused a channel while `open_now` were open. Returns true
  // when the capacity changed. sshd frees a slot a little after a channel
  // closes, so a refusal can come with fewer open than the real limit:
  // never below the peak this session held, never below 1.
  bool refused(int open_now, Clock::time_point now);
  // Back to the configured size once the hold has passed. Returns true when
  // the capacity changed.
  bool restore_if_due(Clock::time_point now);

 private:
  const int configured_;
  int capacity_;
  int peak_open_ = 0;
  Clock::time_point hold_until_{};
  Clock::time_point reset_at_{};
};

}  // namespace ssb::daemon
