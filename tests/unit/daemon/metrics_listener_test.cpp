#include <catch2/catch.hpp>

#include "ssb/daemon/metrics_listener.hpp"

using namespace ssb;

TEST_CASE("metrics listener: GET /metrics is served, other paths 404, other methods 405, junk 400") {
  CHECK(daemon::MetricsListener::route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").first == 200);
  CHECK(daemon::MetricsListener::route("GET /metrics?x=1 HTTP/1.0\r\n\r\n").first == 200);
  CHECK(daemon::MetricsListener::route("GET / HTTP/1.1\r\n\r\n").first == 404);
  CHECK(daemon::MetricsListener::route("POST /metrics HTTP/1.1\r\n\r\n").first == 405);
  CHECK(daemon::MetricsListener::route("hello\r\n\r\n").first == 400);
}
