"""hub.slurm_messages: the spawn page says what Slurm knows, end to end.

Debian's JupyterHub 3.0 with BridgeSlurmSpawner and the hub-managed bridge
daemon (tests/hub/jupyterhub_config.py, path "daemon") against a private
sandbox login host, as a user with a browser sees it:

  (a) a job that PENDS: another user's job holds all of node1's CPUs; alice
      logs in through the login form and starts her server; the spawn
      progress event stream (/hub/api/users/alice/server/progress, through
      the hub's proxy) says "Pending in queue (Resources...)"; headless
      Chromium shows it on the spawn-pending page (a PNG under --artifacts);
  (b) a job whose batch script fails at once (a prologue that `exit 3`s):
      the stream's failure event names `FAILED exit 3` and the job's log
      path, and nothing of the job is left in Slurm.

    slurm_messages_test.py --bridge BUILD/slurm-ssh-bridge --venv VENV --work DIR [--artifacts DIR]
                           [--status-mode coalesced]

Run through tests/hub/run.sh (it makes the venv):
``tests/hub/run.sh build/slurm-ssh-bridge --test slurm_messages_test.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import traceback
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import HubError, stop_pid, wait_until  # noqa: E402
from notebook_test import USER, OTHER_USER, PathRun, Sandbox, log, processes_under  # noqa: E402
import chromium_shot  # noqa: E402

HOLD_SCRIPT = "#!/bin/bash\n#SBATCH --output=/dev/null\n#SBATCH --cpus-per-task={cpus}\nsleep 600\n"


def progress_events(client, user: str, until, timeout: float) -> list:
    """Read the spawn progress event stream (server-sent events) until
    ``until(event)`` is true or the stream ends; return every event seen."""
    seen = []
    url = client.url(f"hub/api/users/{user}/server/progress")
    headers = client._hub_headers()
    headers["Accept"] = "text/event-stream"
    deadline = time.monotonic() + timeout
    with client.session.get(url, headers=headers, stream=True, timeout=(10, timeout)) as r:
        if r.status_code != 200:
            raise HubError(f"GET {url} answered {r.status_code}: {r.text[:300]}")
        for raw in r.iter_lines(decode_unicode=True):
            if time.monotonic() > deadline:
                break
            if not raw or not raw.startswith("data:"):
                continue
            event = json.loads(raw[len("data:"):].strip())
            seen.append(event)
            log(f"  progress: {event}")
            if until(event):
                break
    return seen


def hold_node(run: PathRun, cpus: int) -> str:
    """A job of the other user holding ``cpus`` CPUs (all of node1), submitted
    through the bridge like any job."""
    r = subprocess.run([run.args.bridge, "--config", run.sandbox.env["BRIDGE_CONFIG"], "--mode", "direct",
                        "--user", OTHER_USER, "submit"], input=HOLD_SCRIPT.format(cpus=cpus),
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 or not r.stdout.strip().isdigit():
        raise HubError(f"could not submit the holding job as {OTHER_USER}: {r.returncode} {r.stderr.strip()}")
    job = r.stdout.strip()
    wait_until(f"the holding job {job} to run", lambda: run.sandbox.squeue(OTHER_USER).get(job) == "RUNNING", 60)
    return job


def spawn_pending_shot(run: PathRun, out: str, expect_text: str) -> dict:
    """The spawn-pending page in headless Chromium with the user's cookies,
    once its progress message shows ``expect_text``."""
    c = run.client
    host = urllib.parse.urlsplit(run.public_url).hostname
    cookies = [{"name": k.name, "value": k.value, "path": k.path or "/", "domain": host} for k in c.session.cookies]
    return chromium_shot.screenshot_page(url=c.url(f"hub/spawn-pending/{USER}"), cookies=cookies, out=out,
                                         expect_path=f"/hub/spawn-pending/{USER}",
                                         expect_selector="#progress-message", expect_text=expect_text,
                                         timeout=60.0)


def case_pending(run: PathRun, artifacts: str) -> None:
    c = run.client
    cpus = int(run.sandbox.env.get("SANDBOX_CPUS", "8"))
    holder = hold_node(run, cpus)
    try:
        c.start_server_api({})
        events = progress_events(c, USER, lambda e: "Pending in queue (" in e.get("message", ""), timeout=60)
        pending = [e["message"] for e in events if "Pending in queue (" in e.get("message", "")]
        if not pending:
            raise HubError(f"(a) no progress event named Slurm's reason; events: {events}")
        if "(Resources)" not in pending[-1] and "(Priority)" not in pending[-1]:
            raise HubError(f"(a) the pending message names another reason than Resources/Priority: {pending[-1]!r}")
        log(f"(a) the spawn page said: {pending[-1]!r}")
        shot = os.path.join(artifacts, "spawn-pending-reason.png")
        info = spawn_pending_shot(run, shot, "Pending in queue (")
        log(f"(a) screenshot {shot}: {info}")
        # The hub refuses to stop a pending spawn: free the node, let the
        # server come up, then stop it.
        run.sandbox.scancel(holder)
        c.wait_ready(timeout=90)
        c.stop_server(timeout=60)
        wait_until(f"{USER}'s job to leave Slurm after the stop", lambda: not run.sandbox.squeue(USER), 30)
    finally:
        run.sandbox.scancel(holder)


def case_failed(run: PathRun) -> None:
    c = run.client
    # batchspawner: user_options fill the script's {{prologue}}. A spawn that
    # fails within the hub's slow_spawn_timeout (10 s) fails the POST itself
    # (500); the progress stream then carries the failure, as the spawn page
    # shows it.
    c.hub_api("POST", f"users/{USER}/server", expect=(201, 202, 500), json={"prologue": "exit 3"})
    events = progress_events(c, USER, lambda e: e.get("failed"), timeout=90)
    failed = [e for e in events if e.get("failed")]
    if not failed:
        raise HubError(f"(b) the progress stream ended without a failure event: {events}")
    message = failed[-1].get("message", "")
    log(f"(b) the spawn page said: {message!r}")
    jobs = [w for w in message.replace(":", " ").split() if w.isdigit()]
    job_log = os.path.join(run.job_log_dir, "job-%s.log" % (jobs[0] if jobs else "?"))
    for needle in ("ended before the server started: FAILED exit 3 (NonZeroExitCode)", "Its log: " + job_log):
        if needle not in message:
            raise HubError(f"(b) the hub's spawn error lacks {needle!r}: {message!r}")
    left = run.sandbox.squeue(USER)
    if left:
        raise HubError(f"(b) jobs of {USER} left in Slurm after the failed spawn: {left}")
    model = c.user_model()
    if (model.get("servers") or {}).get("") or model.get("pending"):
        raise HubError(f"(b) the hub still holds a server for {USER} after the failure: {model}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--artifacts", default=os.path.join("build", "artifacts", "hub"))
    ap.add_argument("--status-mode", default="", help="the daemon's status.mode (SLURM_SSH_BRIDGE_STATUS_MODE)")
    args = ap.parse_args()
    args.bridge = os.path.realpath(args.bridge)
    args.repeats, args.screenshot = 1, None  # what PathRun reads of notebook_test's options
    os.makedirs(args.artifacts, exist_ok=True)
    sandbox = Sandbox(os.path.join(args.work, "sb"))
    failures = []
    t0 = time.monotonic()
    try:
        sandbox.up()
        if args.status_mode:
            # The hub-managed daemon reads the bridge's file (a managed
            # service does not inherit the hub's environment).
            derived = os.path.join(args.work, "bridge-status-mode.toml")
            with open(sandbox.env["BRIDGE_CONFIG"]) as src, open(derived, "w") as dst:
                dst.write(src.read() + '\n[status]\nmode = "%s"\n' % args.status_mode)
            os.chmod(derived, 0o644)
            sandbox.env["BRIDGE_CONFIG"] = derived
        run = PathRun("daemon", args, sandbox, secrets.token_urlsafe(16))
        try:
            run.hub.start(run.public_url)
            run.client.login(USER, run.password())
            wait_until("the hub-managed bridge daemon", run.daemon_pid, 20)
            for name, case in (("(a) pending", lambda: case_pending(run, args.artifacts)),
                               ("(b) failed at once", lambda: case_failed(run))):
                log(f"--- {name}")
                try:
                    case()
                    log(f"ok {name}")
                except (HubError, AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError,
                        chromium_shot.ShotError) as exc:
                    msg = str(exc) if isinstance(exc, (HubError, chromium_shot.ShotError)) else \
                        "".join(traceback.format_exception(exc))
                    failures.append((name, msg))
                    log(f"FAILED {name}: {msg}")
            if failures:
                print(run.diagnostics())
            run.stop_hub()
        finally:
            run.cleanup()
    finally:
        sandbox.down()
    for pid in processes_under(args.work):
        failures.append(("cleanup", f"process {pid} left behind under {args.work}"))
        stop_pid(pid)
    mode = args.status_mode or "per-user"
    print(f"\nhub.slurm_messages ({mode} status mode): {2 - sum(1 for n, _ in failures if n != 'cleanup')}/2 "
          f"cases passed in {time.monotonic() - t0:.0f} s")
    for name, msg in failures:
        print(f"===== FAILED {name}: {msg}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
