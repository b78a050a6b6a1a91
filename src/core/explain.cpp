#include "ssb/core/explain.hpp"

#include <fmt/format.h>

#include <charconv>
#include <map>
#include <vector>

#include "ssb/core/validate.hpp"

namespace ssb::core {

namespace {

bool is_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '/';
}

// Where a "Key=" of scontrol's one-line format starts at `i` (start of line
// or after a space), the length of the key; else 0.
std::size_t key_at(std::string_view line, std::size_t i) {
  if (i > 0 && line[i - 1] != ' ') return 0;
  if (i >= line.size() || !((line[i] >= 'A' && line[i] <= 'Z') || (line[i] >= 'a' && line[i] <= 'z'))) return 0;
  std::size_t j = i;
  while (j < line.size() && is_key_char(line[j])) ++j;
  return j < line.size() && line[j] == '=' ? j - i : 0;
}

// scontrol -o prints "Key=Value" pairs separated by single spaces; a value
// runs up to the next " Key=" (so a StdOut path with a space survives). The
// first occurrence of a key wins: scontrol prints JobState, Reason,
// ExitCode and StartTime before every free-text field except JobName, and
// only the job's owner chooses its JobName, so a forged field can only
// mislead about (or expose) the forger's own job, never anyone else's.
std::map<std::string, std::string, std::less<>> scontrol_fields(std::string_view line) {
  std::vector<std::pair<std::size_t, std::size_t>> keys;  // start, length
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (auto n = key_at(line, i)) {
      keys.emplace_back(i, n);
      i += n;
    }
  }
  std::map<std::string, std::string, std::less<>> out;
  for (std::size_t k = 0; k < keys.size(); ++k) {
    auto [start, len] = keys[k];
    std::size_t vbegin = start + len + 1;
    std::size_t vend = k + 1 < keys.size() ? keys[k + 1].first : line.size();
    std::string_view value = line.substr(vbegin, vend - vbegin);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r' || value.back() == '\n')) {
      value.remove_suffix(1);
    }
    out.emplace(std::string(line.substr(start, len)), std::string(value));
  }
  return out;
}

// States in which a job has not ended: its ExitCode says nothing yet.
bool still_alive(std::string_view state) {
  for (std::string_view s : {"PENDING", "RUNNING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                             "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}) {
    if (state == s) return true;
  }
  return false;
}

// Slurm's "no value" spellings.
std::optional<std::string> slurm_value(std::string_view v) {
  if (v.empty() || v == "None" || v == "(null)" || v == "Unknown" || v == "N/A") return std::nullopt;
  return std::string(v);
}

void fill_common(JobExplanation& job, std::string_view exit_code, std::string_view reason, std::string_view start) {
  // "CANCELLED by 1002" (sacct) and "CANCELLED+" style suffixes: the word.
  auto end = job.state.find_first_of(" +");
  if (end != std::string::npos) job.state.resize(end);
  if (!still_alive(job.state)) parse_exit_code(exit_code, job.exit_code, job.signal);
  job.reason = slurm_value(reason);
  if (job.state == "PENDING") job.expected_start = slurm_value(start);
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return lines;
}

std::string first_nonempty(const std::vector<std::string_view>& lines) {
  for (auto l : lines) {
    if (l.find_first_not_of(" \t") != std::string_view::npos) return printable(l);
  }
  return "(no output)";
}

}  // namespace

bool parse_exit_code(std::string_view text, std::optional<int>& exit_code, std::optional<int>& signal) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return false;
  int code = 0, sig = 0;
  auto a = text.substr(0, colon), b = text.substr(colon + 1);
  auto ra = std::from_chars(a.data(), a.data() + a.size(), code);
  auto rb = std::from_chars(b.data(), b.data() + b.size(), sig);
  if (a.empty() || b.empty() || ra.ec != std::errc() || ra.ptr != a.data() + a.size() || rb.ec != std::errc() ||
      rb.ptr != b.data() + b.size() || code < 0 || sig < 0) {
    return false;
  }
  if (sig != 0) {
    signal = sig;
    exit_code.reset();
  } else {
    exit_code = code;
    signal.reset();
  }
  return true;
}

std::string describe(const JobExplanation& job) {
  std::string out = job.state;
  if (job.exit_code) out += fmt::format(" exit {}", *job.exit_code);
  if (job.signal) out += fmt::format(" signal {}", *job.signal);
  if (job.reason) out += fmt::format(" ({})", *job.reason);
  if (job.expected_start) out += fmt::format(", expected start {}", *job.expected_start);
  if (job.stdout_path) out += fmt::format(", log {}", *job.stdout_path);
  return out;
}

std::optional<JobExplanation> parse_scontrol_job(std::string_view line) {
  auto f = scontrol_fields(line);
  auto state = f.find("JobState");
  if (state == f.end() || state->second.empty()) return std::nullopt;
  JobExplanation job;
  job.source = "scontrol";
  job.state = state->second;
  if (auto u = f.find("UserId"); u != f.end()) job.owner = u->second.substr(0, u->second.find('('));
  auto get = [&](std::string_view key) {
    auto it = f.find(key);
    return it == f.end() ? std::string_view() : std::string_view(it->second);
  };
  fill_common(job, get("ExitCode"), get("Reason"), get("StartTime"));
  job.stdout_path = slurm_value(get("StdOut"));
  return job;
}

std::optional<JobExplanation> parse_sacct_job(std::string_view output, std::string_view job_number) {
  for (auto line : split_lines(output)) {
    std::vector<std::string_view> cols;
    for (std::size_t pos = 0;;) {
      auto bar = line.find('|', pos);
      cols.push_back(line.substr(pos, bar == std::string_view::npos ? std::string_view::npos : bar - pos));
      if (bar == std::string_view::npos) break;
      pos = bar + 1;
    }
    // JobID|User|State|ExitCode|Reason|Start
    if (cols.size() < 6 || cols[0] != job_number || cols[2].empty()) continue;
    JobExplanation job;
    job.source = "sacct";
    job.owner = std::string(cols[1]);
    job.state = std::string(cols[2]);
    fill_common(job, cols[3], cols[4], cols[5]);
    return job;
  }
  return std::nullopt;
}

Result<JobExplanation> explain_from_output(std::string_view job_id, std::string_view user, int exit_status,
                                           std::string_view out, std::string& audit) {
  const std::string_view number = job_id.substr(0, job_id.find(';'));
  // Split the output into the sections each tool printed after its marker.
  std::vector<std::string_view> scontrol, sacct, *into = nullptr;
  bool asked_sacct = false;  // the command runs sacct only when scontrol failed
  for (auto line : split_lines(out)) {
    if (line == kExplainScontrolMarker) {
      into = &scontrol;
    } else if (line == kExplainSacctMarker) {
      into = &sacct;
      asked_sacct = true;
    } else if (into) {
      into->push_back(line);
    }
  }
  std::optional<JobExplanation> job;
  if (!asked_sacct && exit_status == 0) {
    for (auto line : scontrol) {
      if ((job = parse_scontrol_job(line))) break;
    }
  }
  if (!job && asked_sacct && exit_status == 0) {
    std::string joined;
    for (auto line : sacct) joined.append(line).append("\n");
    job = parse_sacct_job(joined, number);
  }
  // The same words whether Slurm does not know the job or it is someone
  // else's: an answer must not reveal that another user's job exists.
  const Error unknown{Errc::not_found,
                      fmt::format("Slurm knows no job {} of user {}: scontrol does not list it (slurmctld forgets a "
                                  "job MinJobAge seconds after it ends) and sacct has no record of it (or accounting "
                                  "is not enabled on the login host)",
                                  printable(job_id), printable(user))};
  if (job) {
    if (job->owner != user) {
      audit = fmt::format("explain refused: job {} belongs to {}, not to the requesting user {}; answered as unknown",
                          printable(job_id), printable(job->owner.empty() ? "(no user)" : job->owner), printable(user));
      return unknown;
    }
    return *std::move(job);
  }
  const std::string scontrol_said = first_nonempty(scontrol);
  const std::string sacct_said = asked_sacct ? first_nonempty(sacct) : "(not asked)";
  const bool scontrol_unknown = scontrol_said.find("Invalid job id specified") != std::string::npos;
  audit = fmt::format("explain: job {} of user {} not found: scontrol: {}; sacct: {}", printable(job_id),
                      printable(user), scontrol_said, sacct_said);
  // scontrol answered "no such job" (and sacct, if it could, had none):
  // nothing is known. Any other scontrol failure (slurmctld unreachable,
  // scontrol missing) means Slurm could not be asked.
  if (scontrol_unknown) return unknown;
  return Error{Errc::remote_failed,
               fmt::format("could not ask Slurm about job {} for user {}: scontrol: {}; sacct: {}; check that "
                           "remote.scontrol and remote.sacct run for the service account on the login host",
                           printable(job_id), printable(user), scontrol_said, sacct_said)};
}

}  // namespace ssb::core
