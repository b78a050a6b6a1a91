#include <catch2/catch.hpp>

#include "ssb/daemon/status_coalescer.hpp"

using namespace ssb;
using namespace ssb::daemon;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<Job> query(const std::string& user, const std::string& id) {
  auto job = std::make_shared<Job>();
  job->request.op = core::Op::query;
  job->request.user = user;
  job->request.job_id = id;
  job->log_id = user + "/" + id;
  return job;
}

const Clock::time_point t0 = Clock::now();

StatusCoalescer::Decision decision_for(const std::vector<StatusCoalescer::Decision>& ds,
                                       const std::shared_ptr<Job>& job) {
  for (const auto& d : ds) {
    if (d.job == job) return d;
  }
  FAIL("no decision for " << job->log_id);
  return {};
}

}  // namespace

TEST_CASE("status coalescer: accepts only queries for plain job numbers, only when enabled") {
  StatusCoalescer on(true, 200ms, 500);
  StatusCoalescer off(false, 200ms, 500);
  CHECK(on.accepts(query("alice", "12")->request));
  CHECK_FALSE(off.accepts(query("alice", "12")->request));
  CHECK_FALSE(on.accepts(query("alice", "12;cluster2")->request));  // the wrapper handles clusters
  CHECK_FALSE(on.accepts(query("alice", "2147483648")->request));   // squeue refuses it, failing the whole batch
  auto cancel = query("alice", "12");
  cancel->request.op = core::Op::cancel;
  CHECK_FALSE(on.accepts(cancel->request));
  auto submit = query("alice", "");
  submit->request.op = core::Op::submit;
  CHECK_FALSE(on.accepts(submit->request));
  CHECK(off.status()["mode"] == "per_user");
  CHECK(off.status()["mode_configured"] == "per_user");
  CHECK(on.status()["mode"] == "coalesced");
}

TEST_CASE("status coalescer: fresh: requests arriving while a round runs wait for the next one") {
  StatusCoalescer c(true, 200ms, 500);
  CHECK_FALSE(c.next_round());  // nothing waits
  auto a = query("alice", "1");
  c.add(a, t0);
  REQUIRE(c.next_round());
  CHECK(*c.next_round() <= t0);  // the first round may start at once
  auto round1 = c.start_round(t0);
  REQUIRE(round1.size() == 1);
  CHECK(round1[0].job_ids == std::vector<std::string>{"1"});

  // b arrives while round 1's squeue runs: it must not get round 1's answer.
  auto b = query("bob", "1");
  c.add(b, t0 + 10ms);
  CHECK_FALSE(c.next_round());               // a round is in flight
  CHECK(c.start_round(t0 + 500ms).empty());  // not even when the window has passed
  auto ds = c.finish_batch(round1[0].id, core::RemoteOutcome{0, "1|alice|RUNNING|node1|None|N/A\n", ""});
  REQUIRE(ds.size() == 1);
  CHECK(ds[0].job == a);
  CHECK(c.held() == 1);  // b still waits

  // The next round starts no sooner than the window after the last start.
  REQUIRE(c.next_round());
  CHECK(*c.next_round() == t0 + 200ms);
  CHECK(c.start_round(t0 + 199ms).empty());
  auto round2 = c.start_round(t0 + 200ms);
  REQUIRE(round2.size() == 1);
  CHECK(round2[0].job_ids == std::vector<std::string>{"1"});
  auto ds2 = c.finish_batch(round2[0].id, core::RemoteOutcome{0, "1|alice|COMPLETING|node1|None|N/A\n", ""});
  REQUIRE(ds2.size() == 1);
  CHECK(ds2[0].job == b);
  CHECK(c.held() == 0);
  CHECK(c.status()["batches"] == 2);
}

TEST_CASE("status coalescer: one squeue per distinct id set, split at max_ids") {
  StatusCoalescer c(true, 200ms, 3);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 1; i <= 7; ++i) jobs.push_back(query("u" + std::to_string(i), std::to_string(100 + i)));
  jobs.push_back(query("u1", "101"));  // a second poll of the same job: no second id on the line
  for (auto& j : jobs) c.add(j, t0);
  auto round = c.start_round(t0);
  REQUIRE(round.size() == 3);  // 7 distinct ids, at most 3 per squeue
  CHECK(round[0].job_ids == std::vector<std::string>{"101", "102", "103"});
  CHECK(round[1].job_ids == std::vector<std::string>{"104", "105", "106"});
  CHECK(round[2].job_ids == std::vector<std::string>{"107"});
  CHECK(c.status()["ids_queried"] == 7);
  CHECK(c.held() == 8);

  // The round ends with its last batch, whatever the order.
  auto last = c.finish_batch(round[2].id, core::RemoteOutcome{0, "107|u7|RUNNING|n7|None|N/A\n", ""});
  CHECK(last.size() == 1);
  CHECK_FALSE(c.next_round());  // nothing waits
  auto first = c.finish_batch(round[0].id, core::RemoteOutcome{0, "101|u1|RUNNING|n1|None|N/A\n", ""});
  CHECK(first.size() == 4);  // 101 twice, 102, 103
  CHECK(decision_for(first, jobs[7]).response.remote->out == "RUNNING n1\n");
  c.finish_batch(round[1].id, core::RemoteOutcome{0, "", ""});
  CHECK(c.held() == 0);
  CHECK(c.finish_batch(round[1].id, core::RemoteOutcome{0, "", ""}).empty());  // each batch once
}

TEST_CASE("status coalescer: a job is reported only to its owner; others get the missing-job answer") {
  StatusCoalescer c(true, 200ms, 500);
  auto mine = query("alice.proj1", "7");
  auto theirs = query("bob.proj1", "7");
  c.add(mine, t0);
  c.add(theirs, t0);
  auto round = c.start_round(t0);
  REQUIRE(round.size() == 1);
  CHECK(round[0].job_ids == std::vector<std::string>{"7"});
  auto ds = c.finish_batch(round[0].id,
                           core::RemoteOutcome{0, "7|alice.proj1|PENDING|n/a|Resources|2026-12-02T10:32:00\n", ""});
  auto m = decision_for(ds, mine);
  CHECK(m.kind == StatusCoalescer::Decision::Kind::answer);
  CHECK(m.response.ok());
  CHECK(m.response.state == std::optional<std::string>("PENDING"));
  CHECK(m.response.remote->out == "PENDING n/a\n");
  REQUIRE(m.response.slurm);
  CHECK(m.response.slurm->reason == std::optional<std::string>("Resources"));
  CHECK(m.response.slurm->expected_start == std::optional<std::string>("2026-12-02T10:32:00"));

  auto t = decision_for(ds, theirs);
  CHECK(t.kind == StatusCoalescer::Decision::Kind::answer);
  CHECK(t.refused);
  CHECK(t.owner == "alice.proj1");
  CHECK_FALSE(t.response.state);
  CHECK_FALSE(t.response.slurm);
  REQUIRE(t.response.remote);
  CHECK(t.response.remote->exit_status == 1);
  CHECK(t.response.remote->out.empty());
  CHECK(t.response.remote->err == "slurm_load_jobs error: Invalid job id specified\n");
  CHECK(t.response.remote->err.find("alice") == std::string::npos);
  CHECK(c.status()["refused"] == 1);
}

TEST_CASE("status coalescer: an id the batch did not list is confirmed, never answered gone") {
  StatusCoalescer c(true, 200ms, 500);
  auto listed = query("alice", "1");
  auto missing = query("alice", "2");
  c.add(listed, t0);
  c.add(missing, t0);
  auto round = c.start_round(t0);
  auto ds = c.finish_batch(round[0].id, core::RemoteOutcome{0, "1|alice|RUNNING|node1|None|N/A\n", ""});
  CHECK(decision_for(ds, listed).kind == StatusCoalescer::Decision::Kind::answer);
  CHECK(decision_for(ds, missing).kind == StatusCoalescer::Decision::Kind::confirm);
  CHECK(c.status()["confirmations"] == 1);

  // The lone unknown id (squeue exits 1 for it) is confirmed too.
  auto lone = query("alice", "3");
  c.add(lone, t0 + 200ms);
  auto r2 = c.start_round(t0 + 200ms);
  auto ds2 = c.finish_batch(r2[0].id, core::RemoteOutcome{1, "", "slurm_load_jobs error: Invalid job id specified\n"});
  CHECK(decision_for(ds2, lone).kind == StatusCoalescer::Decision::Kind::confirm);

  // The wrapper says gone too: nothing changes.
  core::Response gone;
  gone.op = core::Op::query;
  gone.remote = core::RemoteOutcome{0, "", ""};
  CHECK_FALSE(c.confirmed(missing->request, gone));
  CHECK(c.coalescing());
}

TEST_CASE("status coalescer: a confirmation that finds a job switches to per_user, once") {
  StatusCoalescer c(true, 200ms, 500);
  auto missing = query("alice", "2");
  core::Response found;
  found.op = core::Op::query;
  found.state = "RUNNING";
  found.remote = core::RemoteOutcome{0, "RUNNING node1\n", ""};
  CHECK(c.confirmed(missing->request, found));        // the first: the caller warns
  CHECK_FALSE(c.confirmed(missing->request, found));  // never twice
  CHECK_FALSE(c.coalescing());
  CHECK_FALSE(c.accepts(query("bob", "5")->request));  // every later query is per-user
  auto st = c.status();
  CHECK(st["mode_configured"] == "coalesced");
  CHECK(st["mode"] == "per_user");
  CHECK(st["why"].get<std::string>().find("job 2 of alice") != std::string::npos);
  CHECK(st["why"].get<std::string>().find("PrivateData=jobs") != std::string::npos);

  // A failed confirmation (transport) is not evidence.
  StatusCoalescer d(true, 200ms, 500);
  auto failed = core::from_error(missing->request, Error{Errc::transport, "lost"});
  CHECK_FALSE(d.confirmed(missing->request, failed));
  CHECK(d.coalescing());
}

TEST_CASE("status coalescer: a failed batch is unknown for everyone in it, never gone") {
  StatusCoalescer c(true, 200ms, 500);
  auto a = query("alice", "1");
  auto b = query("bob", "2");
  c.add(a, t0);
  c.add(b, t0);
  auto round = c.start_round(t0);
  const std::string down = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n";
  auto ds = c.finish_batch(round[0].id, core::RemoteOutcome{1, "", down});
  REQUIRE(ds.size() == 2);
  for (const auto& d : ds) {
    CHECK(d.kind == StatusCoalescer::Decision::Kind::answer);
    CHECK_FALSE(d.response.ok());
    CHECK(d.response.error->code == Errc::remote_failed);
    CHECK(d.response.remote->exit_status == 1);
    CHECK(d.response.remote->err == down);  // what the wrapper passes through
    CHECK_FALSE(d.response.state);
  }

  // A failure squeue gives for no id in particular: each asks its wrapper.
  c.add(a, t0 + 200ms);
  c.add(b, t0 + 200ms);
  auto r1 = c.start_round(t0 + 200ms);
  auto odd = c.finish_batch(r1[0].id, core::RemoteOutcome{127, "", "sh: squeue: not found\n"});
  REQUIRE(odd.size() == 2);
  for (const auto& d : odd) CHECK(d.kind == StatusCoalescer::Decision::Kind::confirm);

  c.add(a, t0 + 400ms);
  auto r2 = c.start_round(t0 + 400ms);
  auto ds2 = c.finish_batch(r2[0].id, Result<core::RemoteOutcome>(Error{Errc::timeout, "no answer in 30 s"}));
  REQUIRE(ds2.size() == 1);
  CHECK(ds2[0].response.error->code == Errc::timeout);
  CHECK_FALSE(ds2[0].response.remote);
}

TEST_CASE("status coalescer: shutdown hands back every waiting request") {
  StatusCoalescer c(true, 200ms, 500);
  c.add(query("alice", "1"), t0);
  auto round = c.start_round(t0);
  c.add(query("bob", "2"), t0 + 1ms);
  auto waiting = c.take_waiting();
  REQUIRE(waiting.size() == 1);
  CHECK(waiting[0]->request.user == "bob");
  CHECK(c.held() == 1);  // the batch in flight still holds alice's
}
