#include <catch2/catch.hpp>

#include "ssb/daemon/metrics_text.hpp"
#include "ssb/daemon/stats.hpp"

using namespace ssb;
using daemon::MetricsText;

TEST_CASE("metrics text: label values and help are escaped as the format requires") {
  CHECK(MetricsText::escape_label("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(MetricsText::escape_help("x\\y\nz\"") == "x\\\\y\\nz\"");
  MetricsText m;
  m.family("x_total", "counter", "help");
  m.sample("x_total", {{"op", "q\"1"}}, 3);
  CHECK(m.text() == "# HELP x_total help\n# TYPE x_total counter\nx_total{op=\"q\\\"1\"} 3\n");
}

TEST_CASE("metrics text: numbers, +Inf and NaN") {
  CHECK(MetricsText::number(3) == "3");
  CHECK(MetricsText::number(0.005) == "0.005");
  CHECK(MetricsText::number(1.0 / 0.0) == "+Inf");
  CHECK(MetricsText::number(0.0 / 0.0) == "NaN");
}

TEST_CASE("metrics text: histogram buckets are cumulative and end at +Inf, then _sum and _count") {
  daemon::Stats::Histogram h;
  h.observe(0.001);
  h.observe(0.2);
  h.observe(500);  // beyond the last bound: only +Inf
  MetricsText m;
  m.histogram("d_seconds", {{"op", "query"}}, h);
  const auto& t = m.text();
  CHECK(t.find("d_seconds_bucket{op=\"query\",le=\"0.005\"} 1\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{op=\"query\",le=\"0.25\"} 2\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{op=\"query\",le=\"120\"} 2\n") != std::string::npos);
  CHECK(t.find("d_seconds_bucket{op=\"query\",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(t.find("d_seconds_sum{op=\"query\"} 500.201\n") != std::string::npos);
  CHECK(t.find("d_seconds_count{op=\"query\"} 3\n") != std::string::npos);
}
