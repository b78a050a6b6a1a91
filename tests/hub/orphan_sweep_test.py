"""hub.orphan_sweep: the orphan sweep against a real hub, end to end.

Debian's JupyterHub 3.0, the real batchspawner with BridgeSlurmSpawner, the
bridge daemon and the orphan sweep (slurm_ssh_bridge.sweep) as hub-managed
services (tests/hub/jupyterhub_config.py, path "daemon" with "sweep"),
against a private sandbox login host:

  (a) alice logs in through the login form and starts her server: tracked,
      running, left alone;
  (b) bob's spawn whose submit reply is lost: the spawner's bridge_path is a
      wrapper that runs the real bridge for bob's submit and then exits 75
      with no output, so Slurm has a job with this hub's tag that the hub
      has no record of (the spawn fails);
  (c) a job of another tag (submit.tag=otherhub): never the sweep's.

Mode cancel (grace GRACE s, a sweep every INTERVAL s): the lost job shows up
untracked in the status file, is cancelled once past the grace period (not
before) and is gone from Slurm; alice's server still answers through the
proxy; the other tag's job still runs. Then the hub restarts with the sweep in
mode report: a job submitted with the hub's config and tag whose output is
thrown away is reported past the grace period and not cancelled.

    orphan_sweep_test.py --bridge BUILD/slurm-ssh-bridge --venv VENV --work DIR [--grace 18] [--interval 2]

Run through tests/hub/run.sh (it makes the venv):
``tests/hub/run.sh build/slurm-ssh-bridge --test orphan_sweep_test.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import HubClient, HubError, stop_pid, wait_until  # noqa: E402
from notebook_test import USER, OTHER_USER, PathRun, Sandbox, log, processes_under  # noqa: E402

TAG = "jupyterhub"  # the sandbox bridge config's submit.tag (the default)
OTHER_TAG = "otherhub"
SLEEP_SCRIPT = "#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --time=15\nsleep 900\n"

# TEST-ONLY: the bridge as the spawner runs it, except that LOSE_USER's submit
# reply is lost: the real bridge submits (the job is in Slurm), its answer
# goes to a file of the test's, the hub sees exit 75 and no output.
LOSSY_BRIDGE = """#!/bin/bash
real={real}
lose={lose}
user= prev= submit=0
for a in "$@"; do
    [[ $prev == --user ]] && user=$a
    [[ $a == submit ]] && submit=1
    prev=$a
done
if [[ $submit == 1 && $user == "$lose" ]]; then
    "$real" "$@" >{out}.tmp 2>/dev/null
    echo "$? $(date +%s.%N)" >>{out}.tmp
    mv {out}.tmp {out}
    exit 75
fi
exec "$real" "$@"
"""


class SweepRun:
    def __init__(self, args, sandbox: Sandbox):
        self.args = args
        self.sandbox = sandbox
        self.run = PathRun("daemon", args, sandbox, secrets.token_urlsafe(16))
        self.status_file = os.path.join(self.run.workdir, "sweep-status.json")
        self.lost_out = os.path.join(args.work, "lost-submit.out")
        self.lossy = os.path.join(args.work, "lossy-bridge")
        with open(self.lossy, "w") as f:
            f.write(LOSSY_BRIDGE.format(real=shlex.quote(args.bridge), lose=shlex.quote(OTHER_USER),
                                        out=shlex.quote(self.lost_out)))
        os.chmod(self.lossy, 0o755)
        self.bob = HubClient(self.run.public_url)
        self.other_tag_job = None
        self.timings = {}

    @property
    def settings_file(self) -> str:
        return self.run.hub.env["SSB_HUB_SETTINGS"]

    def configure(self, mode: str) -> None:
        with open(self.settings_file) as f:
            settings = json.load(f)
        settings["spawner_bridge"] = self.lossy
        settings["sweep"] = {"mode": mode, "grace_s": self.args.grace, "interval_s": self.args.interval,
                             "status_file": self.status_file, "tag": TAG}
        with open(self.settings_file, "w") as f:
            json.dump(settings, f)

    def bridge(self, *argv, **kw) -> subprocess.CompletedProcess:
        return subprocess.run([self.args.bridge, "--config", self.sandbox.env["BRIDGE_CONFIG"], *argv],
                              capture_output=True, text=True, timeout=60, **kw)

    def status(self) -> dict:
        try:
            with open(self.status_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def untracked(self, job: str):
        for entry in self.status().get("untracked", []):
            if str(entry.get("job_id")) == job:
                return entry
        return None

    def sweep_log(self, job: str) -> list:
        with open(self.run.hub.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if re.search(r"orphan sweep: job %s of " % job, line)]

    def bob_jobs(self) -> dict:
        return self.sandbox.squeue(OTHER_USER)

    # ------------------------------------------------------------ cases

    def case_alice(self) -> None:
        c = self.run.client
        c.login(USER, self.run.password())
        c.start_server()  # the home page's start button (GET /hub/spawn/USER)
        ready = c.wait_ready(timeout=90)
        self.run.job_id = self.run.the_job()
        c.open_server()
        if "started" not in c.server_get("api/status"):
            raise HubError("(a) alice's api/status through the proxy lacks 'started'")
        log(f"(a) {USER}'s server ready in {ready:.1f} s, job {self.run.job_id}, api/status answers")

    def case_other_tag(self) -> None:
        r = self.bridge("--mode", "direct", "--set", "submit.tag=" + OTHER_TAG, "--user", OTHER_USER, "submit",
                        input=SLEEP_SCRIPT)
        if r.returncode != 0 or not r.stdout.strip().isdigit():
            raise HubError(f"(c) submit under tag {OTHER_TAG} failed: {r.returncode} {r.stderr.strip()}")
        self.other_tag_job = r.stdout.strip()
        log(f"(c) job {self.other_tag_job} of {OTHER_USER} under tag {OTHER_TAG}")

    def lost_spawn(self) -> str:
        """(b) bob's spawn through the hub whose submit reply is lost: the job id."""
        self.bob.login(OTHER_USER, self.run.password())
        t0 = time.time()
        r = self.bob.hub_api("POST", f"users/{OTHER_USER}/server", expect=(201, 202, 500), json={})
        wait_until(f"the hub to give up on {OTHER_USER}'s spawn",
                   lambda: not self.bob.user_model().get("pending") and not self.bob.server_model(), 60)
        with open(self.lost_out) as f:
            lines = f.read().split()
        job, rc, at = lines[0], lines[-2], float(lines[-1])
        if rc != "0" or not job.isdigit():
            raise HubError(f"(b) the real bridge's submit under the wrapper failed: {lines}")
        if job not in self.bob_jobs():
            raise HubError(f"(b) the lost submit's job {job} is not in Slurm: {self.bob_jobs()}")
        state = (self.bob.user_model().get("servers") or {})
        log(f"(b) {OTHER_USER}'s spawn: POST answered {r.status_code}, the hub has no server for him "
            f"({state}); Slurm has job {job}, submitted {at - t0:.1f} s after the POST")
        self.timings["lost_submitted"] = at
        return job

    def case_cancel(self) -> None:
        job = self.lost_spawn()
        grace = self.args.grace
        seen = None
        snapshots = []
        deadline = time.time() + grace + 60
        while job in self.bob_jobs():
            if time.time() > deadline:
                raise HubError(f"(b) job {job} still in Slurm {grace + 60:.0f} s after its submit; status: "
                               f"{json.dumps(self.status())[:1500]}")
            st = self.status()
            snapshots.append(st)
            entry = self.untracked(job)
            if entry and seen is None:
                seen = (time.time(), float(entry["first_seen_epoch"]))
                log(f"(b) the status file lists job {job} untracked: {entry}")
            for e in st.get("untracked", []):
                if str(e.get("job_id")) == self.run.job_id:
                    raise HubError(f"(a) alice's tracked job {self.run.job_id} listed untracked: {e}")
            time.sleep(0.25)
        gone = time.time()
        if seen is None:
            raise HubError(f"(b) job {job} left Slurm without ever being listed untracked in the status file")
        first = seen[1]
        self.timings.update(first_seen=first, gone=gone)
        st = self.status()
        cancels = [c for c in st.get("recent_cancels", []) if str(c.get("job_id")) == job]
        if not cancels:
            wait_until("the status file to list the cancel",
                       lambda: [c for c in self.status().get("recent_cancels", []) if str(c.get("job_id")) == job],
                       3 * self.args.interval + 10)
            cancels = [c for c in self.status().get("recent_cancels", []) if str(c.get("job_id")) == job]
        lines = self.sweep_log(job)
        log(f"(b) job {job}: submitted {self.timings['lost_submitted']:.1f}, first seen untracked "
            f"{first - self.timings['lost_submitted']:+.1f} s, gone from Slurm {gone - first:.1f} s after first "
            f"seen (grace {grace:.0f} s); cancel {cancels[-1]}")
        for line in lines:
            log("  hub log: " + line[-260:])
        if gone - first < grace:
            raise HubError(f"(b) job {job} left Slurm {gone - first:.1f} s after it was first seen, "
                           f"before the {grace:.0f} s grace period")
        if cancels[-1].get("age_s", 0) < grace:
            raise HubError(f"(b) the sweep cancelled job {job} at age {cancels[-1].get('age_s')} s < grace")
        if not any("untracked by the hub" in line and ": wait (" in line for line in lines):
            raise HubError(f"(b) the hub log has no 'wait' line for job {job}: {lines}")
        if not any(": cancelled (" in line for line in lines):
            raise HubError(f"(b) the hub log has no 'cancelled' line for job {job}: {lines}")
        if st.get("last_sweep", {}).get("figures", {}).get("tracked", 0) < 1:
            raise HubError(f"(a) the sweep counts no tracked job although alice's runs: {st.get('last_sweep')}")
        # alice untouched, answering; the other tag's job still there.
        c = self.run.client
        if self.sandbox.squeue(USER).get(self.run.job_id) != "RUNNING":
            raise HubError(f"(a) alice's job {self.run.job_id} is not RUNNING after the sweep: "
                           f"{self.sandbox.squeue(USER)}")
        if "started" not in c.server_get("api/status"):
            raise HubError("(a) alice's api/status through the proxy lacks 'started' after the sweep")
        if self.other_tag_job not in self.bob_jobs():
            raise HubError(f"(c) the other tag's job {self.other_tag_job} is gone: {self.bob_jobs()}")
        log(f"(a) {USER}'s job {self.run.job_id} still RUNNING and answering; (c) job {self.other_tag_job} "
            f"of tag {OTHER_TAG} still in Slurm")

    def case_report(self) -> None:
        log("--- hub restart with the sweep in mode report")
        self.run.stop_hub()
        self.configure("report")
        self.run.hub.start(self.run.public_url)
        wait_until("the hub-managed bridge daemon", self.run.daemon_pid, 20)
        self.run.client.wait_ready(timeout=60)
        r = self.bridge("--user", OTHER_USER, "submit", input=SLEEP_SCRIPT)  # its answer is thrown away
        if r.returncode != 0:
            raise HubError(f"(report) the submit with the hub's config failed: {r.returncode} {r.stderr.strip()}")
        t0 = time.time()
        jobs = [j for j in self.bob_jobs() if j != self.other_tag_job]
        if len(jobs) != 1:
            raise HubError(f"(report) expected one new job of {OTHER_USER}, squeue shows {self.bob_jobs()}")
        job = jobs[0]
        entry = wait_until(f"job {job} reported past the grace period",
                           lambda: (lambda e: e if e and e.get("action") == "report" else None)(self.untracked(job)),
                           self.args.grace + 30, interval=0.25)
        reported = time.time()
        time.sleep(3 * self.args.interval)
        st = self.status()
        if job not in self.bob_jobs():
            raise HubError(f"(report) mode report cancelled job {job}")
        if st.get("mode") != "report" or st.get("totals", {}).get("cancelled"):
            raise HubError(f"(report) status says mode {st.get('mode')}, totals {st.get('totals')}")
        log(f"(report) job {job} reported {reported - t0:.1f} s after its submit: {entry}; still in Slurm "
            f"{3 * self.args.interval:.0f} s later, totals {st.get('totals')}")
        self.sandbox.scancel(job)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--grace", type=float, default=18.0)
    ap.add_argument("--interval", type=float, default=2.0)
    args = ap.parse_args()
    args.bridge = os.path.realpath(args.bridge)
    args.repeats, args.screenshot = 1, None  # what PathRun reads of notebook_test's options
    sandbox = Sandbox(os.path.join(args.work, "sb"))
    failures = []
    cases = 0
    t0 = time.monotonic()
    try:
        sandbox.up()
        s = SweepRun(args, sandbox)
        try:
            s.configure("cancel")
            s.run.hub.start(s.run.public_url)
            wait_until("the hub-managed bridge daemon", s.run.daemon_pid, 20)
            for name, case in (("(a) alice's server", s.case_alice), ("(c) another tag's job", s.case_other_tag),
                               ("(b) lost submit cancelled", s.case_cancel), ("mode report", s.case_report)):
                log(f"--- {name}")
                cases += 1
                try:
                    case()
                    log(f"ok {name}")
                except (HubError, AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError,
                        IndexError) as exc:
                    msg = str(exc) if isinstance(exc, HubError) else "".join(traceback.format_exception(exc))
                    failures.append((name, msg))
                    log(f"FAILED {name}: {msg}")
                    if name.startswith("(a)"):
                        break
            if failures:
                print(s.run.diagnostics())
                print("sweep status file:", json.dumps(s.status(), indent=1)[:4000])
            try:
                if s.run.client.server_model():
                    s.run.client.stop_server(timeout=60)
            except HubError as exc:
                log(f"cleanup: {exc}")
            s.run.stop_hub()
        finally:
            if s.other_tag_job:
                sandbox.scancel(s.other_tag_job)
            try:
                for job in sandbox.squeue(OTHER_USER):
                    if job == s.other_tag_job:
                        continue  # cancelled above (it may still be COMPLETING)
                    log(f"cleanup: cancelling leftover job {job} of {OTHER_USER}")
                    sandbox.scancel(job)
            except HubError as exc:
                log(f"cleanup: {exc}")
            s.run.cleanup()
    finally:
        sandbox.down()
    for pid in processes_under(args.work):
        failures.append(("cleanup", f"process {pid} left behind under {args.work}"))
        stop_pid(pid)
    failed = sum(1 for n, _ in failures if n != "cleanup")
    print(f"\nhub.orphan_sweep: {cases - failed}/4 cases passed in {time.monotonic() - t0:.0f} s")
    for name, msg in failures:
        print(f"===== FAILED {name}: {msg}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
