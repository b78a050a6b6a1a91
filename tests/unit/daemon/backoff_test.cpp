#include <catch2/catch.hpp>

#include "ssb/daemon/backoff.hpp"

using namespace ssb::daemon;

TEST_CASE("backoff: exponential from min to max with jitter in [delay/2, delay]") {
  Backoff b(100, 1000, 42);
  const std::int64_t expected[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (auto base : expected) {
    auto d = b.failed().count();
    INFO("failure " << b.failures() << " base " << base);
    CHECK(d >= base / 2);
    CHECK(d <= base);
  }
  CHECK(b.failures() == 7);
  b.reset();
  CHECK(b.failures() == 0);
  CHECK(b.failed().count() <= 100);
}

TEST_CASE("backoff: many failures never overflow the shift") {
  Backoff b(1, 60000, 1);
  for (int i = 0; i < 100; ++i) {
    auto d = b.failed().count();
    REQUIRE(d >= 0);
    REQUIRE(d <= 60000);
  }
}

TEST_CASE("backoff: two workers that failed together retry apart") {
  Backoff a(1000, 30000, 1), c(1000, 30000, 2);
  int differ = 0;
  for (int i = 0; i < 5; ++i) differ += a.failed() != c.failed() ? 1 : 0;
  CHECK(differ >= 4);
}
