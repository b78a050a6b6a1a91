#include "ssb/daemon/status_coalescer.hpp"

#include <fmt/format.h>

#include <set>

#include "ssb/core/squeue_batch.hpp"

namespace ssb::daemon {

StatusCoalescer::StatusCoalescer(bool enabled, std::chrono::milliseconds window, std::size_t max_ids)
    : enabled_(enabled), window_(window), max_ids_(max_ids == 0 ? 1 : max_ids) {}

bool StatusCoalescer::accepts(const core::Request& request) const {
  if (!enabled_ || request.op != core::Op::query) return false;
  if (!core::squeue_takes_id(request.job_id)) return false;  // ";cluster", or beyond what squeue takes
  std::lock_guard<std::mutex> lock(mutex_);
  return !fell_back_;
}

void StatusCoalescer::add(std::shared_ptr<Job> job, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  job->enqueued = now;
  waiting_.push_back(std::move(job));
}

std::size_t StatusCoalescer::held() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::size_t n = waiting_.size();
  for (const auto& [id, batch] : in_flight_) n += batch.jobs.size();
  return n;
}

std::optional<Clock::time_point> StatusCoalescer::next_round() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (waiting_.empty() || !in_flight_.empty()) return std::nullopt;
  if (!last_start_) return Clock::time_point::min();
  return *last_start_ + window_;
}

std::vector<StatusCoalescer::Batch> StatusCoalescer::start_round(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Batch> out;
  if (waiting_.empty() || !in_flight_.empty()) return out;
  if (last_start_ && now < *last_start_ + window_) return out;
  last_start_ = now;
  // Distinct ids in arrival order; each request joins the batch of its id.
  std::map<std::string, std::uint64_t> batch_of;
  for (auto& job : waiting_) {
    const auto& id = job->request.job_id;
    auto it = batch_of.find(id);
    if (it == batch_of.end()) {
      if (out.empty() || out.back().job_ids.size() >= max_ids_) {
        out.push_back(Batch{next_batch_id_++, {}});
        in_flight_[out.back().id] = InFlight{};
      }
      out.back().job_ids.push_back(id);
      in_flight_[out.back().id].job_ids.push_back(id);
      it = batch_of.emplace(id, out.back().id).first;
    }
    in_flight_[it->second].jobs.push_back(std::move(job));
  }
  waiting_.clear();
  batches_ += out.size();
  for (const auto& b : out) ids_queried_ += b.job_ids.size();
  return out;
}

std::vector<StatusCoalescer::Decision> StatusCoalescer::finish_batch(std::uint64_t batch_id,
                                                                     const Result<core::RemoteOutcome>& result) {
  InFlight batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_flight_.find(batch_id);
    if (it == in_flight_.end()) return {};
    batch = std::move(it->second);
    in_flight_.erase(it);
  }
  core::SqueueBatch parsed;
  if (result) parsed = core::parse_squeue_batch(*result);
  const auto& listed = parsed.listed;
  std::vector<Decision> out;
  std::uint64_t confirmations = 0, refused = 0;
  for (auto& job : batch.jobs) {
    Decision d;
    d.job = job;
    const auto& request = job->request;
    if (!result) {
      // As a per-user query that failed the same way: unknown, never gone.
      d.response = core::from_error(request, result.error());
    } else if (parsed.kind == core::SqueueBatch::Kind::failed) {
      // Slurm failed (slurm_load_jobs error: controller down, munge, ...):
      // what the wrapper would have passed through, exit status and stderr.
      d.response = core::from_remote(request, core::RemoteOutcome{result->exit_status, "", result->err});
    } else if (auto line =
                   parsed.kind == core::SqueueBatch::Kind::unexpected ? listed.end() : listed.find(request.job_id);
               line == listed.end()) {
      // Not listed, or an unexpected failure (nothing known about this id):
      // the per-user wrapper answers, as today.
      d.kind = Decision::Kind::confirm;
      ++confirmations;
    } else if (line->second.owner != request.user) {
      d.response = core::from_remote(request, core::missing_job_outcome());
      d.refused = true;
      d.owner = line->second.owner;
      ++refused;
    } else {
      d.response = core::from_remote(request, core::RemoteOutcome{0, line->second.wrapper_stdout, ""});
      d.response.slurm = line->second.details;
    }
    out.push_back(std::move(d));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  confirmations_ += confirmations;
  refused_ += refused;
  return out;
}

bool StatusCoalescer::confirmed(const core::Request& request, const core::Response& response) {
  // The wrapper saw a job the service account's squeue did not list: the
  // batch cannot be trusted to see every user's jobs.
  if (!response.ok() || !response.state) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  if (fell_back_) return false;
  fell_back_ = true;
  why_ = fmt::format(
      "the service account's squeue did not list job {} of {}, which the per-user wrapper sees (state {}): it "
      "cannot see other users' jobs (slurm.conf PrivateData=jobs without an operator role?); run "
      "`slurm-ssh-bridge check` for what to set up",
      request.job_id, request.user, *response.state);
  return true;
}

std::vector<std::shared_ptr<Job>> StatusCoalescer::take_waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::shared_ptr<Job>> out;
  out.swap(waiting_);
  return out;
}

bool StatusCoalescer::coalescing() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return enabled_ && !fell_back_;
}

std::string StatusCoalescer::why() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return why_;
}

nlohmann::json StatusCoalescer::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json j{{"mode_configured", enabled_ ? "coalesced" : "per_user"},
                   {"mode", enabled_ && !fell_back_ ? "coalesced" : "per_user"},
                   {"window_ms", window_.count()},
                   {"batches", batches_},
                   {"ids_queried", ids_queried_},
                   {"confirmations", confirmations_},
                   {"refused", refused_}};
  if (!why_.empty()) j["why"] = why_;
  return j;
}

}  // namespace ssb::daemon
