// When a worker tries to connect again after failures: exponential from
// pool.reconnect_min_ms up to pool.reconnect_max_ms, with full jitter in
// [delay/2, delay] so workers that failed together retry apart. One per
// Worker; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace ssb::daemon {

class Backoff {
 public:
  Backoff(std::int64_t min_ms, std::int64_t max_ms, unsigned seed) : min_ms_(min_ms), max_ms_(max_ms), rng_(seed) {}

  // One more failure: the delay before the next attempt.
  std::chrono::milliseconds failed();
  // A success: the next failure starts from min_ms again.
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::int64_t min_ms_;
  std::int64_t max_ms_;
  int failures_ = 0;
  std::mt19937 rng_;
};

}  // namespace ssb::daemon
