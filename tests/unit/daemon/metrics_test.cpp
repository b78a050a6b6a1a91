#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "ssb/daemon/metrics.hpp"
#include "ssb/daemon/stats.hpp"

using namespace ssb;

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
  CHECK(text.find("slurm_ssh_bridge_connections{state=\"idle\"} 0\n") != std::string::npos);
  // Present before the first overload, so increase() sees the first one.
  CHECK(text.find("slurm_ssh_bridge_requests_total{op=\"query\",outcome=\"overloaded\"} 0\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_requests_total{op=\"submit\",outcome=\"submit_unknown\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_submit_unknown_total 1\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_status_coalesced 1\n") != std::string::npos);
  CHECK(text.find("slurm_ssh_bridge_channels_in_use{connection=\"0\"} 2\n") != std::string::npos);
  CHECK(text.find("alice") == std::string::npos);
  CHECK(text.find("4242") == std::string::npos);
}
