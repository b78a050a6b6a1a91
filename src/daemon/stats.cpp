#include "ssb/daemon/stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ssb::daemon {

void Stats::Histogram::observe(double seconds) {
  for (std::size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++buckets[i];
      break;
    }
  }
  ++count;
  sum += seconds;
}

void Stats::record(const core::Response& response) {
  std::string outcome = response.ok() ? "ok" : std::string(to_string(response.error->code));
  std::string op(core::to_string(response.op));
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_[op][outcome];
  latency_[op].observe(static_cast<double>(response.elapsed_ms) / 1000.0);
  latencies_[next_] = response.elapsed_ms;
  next_ = (next_ + 1) % kWindow;
  filled_ = std::min(filled_ + 1, kWindow);
}

void Stats::record_queue_wait(std::chrono::steady_clock::duration waited) {
  const double seconds = std::chrono::duration<double>(waited).count();
  std::lock_guard<std::mutex> lock(mutex_);
  queue_wait_.observe(seconds);
}

Stats::Snapshot Stats::snapshot() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Snapshot{counters_, latency_, queue_wait_};
}

nlohmann::json Stats::to_json() const {
  std::vector<std::int64_t> sorted;
  nlohmann::json counters = nlohmann::json::object();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    sorted.assign(latencies_.begin(), latencies_.begin() + static_cast<std::ptrdiff_t>(filled_));
    for (const auto& [op, outcomes] : counters_) counters[op] = outcomes;
  }
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) -> nlohmann::json {
    if (sorted.empty()) return nullptr;
    auto idx = static_cast<std::size_t>(std::lround(p * static_cast<double>(sorted.size() - 1)));
    return sorted[std::min(idx, sorted.size() - 1)];
  };
  return {{"counters", counters},
          {"latency_ms", {{"window", sorted.size()}, {"p50", pct(0.50)}, {"p95", pct(0.95)}, {"p99", pct(0.99)}}}};
}

}  // namespace ssb::daemon
