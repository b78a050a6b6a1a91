// The daemon's Prometheus metrics: rendered from the same figures `status`
// reports (the server's status object) plus the histograms of Stats, so the
// two never disagree. Label values are bounded sets only (op, outcome,
// connection index, state): never a user name or a job id.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "ssb/daemon/stats.hpp"

namespace ssb::daemon {

// `status`: Server::status(). `stats`: the Stats snapshot taken with it.
std::string render_metrics(const nlohmann::json& status, const Stats::Snapshot& stats);

}  // namespace ssb::daemon
