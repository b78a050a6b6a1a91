#include <catch2/catch.hpp>

#include "ssb/core/response.hpp"

using namespace ssb;
using namespace ssb::core;

TEST_CASE("parse_submit_output follows batchspawner's rule") {
  CHECK(parse_submit_output("42\n") == std::optional<std::string>("42"));
  CHECK(parse_submit_output("warning: x\n43;cluster\n\n") == std::optional<std::string>("43;cluster"));
  CHECK_FALSE(parse_submit_output("").has_value());
  CHECK_FALSE(parse_submit_output("Submitted batch job 42\n").has_value());
}

TEST_CASE("parse_query_output") {
  auto r = parse_query_output("RUNNING node1\n");
  REQUIRE(r);
  CHECK(r->state == "RUNNING");
  CHECK(r->host == std::optional<std::string>("node1"));
  auto p = parse_query_output("PENDING n/a\n");
  REQUIRE(p);
  CHECK(p->state == "PENDING");
  CHECK_FALSE(p->host.has_value());
  CHECK_FALSE(parse_query_output("").has_value());
  CHECK_FALSE(parse_query_output("slurm_load_jobs error: x").has_value());
}

TEST_CASE("from_remote: success and failure shapes") {
  Request q{Op::query, "alice", "42", "", {}};
  auto ok = from_remote(q, RemoteOutcome{0, "RUNNING node1\n", ""});
  CHECK(ok.ok());
  CHECK(ok.state == std::optional<std::string>("RUNNING"));
  CHECK(ok.host == std::optional<std::string>("node1"));

  auto gone = from_remote(q, RemoteOutcome{1, "", "slurm_load_jobs error: Invalid job id specified\n"});
  REQUIRE_FALSE(gone.ok());
  CHECK(gone.error->code == Errc::remote_failed);
  CHECK(gone.error->message ==
        "query for user alice exited with status 1: slurm_load_jobs error: Invalid job id specified");
  CHECK(gone.remote->exit_status == 1);

  Request s{Op::submit, "alice", "", "x", {}};
  auto sub = from_remote(s, RemoteOutcome{0, "77\n", ""});
  CHECK(sub.ok());
  CHECK(sub.job_id == "77");
  auto nojob = from_remote(s, RemoteOutcome{0, "hello\n", ""});
  CHECK_FALSE(nojob.ok());
}

TEST_CASE("from_remote: sudo's own refusal is a bridge error, not wrapper output") {
  Request q{Op::query, "mallory", "42", "", {}};
  auto r = from_remote(q, RemoteOutcome{1, "", "sudo: a password is required\n"});
  REQUIRE(r.error);
  CHECK(r.error->code == Errc::auth);
  CHECK_FALSE(r.remote.has_value());
  CHECK(r.error->message ==
        "sudo on the login host refused to run the query wrapper as mallory: sudo: a password is required; check the "
        "sudoers rules for the service account and that the user is in the allowed group");
  // A wrapper's own failure still passes through.
  auto w = from_remote(q, RemoteOutcome{2, "", "slurmspawner_squeue: SLURMSPAWNER_JOB_ID is not set\n"});
  CHECK(w.remote.has_value());
  CHECK(w.error->code == Errc::remote_failed);
}

TEST_CASE("from_remote: sudo's 'Sorry, user ... is not allowed' is a refusal too") {
  Request q{Op::query, "jupyterspawner", "42", "", {}};
  auto r =
      from_remote(q, RemoteOutcome{1, "",
                                   "Sorry, user jupyterspawner is not allowed to execute '/w/slurmspawner_squeue' as "
                                   "jupyterspawner on login1.\n"});
  REQUIRE(r.error);
  CHECK(r.error->code == Errc::auth);
  CHECK_FALSE(r.remote.has_value());
}

TEST_CASE("from_remote: the bridge's notice lines are collected, the rest of stderr is not") {
  Request r{Op::submit, "alice.proj1", "", "S", {}};
  auto resp = from_remote(r, {0, "17\n",
                              "warning from sbatch\nslurm-ssh-bridge: notice: the hub set HOME=/x for alice.proj1; the "
                              "login host's passwd entry says /home/alice.proj1, which the job uses\n"});
  REQUIRE(resp.ok());
  CHECK(resp.job_id == "17");
  REQUIRE(resp.notices.size() == 1);
  CHECK(resp.notices[0].rfind("the hub set HOME=/x for alice.proj1", 0) == 0);
  CHECK(resp.remote->err.find("warning from sbatch") != std::string::npos);
}
