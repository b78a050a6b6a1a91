#include <catch2/catch.hpp>

#include "ssb/core/squeue_batch.hpp"

using namespace ssb::core;

TEST_CASE("squeue batch: a running and a pending line, as the wrapper's '%T %B' would print them") {
  RemoteOutcome o{0,
                  "8|alice.proj1|PENDING|n/a|Resources|2026-12-02T10:32:00\n"
                  "6|bob.proj1|RUNNING|node1|None|2026-12-02T03:13:30\n",
                  ""};
  auto listed = parse_squeue_batch(o);
  REQUIRE(listed);
  REQUIRE(listed->size() == 2);
  const auto& p = listed->at("8");
  CHECK(p.owner == "alice.proj1");
  CHECK(p.wrapper_stdout == "PENDING n/a\n");
  CHECK(p.details.state == "PENDING");
  CHECK_FALSE(p.details.node);
  CHECK(p.details.reason == std::optional<std::string>("Resources"));
  CHECK(p.details.expected_start == std::optional<std::string>("2026-12-02T10:32:00"));
  const auto& r = listed->at("6");
  CHECK(r.owner == "bob.proj1");
  CHECK(r.wrapper_stdout == "RUNNING node1\n");
  CHECK(r.details.node == std::optional<std::string>("node1"));
  CHECK_FALSE(r.details.reason);
}

TEST_CASE("squeue batch: Slurm's words for no value become null") {
  for (const char* start : {"N/A", "Unknown", "None"}) {
    auto line = parse_squeue_line(std::string("9|u|PENDING|n/a|None|") + start);
    REQUIRE(line);
    CHECK_FALSE(line->details.expected_start);
    CHECK_FALSE(line->details.reason);
  }
}

TEST_CASE("squeue batch: lines that are not ours are ignored, never guessed at") {
  CHECK_FALSE(parse_squeue_line(""));
  CHECK_FALSE(parse_squeue_line("RUNNING node1"));
  CHECK_FALSE(parse_squeue_line("12|u|RUNNING|node1|None"));            // 5 fields
  CHECK_FALSE(parse_squeue_line("12|u|RUNNING|node1|None|N/A|extra"));  // 7 fields
  CHECK_FALSE(parse_squeue_line("12_3|u|RUNNING|node1|None|N/A"));      // an array task
  CHECK_FALSE(parse_squeue_line("|u|RUNNING|node1|None|N/A"));
  CHECK_FALSE(parse_squeue_line("12||RUNNING|node1|None|N/A"));
  auto listed = parse_squeue_batch(RemoteOutcome{0, "garbage\n12|u|RUNNING|node1|None|N/A\r\n\n", ""});
  REQUIRE(listed);
  CHECK(listed->size() == 1);
  CHECK(listed->at("12").wrapper_stdout == "RUNNING node1\n");
}

TEST_CASE("squeue batch: no id known, and a lone unknown id, list nothing") {
  // Several ids, none known: exit 0, no output (measured on Slurm 22.05).
  auto none = parse_squeue_batch(RemoteOutcome{0, "", ""});
  REQUIRE(none);
  CHECK(none->empty());
  // A single unknown id: exit 1 and this one line.
  auto lone = parse_squeue_batch(RemoteOutcome{1, "", "slurm_load_jobs error: Invalid job id specified\n"});
  REQUIRE(lone);
  CHECK(lone->empty());
}

TEST_CASE("squeue batch: any other failure is a failure, never 'nothing listed'") {
  CHECK_FALSE(parse_squeue_batch(
      RemoteOutcome{1, "", "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"}));
  CHECK_FALSE(parse_squeue_batch(RemoteOutcome{1, "",
                                               "squeue: error: Munge encode failed: Failed to access "
                                               "\"/run/munge.socket\"\nslurm_load_jobs error: Protocol "
                                               "authentication error\n"}));
  // The unknown-id line plus anything else is not the lone-unknown case.
  CHECK_FALSE(
      parse_squeue_batch(RemoteOutcome{1, "", "squeue: error: x\nslurm_load_jobs error: Invalid job id specified\n"}));
  CHECK_FALSE(parse_squeue_batch(RemoteOutcome{127, "", "bash: squeue: command not found\n"}));
}

TEST_CASE("squeue batch: a missing job's answer is the wrapper's for an unknown id") {
  auto o = missing_job_outcome();
  CHECK(o.exit_status == 1);
  CHECK(o.out.empty());
  CHECK(o.err == "slurm_load_jobs error: Invalid job id specified\n");
}
