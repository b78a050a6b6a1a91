#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "ssb/daemon/metrics.hpp"
#include "ssb/daemon/metrics_listener.hpp"
#include "ssb/daemon/metrics_text.hpp"
#include "ssb/util/log.hpp"

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

TEST_CASE("metrics: every connection state is present and no user or job id is a label value") {
  nlohmann::json status{{"connections", {{{"index", 0}, {"state", "connected"}, {"channels_in_use", 2}}}},
                        {"status", {{"mode", "coalesced"}, {"batches", 4}}}};
  daemon::Stats stats;
  core::Response r;
  r.op = core::Op::submit;
  r.user = "alice";
  r.job_id = "4242";
  r.error = Error{Errc::submit_unknown, "x"};
  stats.record(r);
  auto text = daemon::render_metrics(status, stats.snapshot());
  CHECK(text.find("slurm_ssh_bridge_connections{state=\"connected\"} 1\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_connections{state=\"backoff\"} 0\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_submit_unknown_total 1\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_status_coalesced 1\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_channels_in_use{connection=\"0\"} 2\n") != std::string::npos);
  CHECK(text.find("alice") == std::string::npos);
  CHECK(text.find("4242") == std::string::npos);
}

TEST_CASE("metrics listener: GET /metrics is served, other paths 404, other methods 405, junk 400") {
  CHECK(daemon::MetricsListener::route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").first == 200);
  CHECK(daemon::MetricsListener::route("GET /metrics?x=1 HTTP/1.0\r\n\r\n").first == 200);
  CHECK(daemon::MetricsListener::route("GET / HTTP/1.1\r\n\r\n").first == 404);
  CHECK(daemon::MetricsListener::route("POST /metrics HTTP/1.1\r\n\r\n").first == 405);
  CHECK(daemon::MetricsListener::route("hello\r\n\r\n").first == 400);
}

TEST_CASE("log: json lines carry ts, level, msg and typed fields; text keeps the v1 names") {
  auto j = nlohmann::json::parse(
      log::format_line(log::Format::json, log::Level::info, "",
                       {{"id", "1.1/a\"b", false, "req"}, {"elapsed_ms", "12", true, "dur_ms"}, {"user", "\xff\n"}}));
  CHECK(j["level"] == "info");
  CHECK(j["id"] == "1.1/a\"b");
  CHECK(j["elapsed_ms"] == 12);
  CHECK(j["user"] == "\u00ff\n");
  CHECK(j.contains("ts"));
  auto t = log::format_line(log::Format::text, log::Level::info, "", {{"id", "1.1", false, "req"}, {"op", "query"}});
  CHECK(t.find(" info req=1.1 op=query") != std::string::npos);
}
