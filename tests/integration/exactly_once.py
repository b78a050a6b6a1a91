#!/usr/bin/env python3
"""Driver of tests/integration/exactly_once.sh: the exactly-once submit proof.

  round --tag TAG --results FILE [options] -- BRIDGE-COMMAND...
      One round: COUNT concurrent `BRIDGE-COMMAND --user U --json submit`
      clients (launched over --spread seconds), a disruption at a random
      moment (--disrupt CMD at --at-min..--at-max s into the burst; --heal
      CMD --heal-after s later), then every outcome compared with what Slurm
      holds for TAG (`BRIDGE-COMMAND --mode direct --json jobs` and root's
      squeue). Appends one JSON row to FILE; prints the problems; exit 1 on
      any.
  table FILE
      The rows as a Markdown table with totals.
  selftest
      check() on made-up outcomes with an orphan, a duplicate, an id told
      twice and a "did not start" that did: each must be a problem (the
      proof can fail).

Outcome classes (from the client's --json output):
  direct      ok, the job id acknowledged by the daemon / login host
  by_token    ok, "resolved":"by_token" (outcome lost, found by its token)
  not_started remote_failed "... did not start ..." (looked up: no job)
  unknown     submit_unknown (could not be learned)
  failed      any other error (nothing was sent: daemon gone, overloaded, ...)
"""
import argparse
import contextlib
import io
import json
import random
import shlex
import subprocess
import sys
import time

USERS = ("alice.proj1", "bob.proj1")
SCRIPT = ("#!/bin/bash\n#SBATCH --job-name={name}\n#SBATCH --output=/dev/null\n"
          "#SBATCH --time=5\n#SBATCH --hold\ntrue\n")
CLIENT_TIMEOUT_S = 90


class Client:
    def __init__(self, i, argv, script):
        self.i = i
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        # The script is small: the pipe buffer holds it, so this cannot block.
        self.proc.stdin.write(script)
        self.proc.stdin.close()
        self.proc.stdin = None  # communicate() must not touch it again
        self.out = self.err = ""
        self.rc = None
        self.secs = None

    def finish(self, deadline):
        try:
            self.out, self.err = self.proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            self.rc = self.proc.returncode
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.out, self.err = self.proc.communicate()
            self.rc = "hung"
        self.secs = time.monotonic() - self.t0

    def outcome(self):
        """(class, job_id, token, detail)."""
        try:
            d = json.loads(self.out)
        except ValueError:
            return "garbled", None, None, "rc=%s stdout=%r stderr=%r" % (self.rc, self.out[:200], self.err[:200])
        token = d.get("token")
        if d.get("ok") and d.get("job_id"):
            return ("by_token" if d.get("resolved") == "by_token" else "direct"), str(d["job_id"]), token, ""
        err = d.get("error") or {}
        code, msg = err.get("code", "?"), err.get("message", "")
        if code == "remote_failed" and "did not start" in msg:
            return "not_started", None, token, msg
        if code == "submit_unknown":
            return "unknown", None, token, msg
        return "failed", None, token, "%s: %s" % (code, msg)


def slurm_listing(bridge, tag):
    """The bridge's own `jobs --json` for TAG: {token: [job ids]}, visible."""
    p = subprocess.run(bridge + ["--mode", "direct", "--json", "jobs"], capture_output=True, text=True,
                       timeout=60)
    d = json.loads(p.stdout)
    if not d.get("ok"):
        raise RuntimeError("jobs --json failed: %s" % p.stdout.strip())
    if d.get("tag") != tag:
        raise RuntimeError("jobs --json lists tag %r, not %r" % (d.get("tag"), tag))
    jobs = {}
    for j in d["jobs"]:
        jobs.setdefault(j["token"], []).append(str(j["job_id"]))
    return jobs, bool(d.get("visible"))


def root_squeue(tag):
    """Root's squeue, every state: {token: [job ids]} of the jobs tagged TAG."""
    p = subprocess.run(["squeue", "-h", "-a", "-t", "all", "-o", "%i|%k"], capture_output=True, text=True,
                       timeout=60, check=True)
    prefix = "ssb:%s:" % tag
    jobs = {}
    for line in p.stdout.splitlines():
        job_id, _, comment = line.partition("|")
        if comment.startswith(prefix):
            jobs.setdefault(comment[len(prefix):], []).append(job_id.strip())
    return jobs


def run_disruption(cmd, what, log):
    t = time.monotonic()
    p = subprocess.run(cmd, shell=True, capture_output=True, text=True)  # the suite's own command line
    log.append("%s (%s): rc=%d %s" % (what, cmd, p.returncode, (p.stdout + p.stderr).strip()[:200]))
    return t, p.returncode == 0


def do_round(a, bridge):
    rng = random.Random(a.seed)
    name = "ssb-" + a.tag
    clients, events = [], []
    disrupt_at = rng.uniform(a.at_min, a.at_max) if a.disrupt else None
    heal_at = None
    disrupted = healed = not a.disrupt
    t0 = time.monotonic()
    step = a.spread / max(1, a.count - 1)
    # Launch the burst, injecting the disruption (and its heal) on time.
    while len(clients) < a.count or not healed:
        now = time.monotonic() - t0
        if not disrupted and now >= disrupt_at:
            run_disruption(a.disrupt, "disrupt at %.2f s" % now, events)
            disrupted = True
            heal_at = now + a.heal_after if a.heal else None
            healed = heal_at is None
        if not healed and heal_at is not None and now >= heal_at:
            run_disruption(a.heal, "heal at %.2f s" % now, events)
            healed = True
        if len(clients) < a.count and now >= len(clients) * step:
            i = len(clients)
            argv = bridge + ["--user", USERS[i % len(USERS)], "--json", "submit"]
            clients.append(Client(i, argv, SCRIPT.format(name=name)))
            continue
        time.sleep(0.005)
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    for c in clients:
        c.finish(deadline)
    burst_s = time.monotonic() - t0
    time.sleep(a.settle)  # an sbatch still on its way would show now
    listed, visible = slurm_listing(bridge, a.tag)
    rooted = root_squeue(a.tag)
    return check(a, clients, listed, visible, rooted, events, burst_s)


def check(a, clients, listed, visible, rooted, events, burst_s):
    problems = []
    counts = {k: 0 for k in ("direct", "by_token", "not_started", "unknown", "failed", "garbled", "hung")}
    acked = {}          # job id -> client indexes that were told it
    token_of = {}       # token -> (class, job id)
    unknown_tokens = []
    failures = {}       # first words of each "failed" client's error -> count
    for c in clients:
        cls, job_id, token, detail = c.outcome()
        if c.rc == "hung":
            cls = "hung"
        counts[cls] += 1
        if cls in ("garbled", "hung"):
            problems.append("client %d: %s %s" % (c.i, cls, detail))
            continue
        if not token:
            problems.append("client %d: %s without a token in its --json output" % (c.i, cls))
            continue
        if token in token_of:
            problems.append("client %d: token %s reported twice" % (c.i, token))
        token_of[token] = (cls, job_id)
        if job_id:
            acked.setdefault(job_id, []).append(c.i)
        if cls == "unknown":
            unknown_tokens.append(token)
        if cls == "failed":
            key = " ".join(detail.split()[:8])
            failures[key] = failures.get(key, 0) + 1
        if cls == "failed" and a.show_failures:
            problems.append("client %d: unexpected failure %s" % (c.i, detail))
    for job_id, who in acked.items():
        if len(who) > 1:
            problems.append("job %s acknowledged to %d clients %s" % (job_id, len(who), who))
    # The service account's view is the truth when visible; root's always.
    views = [("root's squeue", rooted)] + ([("jobs --json", listed)] if visible else [])
    if visible and listed != rooted:
        problems.append("jobs --json %s differs from root's squeue %s" % (sorted(listed.items()), sorted(rooted.items())))
    slurm_ids = {i for ids in rooted.values() for i in ids}
    for what, view in views:
        for token, ids in view.items():
            if len(ids) > 1:
                problems.append("%s: token %s has %d jobs %s (duplicate submit)" % (what, token, len(ids), ids))
            cls, job_id = token_of.get(token, ("none", None))
            if cls in ("direct", "by_token"):
                if job_id not in ids:
                    problems.append("%s: token %s is job %s but its client was told %s" % (what, token, ids, job_id))
            elif cls == "unknown":
                pass  # accounted for below
            else:
                problems.append("%s: orphan job(s) %s, token %s, whose client was told %s" % (what, ids, token, cls))
        for token, (cls, job_id) in token_of.items():
            if job_id and token not in view:
                problems.append("%s: a client was told job %s but Slurm has no job with its token %s"
                                % (what, job_id, token))
        ids_seen = {i for ids in view.values() for i in ids}
        for job_id in acked:
            if job_id not in ids_seen:
                problems.append("%s: acknowledged job %s is not in Slurm" % (what, job_id))
    unknown_with_job = sum(1 for t in unknown_tokens if t in rooted)
    if a.expect_unknown == "zero" and counts["unknown"]:
        problems.append("%d submit_unknown although the service account can see jobs" % counts["unknown"])
    if a.expect_unknown == "some" and counts["by_token"] + counts["not_started"] > 0:
        problems.append("PrivateData: %d outcomes resolved although jobs are hidden"
                        % (counts["by_token"] + counts["not_started"]))
    if a.disrupt and not any(e.startswith("disrupt") and " rc=0 " in e + " " for e in events):
        problems.append("the disruption did not run: %s" % events)
    row = {"round": a.label, "tag": a.tag, "fault": a.fault, "clients": len(clients), **counts,
           "unknown_with_job": unknown_with_job, "slurm_jobs": len(slurm_ids), "visible": visible,
           "burst_s": round(burst_s, 1), "slowest_s": round(max(c.secs for c in clients), 1),
           "events": events, "failures": failures, "problems": problems}
    with open(a.results, "a") as f:
        f.write(json.dumps(row) + "\n")
    for e in events:
        print("  info: %s" % e)
    for why, n in sorted(failures.items()):
        print("  info: %d failed before sending: %s ..." % (n, why))
    for p in problems:
        print("  PROBLEM: %s" % p)
    if a.cancel and slurm_ids:
        subprocess.run(["scancel"] + sorted(slurm_ids), check=False)
    return 1 if problems else 0


COLUMNS = [("round", "round"), ("fault", "fault"), ("direct", "acknowledged directly"),
           ("by_token", "resolved by token"), ("not_started", "did not start"), ("unknown", "submit_unknown"),
           ("unknown_with_job", "unknown with a job"), ("failed", "failed, not sent"),
           ("slurm_jobs", "Slurm jobs"), ("slowest_s", "slowest client s"), ("problems", "problems")]


def table(path):
    try:
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        print("(no round finished)")
        return 1
    print("| " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|" + " --- |" * len(COLUMNS))
    total = {}
    for r in rows:
        cells = []
        for k, _ in COLUMNS:
            v = len(r[k]) if k == "problems" else r[k]
            if isinstance(v, (int, float)) and k not in ("slowest_s",):
                total[k] = total.get(k, 0) + v
            cells.append(str(v))
        print("| " + " | ".join(cells) + " |")
    print("| **total** | | " + " | ".join(str(total.get(k, "")) for k, _ in COLUMNS[2:-2])
          + " | | " + str(total.get("problems", 0)) + " |")
    return 0


class FakeClient:
    """A finished client with a given --json output (for selftest)."""

    def __init__(self, i, out):
        self.i, self.out, self.err, self.rc, self.secs = i, json.dumps(out), "", 0, 0.1

    outcome = Client.outcome


def selftest():
    ok = lambda t, j, **kw: {"ok": True, "token": t, "job_id": j, **kw}  # noqa: E731
    lost = {"ok": False, "token": "t4", "error": {"code": "remote_failed", "message": "submit did not start: ..."}}
    clients = [FakeClient(0, ok("t0", "10")), FakeClient(1, ok("t1", "11", resolved="by_token")),
               FakeClient(2, ok("t2", "11")), FakeClient(3, lost)]
    # Slurm: t0 twice (duplicate), t1 as 11, t2 absent but 11 told to two
    # clients, t4 has a job (wrong "did not start"), t9 nobody's (orphan).
    slurm = {"t0": ["10", "20"], "t1": ["11"], "t4": ["14"], "t9": ["19"]}
    a = argparse.Namespace(expect_unknown="zero", disrupt="", show_failures=False, cancel=False, label="selftest",
                           tag="selftest", fault="none", results="/dev/null")
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = check(a, clients, slurm, True, slurm, [], 0.0)
    text = buf.getvalue()
    wanted = ["duplicate submit", "acknowledged to 2 clients", "orphan job(s) ['14']", "orphan job(s) ['19']",
              "told job 11 but Slurm has no job with its token t2"]
    missing = [w for w in wanted if w not in text]
    print(text, end="")
    if rc != 1 or missing:
        print("selftest: check() missed %s (rc %s)" % (missing, rc))
        return 1
    print("selftest: every planted fault was caught")
    return 0


def main(argv):
    if argv and argv[0] == "table":
        return table(argv[1])
    if argv and argv[0] == "selftest":
        return selftest()
    ap = argparse.ArgumentParser(prog="exactly_once.py round")
    ap.add_argument("cmd", choices=["round"])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--fault", default="none")
    ap.add_argument("--results", required=True)
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--spread", type=float, default=1.2, help="seconds over which the clients start")
    ap.add_argument("--disrupt", default="")
    ap.add_argument("--at-min", type=float, default=0.2)
    ap.add_argument("--at-max", type=float, default=1.5)
    ap.add_argument("--heal", default="")
    ap.add_argument("--heal-after", type=float, default=4.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--expect-unknown", choices=["zero", "some", "any"], default="zero")
    ap.add_argument("--show-failures", action="store_true")
    ap.add_argument("--cancel", action="store_true")
    if "--" not in argv:
        ap.error("the bridge command goes after --")
    cut = argv.index("--")
    a, bridge = ap.parse_args(argv[:cut]), argv[cut + 1:]
    if not bridge:
        ap.error("the bridge command goes after --")
    print("  info: %s: %d clients of `%s`" % (a.label, a.count, shlex.join(bridge)))
    return do_round(a, bridge)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
