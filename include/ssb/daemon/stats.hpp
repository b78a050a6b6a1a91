// Counters, latency percentiles and histograms of the daemon, shared by the
// workers (which record) and the server (which reports `status` and
// `metrics`, both from here, so the two never disagree). Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ssb/core/response.hpp"

namespace ssb::daemon {

class Stats {
 public:
  // Upper bounds (seconds) of the histogram buckets: a query answered from a
  // warm connection takes milliseconds, a submit through sbatch a second or
  // more, a timeout up to pool.queue_timeout_s (default 30 s).
  static constexpr std::array<double, 14> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                   1.0,   2.5,  5.0,   10.0, 30.0, 60.0, 120.0};

  struct Histogram {
    std::array<std::uint64_t, kBuckets.size()> buckets{};  // per bucket, not cumulative; beyond the last: +Inf only
    std::uint64_t count = 0;
    double sum = 0;  // seconds
    void observe(double seconds);
  };

  struct Snapshot {
    std::map<std::string, std::map<std::string, std::uint64_t>> counters;  // op -> outcome -> n
    std::map<std::string, Histogram> latency;                              // op -> request latency
    Histogram queue_wait;                                                  // from enqueue until a worker took the job
  };

  void record(const core::Response& response);
  void record_queue_wait(std::chrono::steady_clock::duration waited);
  nlohmann::json to_json() const;
  Snapshot snapshot() const;

 private:
  static constexpr std::size_t kWindow = 4096;  // latencies kept for percentiles
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::uint64_t>> counters_;  // op -> outcome -> n
  std::map<std::string, Histogram> latency_;
  Histogram queue_wait_;
  std::array<std::int64_t, kWindow> latencies_{};
  std::size_t next_ = 0;
  std::size_t filled_ = 0;
};

}  // namespace ssb::daemon
