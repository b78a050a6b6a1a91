#include "ssb/core/job_listing.hpp"

#include <catch2/catch.hpp>

using namespace ssb;
using namespace ssb::core;

namespace {
const std::string kTok = "0123456789abcdef0123456789abcdef";
}

TEST_CASE("job listing: only this tag's jobs with a well-formed token") {
  std::string out =
      "privatedata=(null)\nadminlevel=\n--- ssb squeue\n"
      "12 alice.proj1 RUNNING ssb:jupyterhub:" +
      kTok +
      "\n"
      "13 bob.proj1 PENDING ssb:otherhub:" +
      kTok +
      "\n"
      "14 bob.proj1 PENDING ssb:jupyterhub:short\n"
      "15 carol.p COMPLETED (null)\n"
      "16 carol.p PENDING my own comment\n";
  auto l = parse_job_listing(0, out, "", "jupyterspawner", "jupyterhub");
  REQUIRE(l.ok());
  CHECK(l->visible);
  REQUIRE(l->jobs.size() == 1);
  CHECK(l->jobs[0].job_id == "12");
  CHECK(l->jobs[0].user == "alice.proj1");
  CHECK(l->jobs[0].state == "RUNNING");
  CHECK(l->jobs[0].token == kTok);
  CHECK(l->find(kTok) == &l->jobs[0]);
  CHECK(l->find(std::string(32, 'f')) == nullptr);
}

TEST_CASE("job listing: PrivateData=jobs without an operator role lists nothing and says why") {
  std::string out =
      "privatedata=jobs\nadminlevel=None\n--- ssb squeue\n12 jupyterspawner RUNNING ssb:jupyterhub:" + kTok + "\n";
  auto l = parse_job_listing(0, out, "", "jupyterspawner", "jupyterhub");
  REQUIRE(l.ok());
  CHECK_FALSE(l->visible);
  CHECK(l->jobs.empty());
  CHECK(l->why.find("PrivateData = jobs hides other users' jobs from jupyterspawner") != std::string::npos);
  auto op = parse_job_listing(0, "privatedata=jobs\nadminlevel=Operator\n--- ssb squeue\n", "", "x", "jupyterhub");
  REQUIRE(op.ok());
  CHECK(op->visible);
}

TEST_CASE("job listing: the controller not answering is a failure, never an empty list") {
  auto l = parse_job_listing(1, "privatedata=\nadminlevel=\n--- ssb squeue\n",
                             "slurm_load_jobs error: Unable to contact slurm controller\n", "jupyterspawner", "hub");
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().code == Errc::remote_failed);
  CHECK(l.error().message.find("Unable to contact slurm controller") != std::string::npos);
  auto no_marker = parse_job_listing(0, "privatedata=\n", "", "jupyterspawner", "hub");
  CHECK_FALSE(no_marker.ok());
}
