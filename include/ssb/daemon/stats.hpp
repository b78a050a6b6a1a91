// Counters and latency percentiles of the daemon, shared by the workers
// (which record) and the server (which reports `status`). Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "ssb/core/response.hpp"

namespace ssb::daemon {

class Stats {
 public:
  void record(const core::Response& response);
  nlohmann::json to_json() const;

 private:
  static constexpr std::size_t kWindow = 4096;  // latencies kept for percentiles
  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::uint64_t>> counters_;  // op -> outcome -> n
  std::array<std::int64_t, kWindow> latencies_{};
  std::size_t next_ = 0;
  std::size_t filled_ = 0;
};

}  // namespace ssb::daemon
