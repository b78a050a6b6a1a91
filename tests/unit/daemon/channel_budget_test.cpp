#include <catch2/catch.hpp>

#include "ssb/daemon/channel_budget.hpp"

using namespace ssb::daemon;
using namespace std::chrono_literals;

TEST_CASE("channel budget: the configured size until sshd refuses") {
  ChannelBudget b(8);
  const auto t0 = Clock::now();
  CHECK(b.capacity() == 8);
  CHECK_FALSE(b.tight());
  CHECK(b.allows_another(7, t0));
  CHECK_FALSE(b.allows_another(8, t0));
}

TEST_CASE("channel budget: a refusal lowers the capacity to what the server held, and pauses") {
  ChannelBudget b(8);
  const auto t0 = Clock::now();
  b.observe_open(2);
  CHECK(b.refused(3, t0));  // 3 open when the 4th was refused: MaxSessions 3
  CHECK(b.capacity() == 3);
  CHECK(b.tight());
  // Nothing new opens right after a refusal, even below the capacity ...
  CHECK_FALSE(b.allows_another(1, t0));
  CHECK(b.paused_until() == t0 + ChannelBudget::kRefusalPause);
  // ... until the pause is over or a command finishes.
  CHECK(b.allows_another(1, t0 + ChannelBudget::kRefusalPause));
  b.refused(3, t0);
  b.command_finished();
  CHECK(b.allows_another(1, t0));
  CHECK_FALSE(b.allows_another(3, t0));
}

TEST_CASE("channel budget: never below the peak this session held, never below one") {
  ChannelBudget b(8);
  const auto t0 = Clock::now();
  b.observe_open(5);
  // sshd frees a slot a little after a channel closes: a refusal with only 2
  // open does not mean the limit is 2 when 5 were held before.
  CHECK(b.refused(2, t0));
  CHECK(b.capacity() == 5);
  ChannelBudget one(4);
  one.refused(0, t0);
  CHECK(one.capacity() == 1);
  // A new session forgets the peak.
  b.new_session();
  b.refused(2, t0);
  CHECK(b.capacity() == 2);
}

TEST_CASE("channel budget: the configured size is tried again after the hold") {
  ChannelBudget b(8);
  const auto t0 = Clock::now();
  b.refused(3, t0);
  CHECK_FALSE(b.restore_if_due(t0 + ChannelBudget::kCapacityHold - 1ms));
  CHECK(b.capacity() == 3);
  CHECK(b.restore_if_due(t0 + ChannelBudget::kCapacityHold));
  CHECK(b.capacity() == 8);
  CHECK_FALSE(b.tight());
  CHECK_FALSE(b.restore_if_due(t0 + ChannelBudget::kCapacityHold * 2));  // nothing to restore
  // A second refusal does not raise a lowered capacity.
  b.refused(3, t0);
  CHECK_FALSE(b.refused(6, t0));
  CHECK(b.capacity() == 3);
}
