#include "ssb/daemon/backoff.hpp"

#include <algorithm>

namespace ssb::daemon {

std::chrono::milliseconds Backoff::failed() {
  ++failures_;
  const auto base = std::min<std::int64_t>(max_ms_, min_ms_ << std::min(failures_ - 1, 20));
  std::uniform_int_distribution<std::int64_t> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(rng_));
}

}  // namespace ssb::daemon
