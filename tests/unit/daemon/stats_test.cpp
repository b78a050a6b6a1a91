#include <catch2/catch.hpp>

#include "ssb/daemon/stats.hpp"

using namespace ssb;

TEST_CASE("stats: counters by op and outcome, latency percentiles") {
  daemon::Stats stats;
  auto j0 = stats.to_json();
  CHECK(j0["latency_ms"]["p50"].is_null());
  for (int i = 1; i <= 100; ++i) {
    core::Response r;
    r.op = core::Op::query;
    r.elapsed_ms = i;
    if (i % 10 == 0) r.error = Error{Errc::transport, "x"};
    stats.record(r);
  }
  auto j = stats.to_json();
  CHECK(j["counters"]["query"]["ok"] == 90);
  CHECK(j["counters"]["query"]["transport"] == 10);
  CHECK(j["latency_ms"]["p50"] == 51);
  CHECK(j["latency_ms"]["p95"] == 95);
  CHECK(j["latency_ms"]["p99"] == 99);
  CHECK(j["latency_ms"]["window"] == 100);
}
