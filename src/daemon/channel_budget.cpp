#include "ssb/daemon/channel_budget.hpp"

#include <algorithm>

namespace ssb::daemon {

ChannelBudget::ChannelBudget(int configured) : configured_(std::max(1, configured)), capacity_(configured_) {}

void ChannelBudget::new_session() {
  peak_open_ = 0;
  hold_until_ = Clock::time_point{};
}

void ChannelBudget::observe_open(int open_now) { peak_open_ = std::max(peak_open_, open_now); }

bool ChannelBudget::refused(int open_now, Clock::time_point now) {
  const int before = capacity_;
  capacity_ = std::max(1, std::min(capacity_, std::max(open_now, peak_open_)));
  hold_until_ = now + kRefusalPause;
  reset_at_ = now + kCapacityHold;
  return capacity_ != before;
}

bool ChannelBudget::restore_if_due(Clock::time_point now) {
  if (capacity_ >= configured_ || now < reset_at_) return false;
  capacity_ = configured_;
  return true;
}

}  // namespace ssb::daemon
