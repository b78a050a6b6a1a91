#include "ssb/daemon/metrics.hpp"

#include <map>
#include <set>

#include "ssb/core/request.hpp"
#include "ssb/daemon/metrics_text.hpp"

namespace ssb::daemon {

namespace {

constexpr const char* kPrefix = "slurm_ssh_bridge_";

std::string metric(const char* name) { return std::string(kPrefix) + name; }

double num(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

void process_metrics(MetricsText& m, const nlohmann::json& status) {
  m.family(metric("build_info"), "gauge", "Always 1; the version label says which bridge is running.");
  m.sample(metric("build_info"), {{"version", status.value("version", std::string())}}, 1);
  m.family(metric("uptime_seconds"), "gauge", "Seconds since the daemon started.");
  m.sample(metric("uptime_seconds"), {}, num(status, "uptime_s"));
  m.family(metric("resident_memory_bytes"), "gauge", "The daemon's resident set size (VmRSS).");
  m.sample(metric("resident_memory_bytes"), {}, num(status, "rss_kib") * 1024);
  m.family(metric("peak_resident_memory_bytes"), "gauge", "The daemon's peak resident set size (VmHWM).");
  m.sample(metric("peak_resident_memory_bytes"), {}, num(status, "peak_rss_kib") * 1024);
  m.family(metric("clients"), "gauge", "Clients connected to the Unix socket.");
  m.sample(metric("clients"), {}, num(status, "clients"));
  m.family(metric("max_clients"), "gauge", "Most clients served at once (daemon.max_clients, after the fd limit).");
  m.sample(metric("max_clients"), {}, num(status, "max_clients"));
}

void request_metrics(MetricsText& m, const Stats::Snapshot& stats) {
  m.family(metric("requests_total"), "counter", "Requests answered, by op and outcome (ok or the error code).");
  // ok and overloaded exist from the start for every queued op: a counter
  // series born at its first value hides that first increase from
  // increase(), and the overload alert would miss a single burst.
  auto counters = stats.counters;
  for (core::Op op : {core::Op::submit, core::Op::query, core::Op::cancel, core::Op::explain, core::Op::jobs}) {
    auto& outcomes = counters[std::string(core::to_string(op))];
    outcomes.emplace("ok", 0);
    outcomes.emplace(to_string(Errc::overloaded), 0);
  }
  for (const auto& [op, outcomes] : counters) {
    for (const auto& [outcome, n] : outcomes) {
      m.sample(metric("requests_total"), {{"op", op}, {"outcome", outcome}}, static_cast<double>(n));
    }
  }
  m.family(metric("request_duration_seconds"), "histogram",
           "Time from a request's arrival at the daemon to its answer, by op.");
  for (const auto& [op, h] : stats.latency) m.histogram(metric("request_duration_seconds"), {{"op", op}}, h);
  // Its own series, always present: the alert on it must not depend on a
  // submit_unknown having happened once.
  std::uint64_t unknown = 0;
  if (auto it = stats.counters.find("submit"); it != stats.counters.end()) {
    if (auto u = it->second.find("submit_unknown"); u != it->second.end()) unknown = u->second;
  }
  m.family(metric("submit_unknown_total"), "counter",
           "Submits whose outcome is unknown (the exec may have reached sbatch; never re-sent): check squeue.");
  m.sample(metric("submit_unknown_total"), {}, static_cast<double>(unknown));
}

void queue_metrics(MetricsText& m, const nlohmann::json& status, const Stats::Snapshot& stats) {
  m.family(metric("queue_depth"), "gauge", "Requests waiting for a free channel.");
  m.sample(metric("queue_depth"), {}, num(status, "queue_depth"));
  m.family(metric("queue_size"), "gauge", "pool.queue_size: waiting requests beyond it are refused as overloaded.");
  m.sample(metric("queue_size"), {}, num(status.value("pool", nlohmann::json::object()), "queue_size"));
  m.family(metric("requests_running"), "gauge", "Requests taken by a worker and not yet answered.");
  m.sample(metric("requests_running"), {}, num(status, "running"));
  m.family(metric("queue_wait_seconds"), "histogram", "Time a request waited in the queue until a worker took it.");
  m.histogram(metric("queue_wait_seconds"), {}, stats.queue_wait);
}

void connection_metrics(MetricsText& m, const nlohmann::json& status) {
  const auto conns = status.value("connections", nlohmann::json::array());
  // Every state is always present (0 included), so "none connected" is a
  // plain comparison in an alert.
  // "idle": not tried yet (connections open when work waits).
  std::map<std::string, int> by_state{
      {"idle", 0}, {"connecting", 0}, {"connected", 0}, {"backoff", 0}, {"disconnected", 0}};
  for (const auto& c : conns) ++by_state[c.value("state", std::string("unknown"))];
  m.family(metric("connections"), "gauge", "Pooled SSH connections to the login host, by state.");
  for (const auto& [state, n] : by_state) m.sample(metric("connections"), {{"state", state}}, n);
  m.family(metric("connections_configured"), "gauge", "pool.connections.");
  m.sample(metric("connections_configured"), {}, static_cast<double>(conns.size()));
  m.family(metric("channels_per_connection"), "gauge", "pool.channels_per_connection.");
  m.sample(metric("channels_per_connection"), {},
           num(status.value("pool", nlohmann::json::object()), "channels_per_connection"));
  const std::pair<const char*, const char*> per_connection[] = {
      {"channels_in_use", "SSH channels running a command, by connection index."},
      {"channel_refusals_total", "Channels sshd refused (its MaxSessions below pool.channels_per_connection)."},
      {"reconnects_total", "Sessions opened again after a connection had been up."}};
  const char* fields[] = {"channels_in_use", "refused_channels", "reconnects"};
  for (std::size_t k = 0; k < 3; ++k) {
    const std::string name = metric(per_connection[k].first);
    m.family(name, k == 0 ? "gauge" : "counter", per_connection[k].second);
    for (const auto& c : conns) {
      m.sample(name, {{"connection", std::to_string(c.value("index", -1))}}, num(c, fields[k]));
    }
  }
}

void coalesced_metrics(MetricsText& m, const nlohmann::json& status) {
  const auto s = status.value("status", nlohmann::json::object());
  m.family(metric("status_coalesced"), "gauge",
           "1 while queries are coalesced (status.mode = \"coalesced\" and not fallen back to per_user), else 0.");
  m.sample(metric("status_coalesced"), {}, s.value("mode", std::string()) == "coalesced" ? 1 : 0);
  const std::pair<const char*, const char*> counters[] = {
      {"batches", "Coalesced status: squeue runs for a batch of job ids."},
      {"ids_queried", "Coalesced status: job ids asked about in those runs."},
      {"confirmations", "Coalesced status: queries handed to the per-user wrapper (id not listed, or unexpected)."},
      {"refused", "Coalesced status: queries about another user's job, answered as gone."}};
  for (const auto& [field, help] : counters) {
    const std::string name = metric("status_") + field + "_total";
    m.family(name, "counter", help);
    m.sample(name, {}, num(s, field));
  }
}

}  // namespace

std::string render_metrics(const nlohmann::json& status, const Stats::Snapshot& stats) {
  MetricsText m;
  process_metrics(m, status);
  request_metrics(m, stats);
  queue_metrics(m, status, stats);
  connection_metrics(m, status);
  coalesced_metrics(m, status);
  return m.text();
}

}  // namespace ssb::daemon
