#include "ssb/daemon/stats.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ssb::daemon {

void Stats::record(const core::Response& response) {
  std::string outcome = response.ok() ? "ok" : std::string(to_string(response.error->code));
  std::lock_guard<std::mutex> lock(mutex_);
  ++counters_[std::string(core::to_string(response.op))][outcome];
  latencies_[next_] = response.elapsed_ms;
  next_ = (next_ + 1) % kWindow;
  filled_ = std::min(filled_ + 1, kWindow);
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
