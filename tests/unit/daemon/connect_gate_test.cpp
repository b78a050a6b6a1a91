#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "ssb/daemon/connect_gate.hpp"

using namespace ssb::daemon;
using namespace std::chrono_literals;

TEST_CASE("connect gate: one attempt at a time") {
  ConnectGate gate(0ms);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5; ++k) {
        auto turn = gate.wait_turn();
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(1ms);
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(most.load() == 1);
}

TEST_CASE("connect gate: a success spaces the next attempt, a failure does not") {
  ConnectGate gate(80ms);
  {
    auto turn = gate.wait_turn();
    turn.succeeded(Clock::now());
  }
  auto t0 = Clock::now();
  { auto turn = gate.wait_turn(); }  // failed attempt: waits for the spacing after the success
  CHECK(Clock::now() - t0 >= 70ms);
  t0 = Clock::now();
  { auto turn = gate.wait_turn(); }  // the last success is long enough ago
  CHECK(Clock::now() - t0 < 70ms);
}
