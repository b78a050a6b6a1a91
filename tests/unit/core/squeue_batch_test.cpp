#include <catch2/catch.hpp>

#include "ssb/core/squeue_batch.hpp"

using namespace ssb::core;

TEST_CASE("squeue batch: a running and a pending line, as the wrapper's '%T %B' would print them") {
  RemoteOutcome o{0,
                  "8|alice.proj1|PENDING|n/a|Resources|2026-12-02T10:32:00\n"
                  "6|bob.proj1|RUNNING|node1|None|2026-12-02T03:13:30\n",
                  ""};
  auto batch = parse_squeue_batch(o);
  REQUIRE(batch.kind == SqueueBatch::Kind::listed);
  auto* listed = &batch.listed;
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
  auto batch = parse_squeue_batch(RemoteOutcome{0, "garbage\n12|u|RUNNING|node1|None|N/A\r\n\n", ""});
  REQUIRE(batch.kind == SqueueBatch::Kind::listed);
  CHECK(batch.listed.size() == 1);
  CHECK(batch.listed.at("12").wrapper_stdout == "RUNNING node1\n");
}

TEST_CASE("squeue batch: no id known, and a lone unknown id, list nothing") {
  // Several ids, none known: exit 0, no output (measured on Slurm 22.05).
  auto none = parse_squeue_batch(RemoteOutcome{0, "", ""});
  CHECK(none.kind == SqueueBatch::Kind::listed);
  CHECK(none.listed.empty());
  // A single unknown id: exit 1 and this one line.
  auto lone = parse_squeue_batch(RemoteOutcome{1, "", "slurm_load_jobs error: Invalid job id specified\n"});
  CHECK(lone.kind == SqueueBatch::Kind::listed);
  CHECK(lone.listed.empty());
}

TEST_CASE("squeue batch: Slurm's failures are failures for every id, never 'nothing listed'") {
  auto kind = [](int status, const std::string& err) {
    return parse_squeue_batch(RemoteOutcome{status, "", err}).kind;
  };
  CHECK(kind(1, "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n") ==
        SqueueBatch::Kind::failed);
  CHECK(kind(1,
             "squeue: error: Munge encode failed: Failed to access \"/run/munge.socket\"\nslurm_load_jobs error: "
             "Protocol authentication error\n") == SqueueBatch::Kind::failed);
  // The unknown-id line plus anything else is not the lone-unknown case.
  CHECK(kind(1, "squeue: error: x\nslurm_load_jobs error: Invalid job id specified\n") == SqueueBatch::Kind::failed);
  // squeue's own refusal of an id, a missing command: says nothing about
  // any one id (each is asked the wrapper).
  CHECK(kind(1, "squeue: error: Invalid job id: 2147483648\n") == SqueueBatch::Kind::unexpected);
  CHECK(kind(127, "bash: squeue: command not found\n") == SqueueBatch::Kind::unexpected);
}

TEST_CASE("squeue batch: the ids squeue takes (measured: up to 2^31-1)") {
  CHECK(squeue_takes_id("1"));
  CHECK(squeue_takes_id("2147483647"));
  CHECK_FALSE(squeue_takes_id("2147483648"));
  CHECK_FALSE(squeue_takes_id("4294967295"));
  CHECK_FALSE(squeue_takes_id("99999999999"));
  CHECK_FALSE(squeue_takes_id("12;cluster"));
  CHECK_FALSE(squeue_takes_id("012"));
  CHECK_FALSE(squeue_takes_id("0"));
  CHECK_FALSE(squeue_takes_id(""));
}

TEST_CASE("squeue batch: a missing job's answer is the wrapper's for an unknown id") {
  auto o = missing_job_outcome();
  CHECK(o.exit_status == 1);
  CHECK(o.out.empty());
  CHECK(o.err == "slurm_load_jobs error: Invalid job id specified\n");
}
