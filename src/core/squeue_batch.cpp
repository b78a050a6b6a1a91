#include "ssb/core/squeue_batch.hpp"

#include <vector>

namespace ssb::core {

namespace {

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    auto pos = line.find(sep, start);
    out.push_back(line.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// A word squeue prints for "no value".
std::optional<std::string> unless(std::string_view value, std::initializer_list<std::string_view> empty_words) {
  for (auto w : empty_words) {
    if (value == w) return std::nullopt;
  }
  if (value.empty()) return std::nullopt;
  return std::string(value);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

}  // namespace

std::optional<SqueueLine> parse_squeue_line(std::string_view line) {
  auto f = split(trim(line), '|');
  if (f.size() != 6 || !all_digits(f[0]) || f[1].empty() || f[2].empty() || f[3].empty()) return std::nullopt;
  SqueueLine out;
  out.job_id = std::string(f[0]);
  out.owner = std::string(f[1]);
  // The wrapper's '%T %B': the two fields, one space, one newline; %B is
  // "n/a" for a job without a node yet, and printed as such.
  out.wrapper_stdout = std::string(f[2]) + " " + std::string(f[3]) + "\n";
  out.details.state = std::string(f[2]);
  out.details.node = unless(f[3], {"n/a", "(null)"});
  out.details.reason = unless(f[4], {"None", "(null)"});
  out.details.expected_start = unless(f[5], {"N/A", "Unknown", "None", "(null)"});
  return out;
}

bool squeue_takes_id(std::string_view job_id) {
  if (!all_digits(job_id) || job_id.size() > 10 || job_id[0] == '0') return false;
  return std::stoull(std::string(job_id)) <= 2147483647ULL;
}

SqueueBatch parse_squeue_batch(const RemoteOutcome& outcome) {
  SqueueBatch batch;
  if (outcome.exit_status != 0) {
    std::string_view err(outcome.err);
    while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.remove_suffix(1);
    if (outcome.out.empty() && err == kInvalidJobIdError) return batch;  // the only id asked about is unknown
    batch.kind = outcome.err.find("slurm_load_jobs error") != std::string::npos ? SqueueBatch::Kind::failed
                                                                                : SqueueBatch::Kind::unexpected;
    return batch;
  }
  std::string_view rest(outcome.out);
  while (!rest.empty()) {
    auto nl = rest.find('\n');
    auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (auto parsed = parse_squeue_line(line)) batch.listed[parsed->job_id] = std::move(*parsed);
  }
  return batch;
}

RemoteOutcome missing_job_outcome() { return RemoteOutcome{1, "", std::string(kInvalidJobIdError) + "\n"}; }

}  // namespace ssb::core
