#include <catch2/catch.hpp>

#include <string>

#include "ssb/core/explain.hpp"
#include "ssb/core/response.hpp"

using namespace ssb;
using namespace ssb::core;

namespace {

// Real `scontrol -o show job` lines from Slurm 22.05 (the sandbox), cut
// after StdOut.
const std::string kFailed =
    "JobId=42 JobName=spawner-jupyterhub UserId=alice.proj1(1002) GroupId=alice.proj1(1003) MCS_label=N/A "
    "Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode "
    "Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=1:0 RunTime=00:00:00 "
    "StartTime=2026-12-02T03:13:32 EndTime=2026-12-02T03:13:32 WorkDir=/home/alice.proj1 "
    "StdErr=/home/alice.proj1/jupyterhub_slurmspawner_42.log StdIn=/dev/null "
    "StdOut=/home/alice.proj1/jupyterhub_slurmspawner_42.log Power= ";
const std::string kPending =
    "JobId=43 JobName=sbatch UserId=alice.proj1(1002) GroupId=alice.proj1(1003) JobState=PENDING "
    "Reason=Resources Dependency=(null) ExitCode=0:0 RunTime=00:00:00 SubmitTime=2026-12-02T03:13:32 "
    "StartTime=2026-12-02T10:32:00 EndTime=Unknown StdOut=/tmp/my logs/43.out Power= ";

std::string scontrol_answer(const std::string& line) {
  return std::string(kExplainScontrolMarker) + "\n" + line + "\n";
}

std::string sacct_answer(const std::string& scontrol_said, const std::string& sacct_said) {
  return std::string(kExplainScontrolMarker) + "\n" + scontrol_said + "\n" + std::string(kExplainSacctMarker) + "\n" +
         sacct_said;
}

}  // namespace

TEST_CASE("explain: Slurm's ExitCode") {
  std::optional<int> code, sig;
  CHECK(parse_exit_code("1:0", code, sig));
  CHECK(code == 1);
  CHECK_FALSE(sig);
  CHECK(parse_exit_code("0:9", code, sig));
  CHECK_FALSE(code);
  CHECK(sig == 9);
  CHECK(parse_exit_code("0:0", code, sig));
  CHECK(code == 0);
  CHECK_FALSE(parse_exit_code("", code, sig));
  CHECK_FALSE(parse_exit_code("1", code, sig));
  CHECK_FALSE(parse_exit_code("a:0", code, sig));
  CHECK_FALSE(parse_exit_code("1:0x", code, sig));
  CHECK_FALSE(parse_exit_code("-1:0", code, sig));
}

TEST_CASE("explain: a failed job from scontrol") {
  auto job = parse_scontrol_job(kFailed);
  REQUIRE(job);
  CHECK(job->state == "FAILED");
  CHECK(job->owner == "alice.proj1");
  CHECK(job->exit_code == 1);
  CHECK_FALSE(job->signal);
  CHECK(job->reason == std::optional<std::string>("NonZeroExitCode"));
  CHECK(job->stdout_path == std::optional<std::string>("/home/alice.proj1/jupyterhub_slurmspawner_42.log"));
  CHECK_FALSE(job->expected_start);  // only for pending jobs
  CHECK(job->source == "scontrol");
  CHECK(describe(*job) == "FAILED exit 1 (NonZeroExitCode), log /home/alice.proj1/jupyterhub_slurmspawner_42.log");
}

TEST_CASE("explain: a pending job carries reason and expected start, not an exit code") {
  auto job = parse_scontrol_job(kPending);
  REQUIRE(job);
  CHECK(job->state == "PENDING");
  CHECK(job->reason == std::optional<std::string>("Resources"));
  CHECK(job->expected_start == std::optional<std::string>("2026-12-02T10:32:00"));
  CHECK_FALSE(job->exit_code);
  CHECK(job->stdout_path == std::optional<std::string>("/tmp/my logs/43.out"));  // a space in a value survives
  CHECK(describe(*job) == "PENDING (Resources), expected start 2026-12-02T10:32:00, log /tmp/my logs/43.out");
  auto unplanned = parse_scontrol_job("JobId=1 UserId=a(1) JobState=PENDING Reason=None StartTime=Unknown");
  REQUIRE(unplanned);
  CHECK_FALSE(unplanned->reason);
  CHECK_FALSE(unplanned->expected_start);
  CHECK(describe(*unplanned) == "PENDING");
}

TEST_CASE("explain: a line without JobState is no job") {
  CHECK_FALSE(parse_scontrol_job("slurm_load_jobs error: Invalid job id specified"));
  CHECK_FALSE(parse_scontrol_job(""));
  CHECK_FALSE(parse_scontrol_job("JobId=1 JobState= Reason=x"));
}

TEST_CASE("explain: sacct's parsable line") {
  auto job = parse_sacct_job("41|bob.proj1|OUT_OF_MEMORY|0:125|None|2026-12-02T03:00:00\n", "41");
  REQUIRE(job);
  CHECK(job->owner == "bob.proj1");
  CHECK(job->state == "OUT_OF_MEMORY");
  CHECK(job->signal == 125);
  CHECK_FALSE(job->reason);
  CHECK_FALSE(job->stdout_path);  // 22.05's sacct has no StdOut field
  CHECK(job->source == "sacct");
  auto cancelled = parse_sacct_job("7|a|CANCELLED by 1002|0:15|None|Unknown", "7");
  REQUIRE(cancelled);
  CHECK(cancelled->state == "CANCELLED");
  CHECK(cancelled->signal == 15);
  CHECK_FALSE(parse_sacct_job("41|bob|FAILED|1:0|None|x\n", "4"));  // another job's line
  CHECK_FALSE(parse_sacct_job("", "4"));
  CHECK_FALSE(parse_sacct_job("4|bob|FAILED", "4"));  // too few columns
}

TEST_CASE("explain_from_output: scontrol first, then sacct") {
  std::string audit;
  auto s = explain_from_output("42", "alice.proj1", 0, scontrol_answer(kFailed), audit);
  REQUIRE(s.ok());
  CHECK(s->source == "scontrol");
  CHECK(audit.empty());
  auto a = explain_from_output(
      "42", "alice.proj1", 0,
      sacct_answer("slurm_load_jobs error: Invalid job id specified", "42|alice.proj1|FAILED|3:0|None|x\n"), audit);
  REQUIRE(a.ok());
  CHECK(a->source == "sacct");
  CHECK(a->exit_code == 3);
  CHECK(describe(*a) == "FAILED exit 3");
}

TEST_CASE("explain_from_output: another user's job is answered exactly like an unknown one") {
  std::string audit_foreign, audit_unknown;
  auto foreign = explain_from_output("42", "bob.proj1", 0, scontrol_answer(kFailed), audit_foreign);
  auto unknown = explain_from_output(
      "42", "bob.proj1", 1,
      sacct_answer("slurm_load_jobs error: Invalid job id specified", "Slurm accounting storage is disabled\n"),
      audit_unknown);
  REQUIRE_FALSE(foreign.ok());
  REQUIRE_FALSE(unknown.ok());
  CHECK(foreign.error().code == Errc::not_found);
  CHECK(unknown.error().code == Errc::not_found);
  CHECK(foreign.error().message == unknown.error().message);
  CHECK(foreign.error().message.find("alice") == std::string::npos);
  // Only the audit line (daemon log, CLI stderr) says whose it was.
  CHECK(audit_foreign.find("belongs to alice.proj1") != std::string::npos);
  CHECK(audit_foreign.find("bob.proj1") != std::string::npos);
  CHECK(audit_unknown.find("Slurm accounting storage is disabled") != std::string::npos);
  // sacct's answer is checked the same way.
  auto via_sacct = explain_from_output(
      "42", "bob.proj1", 0,
      sacct_answer("slurm_load_jobs error: Invalid job id specified", "42|alice.proj1|FAILED|3:0|None|x\n"),
      audit_foreign);
  REQUIRE_FALSE(via_sacct.ok());
  CHECK(via_sacct.error().message == unknown.error().message);
}

TEST_CASE("explain_from_output: Slurm that cannot be asked is not 'not found'") {
  std::string audit;
  auto down =
      explain_from_output("42", "alice", 1,
                          sacct_answer("slurm_load_jobs error: Unable to contact slurm controller (connect failure)",
                                       "sacct: error: Problem talking to the database: Connection refused\n"),
                          audit);
  REQUIRE_FALSE(down.ok());
  CHECK(down.error().code == Errc::remote_failed);
  CHECK(down.error().message.find("Unable to contact slurm controller") != std::string::npos);
  CHECK(down.error().message.find("Problem talking to the database") != std::string::npos);
  CHECK(down.error().message.find("job 42") != std::string::npos);
}

TEST_CASE("from_remote: explain keeps the job, not the raw output") {
  Request r{Op::explain, "alice.proj1", "42", "", {}};
  auto resp = from_remote(r, RemoteOutcome{0, scontrol_answer(kFailed), ""});
  REQUIRE(resp.ok());
  REQUIRE(resp.job);
  CHECK(resp.job->owner.empty());
  CHECK(resp.state == std::optional<std::string>("FAILED"));
  CHECK_FALSE(resp.remote);
  Request bob{Op::explain, "bob.proj1", "42", "", {}};
  auto refused = from_remote(bob, RemoteOutcome{0, scontrol_answer(kFailed), ""});
  REQUIRE(refused.error);
  CHECK(refused.error->code == Errc::not_found);
  CHECK_FALSE(refused.job);
  CHECK(refused.audit.find("belongs to alice.proj1") != std::string::npos);
}
