// One SSH handshake at a time across the whole pool, spaced apart.
//
// A daemon restart or the end of an outage would otherwise send every
// worker's handshake at once into sshd's MaxStartups (whose excess
// connections sshd drops at random). sshd counts a connection as starting
// until its child reports the login done, a moment after the client sees
// authentication succeed, so consecutive successful connects are also
// spaced by `spacing`. Shared by all workers; thread-safe.
#pragma once

#include <chrono>
#include <mutex>

#include "ssb/daemon/job.hpp"

namespace ssb::daemon {

class ConnectGate {
 public:
  explicit ConnectGate(Clock::duration spacing) : spacing_(spacing) {}

  // The right to make one connection attempt; released when destroyed.
  class Turn {
   public:
    explicit Turn(ConnectGate& gate);
    // The attempt succeeded at `when`: the next one waits `spacing` from it.
    void succeeded(Clock::time_point when) { gate_.last_success_ = when; }

   private:
    ConnectGate& gate_;
    std::lock_guard<std::mutex> lock_;
  };

  // Blocks until no other attempt runs and the spacing since the last
  // successful attempt has passed.
  Turn wait_turn() { return Turn(*this); }

 private:
  const Clock::duration spacing_;
  std::mutex mutex_;
  Clock::time_point last_success_{};  // guarded by mutex_
};

}  // namespace ssb::daemon
