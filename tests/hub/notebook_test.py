"""hub.notebook: a real notebook server spawned by a real JupyterHub, end to end.

For each path (bridge + hub-managed daemon, bridge direct, batchspawner's
stock fresh-ssh prefix) it starts Debian's JupyterHub 3.0 on private loopback
ports against a private sandbox login host (sshd + sudo + Slurm), and then,
as a user with a browser would:

  log in through the login form -> press start -> wait until the hub says
  ready (timed) -> through the hub's proxy: the server's API answers, a
  kernel evaluates 6*7 = 42 over its websocket, and the job's USER, LOGNAME,
  HOME, SHELL are the user's (the login host's passwd) -> stop -> the job is
  gone from Slurm.

The daemon path also checks that a wrong password is refused and that
bob.proj1's login does not open alice's server, and restarts the hub (stopped by its PID) while the server
runs: the job, the notebook server and its kernel survive, the hub finds the
server again (same job), the managed daemon comes back with the hub.

    notebook_test.py --bridge BUILD/slurm-ssh-bridge --venv VENV --work DIR [--paths daemon,direct,stock-ssh]

Run through tests/hub/run.sh (it makes the venv). Exit 0 only if every path
passed; prints one table of times to ready.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import time
import traceback
import urllib.parse
from urllib.parse import urlparse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (HubClient, HubError, LocalHub, free_port, hub_and_job_logs, pid_alive, stop_pid,  # noqa: E402
                     tail, wait_until)
import chromium_shot  # noqa: E402  (tests/hub/chromium_shot.py)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SANDBOX_SH = os.path.join(ROOT, "tests", "sandbox", "sandbox.sh")
USER = "alice.proj1"
OTHER_USER = "bob.proj1"
ENV_NAMES = ("USER", "LOGNAME", "HOME", "SHELL")
PATHS = ("daemon", "direct", "stock-ssh")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def read_env_file(path: str) -> dict:
    """sandbox.env (`export NAME='value'` lines) as a dict."""
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("export ") and "=" in line:
                name, value = line[len("export "):].split("=", 1)
                env[name] = (shlex.split(value) or [""])[0]
    return env


class Sandbox:
    def __init__(self, directory: str):
        self.dir = directory
        self.env: dict = {}

    def up(self) -> None:
        r = subprocess.run(["bash", SANDBOX_SH, "up", self.dir], capture_output=True, text=True, timeout=180)
        if r.returncode != 0:
            raise HubError(f"sandbox.sh up {self.dir} failed ({r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        self.env = read_env_file(os.path.join(self.dir, "sandbox.env"))

    def down(self) -> None:
        subprocess.run(["bash", SANDBOX_SH, "down", self.dir, "--purge"], capture_output=True, timeout=120)

    def squeue(self, user: str) -> dict:
        """{job_id: state} of the user's jobs in this sandbox's cluster."""
        r = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i %T"], capture_output=True, text=True,
                           timeout=30, env={**os.environ, "SLURM_CONF": self.env["SLURM_CONF"]})
        if r.returncode != 0:
            raise HubError(f"squeue -u {user} (SLURM_CONF={self.env['SLURM_CONF']}) failed: {r.stderr.strip()}")
        return dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())

    def scancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30,
                       env={**os.environ, "SLURM_CONF": self.env["SLURM_CONF"]})


class PathRun:
    """One hub configuration (one path) against the sandbox."""

    def __init__(self, path: str, args, sandbox: Sandbox, password: str):
        self.path = path
        self.args = args
        self.sandbox = sandbox
        self.workdir = os.path.join(args.work, "hub-" + path)
        os.makedirs(self.workdir, mode=0o700)
        self.job_log_dir = os.path.join(args.work, "jobs-" + path)
        os.makedirs(self.job_log_dir)
        os.chmod(self.job_log_dir, 0o1777)  # the job (as the user) writes its output here
        self.public_url = "http://127.0.0.1:%d/" % free_port()
        settings = {
            "workdir": self.workdir, "path": path, "users": [USER, OTHER_USER], "password": password,
            "public_port": int(self.public_url.rsplit(":", 1)[1].strip("/")),
            "hub_port": free_port(), "proxy_api_port": free_port(),
            "bridge": args.bridge, "bridge_config": sandbox.env["BRIDGE_CONFIG"], "venv": args.venv,
            "job_log_dir": self.job_log_dir, "ssh_port": int(sandbox.env["SSH_PORT"]),
            "client_key": sandbox.env["CLIENT_KEY"], "known_hosts": sandbox.env["KNOWN_HOSTS"],
            "wrappers_dir": sandbox.env["WRAPPERS_DIR"],
        }
        self.hub = LocalHub.for_test(args.venv, os.path.join(HERE, "jupyterhub_config.py"), self.workdir, settings)
        self.client = HubClient(self.public_url)
        self.job_id = None
        self.soft_failures = []
        self.result = {"path": path, "ready_s": None, "restart_ready_s": None, "stop_s": None,
                       "env": {}, "kernel": None, "load": None, "ready_all": [], "submit_all": [], "ok": False, "error": ""}

    # ------------------------------------------------------------ helpers

    def bridge_status(self) -> dict:
        # `status` prints the daemon's status object itself (its "status" key is
        # the [status] section's figures, not an envelope).
        r = subprocess.run([self.args.bridge, "--config", self.sandbox.env["BRIDGE_CONFIG"], "status"],
                           capture_output=True, text=True, timeout=20)
        if r.returncode != 0:
            raise HubError(f"slurm-ssh-bridge status: exit {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def daemon_pid(self):
        return self.hub.child_pid(lambda argv: argv[:1] == [self.args.bridge] and argv[-1:] == ["serve"])

    def proxy_pid(self):
        try:
            with open(os.path.join(self.workdir, "proxy.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def the_job(self) -> str:
        jobs = self.sandbox.squeue(USER)
        if len(jobs) != 1:
            raise HubError(f"expected exactly one Slurm job of {USER} in the sandbox, squeue shows {jobs}")
        return next(iter(jobs))

    def check_notebook(self, label: str, kernel_id=None) -> str:
        """Server API, a kernel computing 6*7, the job's identity. Returns the kernel id."""
        c = self.client
        c.open_server()
        status = c.server_get("api/status")
        if "started" not in status:
            raise HubError(f"{label}: {c.url(c.server_path('api/status'))} answered without 'started': {status}")
        if kernel_id is None:
            kernel_id = c.start_kernel()
        reply = c.execute(kernel_id, "6*7")
        if reply.result != "42":
            raise HubError(f"{label}: kernel {kernel_id} evaluated 6*7 to {reply.result!r} "
                           f"(status {reply.status}, error {reply.error}, stderr {reply.stderr[-300:]!r})")
        self.result["kernel"] = reply.result
        code = ("import json, os, pwd; e = {n: os.environ.get(n) for n in %r}; "
                "e['uid'] = pwd.getpwuid(os.getuid()).pw_name; print(json.dumps(e))" % (ENV_NAMES,))
        reply = c.execute(kernel_id, code)
        try:
            job_env = json.loads(reply.stdout)
        except ValueError:
            raise HubError(f"{label}: reading the job's environment failed: stdout {reply.stdout!r}, "
                           f"error {reply.error}, stderr {reply.stderr[-300:]!r}") from None
        self.result["env"] = job_env
        entry = pwd.getpwnam(USER)  # the login host is this machine: its passwd is the authority
        if job_env.get("uid") != USER:
            raise HubError(f"{label}: the kernel of {USER}'s server runs as {job_env.get('uid')!r}")
        want = {"USER": USER, "LOGNAME": USER, "HOME": entry.pw_dir, "SHELL": entry.pw_shell}
        wrong = {n: job_env.get(n) for n in ENV_NAMES if job_env.get(n) != want[n]}
        if self.path == "stock-ssh" and wrong.get("LOGNAME", "") is None:
            # The reference form passes only keepvars (no LOGNAME) and sbatch
            # --export=LIST gives the job nothing else: reported, not asserted.
            del wrong["LOGNAME"]
        log("  the kernel runs as %s; job environment: " % job_env.get("uid")
            + " ".join(f"{n}={job_env.get(n)}" for n in ENV_NAMES))
        if wrong:
            # Recorded, and the rest of the scenario still runs: the path fails at its end.
            self.soft_failures.append(
                f"{label}: the job of {USER} runs with {wrong}, but the login host's passwd "
                f"(getent passwd {USER}) says {dict((n, want[n]) for n in wrong)}")
            log(f"[{self.path}] FAILURE (continuing): {self.soft_failures[-1]}")
        return kernel_id

    def diagnostics(self) -> str:
        parts = hub_and_job_logs(self.hub, self.job_log_dir)
        # The managed daemon writes to the hub's stdout: its lines start with an ISO time.
        daemon_lines = [line for line in self.hub.log_tail(100000).splitlines()
                        if re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z (?:debug|info|warn|error) ", line)]
        if self.path == "daemon":
            parts.append("--- daemon log (its lines in the hub log), last lines:\n" + "\n".join(daemon_lines[-25:]))
        return "\n".join(parts)

    # ----------------------------------------------------------------- run

    def run(self, restart: bool) -> None:
        c = self.client
        log(f"[{self.path}] hub on {self.public_url} (pid file dir {self.workdir})")
        self.hub.start(self.public_url)
        log(f"[{self.path}] hub pid {self.hub.pid}; logging in as {USER} through the login form")
        c.login(USER, self.password())
        if self.path == "daemon":
            wait_until("the hub-managed bridge daemon (a child of the hub running `serve`)", self.daemon_pid, 20)
            wait_until("the daemon's socket to answer `status`", lambda: self.bridge_status().get("ok"), 20)
        c.start_server()
        self.result["ready_s"] = c.wait_ready(timeout=100)
        self.result["load"] = os.getloadavg()[0]
        self.result["ready_all"].append(self.result["ready_s"])
        log(f"[{self.path}] ready after {self.result['ready_s']:.2f} s")
        self.job_id = self.the_job()
        kernel_id = self.check_notebook(self.path)
        log(f"[{self.path}] job {self.job_id}: api/status answers, kernel {kernel_id}: 6*7 = 42")
        if self.path == "daemon" and self.args.screenshot:
            self.screenshot(self.args.screenshot)
        if self.path == "daemon":
            st = self.bridge_status()
            counters = st.get("counters", {})
            if not counters.get("submit") or not counters.get("query"):
                raise HubError(f"the spawner did not go through the daemon (pid {st.get('pid')}): counters {counters}")
            log(f"[{self.path}] daemon pid {st.get('pid')} carried the requests: counters {counters}")
        if restart:
            self.check_other_user()
            self.restart(kernel_id)
        self.result["stop_s"] = c.stop_server(timeout=60)
        wait_until(f"job {self.job_id} of {USER} to leave Slurm's queue after the stop",
                   lambda: self.job_id not in self.sandbox.squeue(USER), 30)
        if self.path == "daemon":
            st = self.bridge_status()
            if not (st.get("counters") or {}).get("cancel"):
                raise HubError(f"the cancel did not go through the daemon (pid {st.get('pid')}): "
                               f"counters {st.get('counters')}")
        log(f"[{self.path}] stopped in {self.result['stop_s']:.2f} s; job {self.job_id} is gone from squeue")
        for i in range(1, self.args.repeats):
            c.start_server()
            self.result["ready_all"].append(c.wait_ready(timeout=100))
            job = self.the_job()
            c.open_server()  # a new server: the browser goes through the hub's OAuth again
            c.server_get("api/status")
            c.stop_server(timeout=60)
            wait_until(f"job {job} of {USER} to leave Slurm's queue after the stop",
                       lambda: job not in self.sandbox.squeue(USER), 30)
        if self.args.repeats > 1:
            log(f"[{self.path}] times to ready over {self.args.repeats} spawns: "
                + ", ".join(f"{t:.2f}" for t in self.result["ready_all"]) + " s")
        self.result["submit_all"] = self.submit_latencies()
        self.stop_hub()
        if self.soft_failures:
            raise HubError("; ".join(self.soft_failures))
        self.result["ok"] = True

    def screenshot(self, out: str) -> None:
        """What the user sees: the server's notebook tree in headless Chromium,
        with the login cookies of this client, saved as a PNG."""
        c = self.client
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        host = urllib.parse.urlsplit(self.public_url).hostname
        cookies = [{"name": k.name, "value": k.value, "path": k.path or "/", "domain": host}
                   for k in c.session.cookies]
        try:
            info = chromium_shot.screenshot(url=c.url(f"user/{USER}/tree"), cookies=cookies, out=out,
                                            expect_path=f"/user/{USER}/tree", timeout=90.0)
        except chromium_shot.ShotError as exc:
            raise HubError(f"screenshot of {USER}'s notebook page: {exc}") from None
        log(f"[{self.path}] screenshot {out}: title {info['title']!r}, {info['items']} row(s) in the "
            f"notebook list, at {info['path']}")

    def check_other_user(self) -> None:
        """A wrong password is refused; another user's login does not open alice's server."""
        intruder = HubClient(self.public_url)
        try:
            intruder.login(OTHER_USER, self.password() + "-wrong")
        except HubError:
            pass
        else:
            raise HubError(f"the hub accepted {OTHER_USER} with a wrong password")
        intruder.login(OTHER_USER, self.password())
        url = self.client.url(self.client.server_path("api/status"))
        r = intruder.session.get(url, timeout=30, allow_redirects=False)
        if r.status_code == 200:
            raise HubError(f"{OTHER_USER}'s cookies read {url} of {USER}'s server (200)")
        r = intruder.session.get(self.client.url(self.client.server_path("tree")), timeout=30)
        if r.status_code == 200 and urlparse(r.url).path.startswith("/" + self.client.server_path()):
            raise HubError(f"{OTHER_USER} opened {USER}'s notebook page {r.url}")
        log(f"[{self.path}] {OTHER_USER}: wrong password refused; {USER}'s server refused to them "
            f"(api/status {intruder.session.get(url, timeout=30, allow_redirects=False).status_code}, "
            f"page -> {r.status_code})")

    def submit_latencies(self) -> list:
        """Seconds from batchspawner's "Spawner submitting command" to "Job submitted", from the hub log."""
        pattern = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) JupyterHub batchspawner:\d+\] "
                             r"(Spawner submitting command|Job submitted)")
        out, started = [], None
        for line in tail(self.hub.log_path, 10**7).splitlines():
            m = pattern.match(line)
            if not m:
                continue
            t = time.mktime(time.strptime(m.group(1)[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + m.group(1)[19:])
            if m.group(2).startswith("Spawner"):
                started = t
            elif started is not None:
                out.append(t - started)
                started = None
        return out

    def password(self) -> str:
        with open(self.hub.env["SSB_HUB_SETTINGS"]) as f:
            return json.load(f)["password"]

    def restart(self, kernel_id: str) -> None:
        c = self.client
        old_daemon = self.daemon_pid()
        hub_pid = self.hub.pid
        log(f"[{self.path}] stopping the hub (SIGTERM to pid {hub_pid}) while job {self.job_id} runs")
        self.stop_hub()
        state = self.sandbox.squeue(USER).get(self.job_id)
        if state != "RUNNING":
            raise HubError(f"after stopping the hub, job {self.job_id} of {USER} is {state!r}, not RUNNING "
                           "(cleanup_servers=False must keep it)")
        daemon_after = "stopped with the hub" if old_daemon and not pid_alive(old_daemon) else "still running"
        log(f"[{self.path}] hub gone, job {self.job_id} still RUNNING; managed daemon (pid {old_daemon}): {daemon_after}")
        t0 = time.monotonic()
        self.hub.start(self.public_url)
        c.spawn_requested_at = t0
        self.result["restart_ready_s"] = c.wait_ready(timeout=60)
        new_daemon = wait_until("the daemon to come back with the hub", self.daemon_pid, 20)
        if self.the_job() != self.job_id:
            raise HubError(f"after the hub restart {USER} has job {self.the_job()}, not {self.job_id}")
        kernels = c.list_kernels()
        if kernel_id not in kernels:
            raise HubError(f"after the hub restart the server lists kernels {kernels}, not {kernel_id} "
                           "(a different server process?)")
        self.check_notebook(self.path + " after restart", kernel_id)
        log(f"[{self.path}] hub restarted (pid {self.hub.pid}), server ready again after "
            f"{self.result['restart_ready_s']:.2f} s, same job {self.job_id}, same kernel {kernel_id}: 42; "
            f"daemon pid {old_daemon} -> {new_daemon}")

    def stop_hub(self) -> None:
        proxy = self.proxy_pid()
        daemon = self.daemon_pid()
        self.hub.stop(timeout=30)
        for what, pid in (("configurable-http-proxy", proxy), ("bridge daemon", daemon)):
            if pid and pid_alive(pid):
                wait_until(f"the {what} (pid {pid}) to exit with the hub", lambda: not pid_alive(pid), 15)

    def cleanup(self) -> None:
        if not self.result["submit_all"]:
            self.result["submit_all"] = self.submit_latencies()
        for pid in (self.proxy_pid(), self.daemon_pid()):
            if pid:
                stop_pid(pid)
        if self.hub.proc and self.hub.proc.poll() is None:
            try:
                self.hub.stop(timeout=20)
            except HubError as exc:
                log(f"cleanup: {exc}")
        proxy = self.proxy_pid()
        if proxy:
            stop_pid(proxy)
        try:
            for job in self.sandbox.squeue(USER):
                log(f"cleanup: cancelling leftover job {job} of {USER}")
                self.sandbox.scancel(job)
        except HubError as exc:
            log(f"cleanup: {exc}")


def processes_under(directory: str) -> dict:
    """{pid: argv} of processes (other than this one) whose command line names ``directory``."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if any(directory in a for a in argv) and pid_alive(int(entry)):
            found[int(entry)] = argv
    return found


def print_table(results) -> None:
    print("\nTime to ready (press start -> the hub says ready), one run, one sandbox, paths one after another:")
    print("| path | ready: median (s) | min-max (n) | submit: median (ms) | hub restart -> ready again (s) "
          "| stop (s) | job: uid / USER / LOGNAME | HOME / SHELL | 6*7 | load avg | result |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    names = {"daemon": "bridge, daemon (hub-managed service)", "direct": "bridge, direct",
             "stock-ssh": "batchspawner stock `ssh ... sudo -u`"}
    for r in results:
        f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        times = r["ready_all"]
        median = statistics.median(times) if times else None
        spread = f"{min(times):.2f}-{max(times):.2f} ({len(times)})" if times else "-"
        e = r["env"]
        submit = "%.0f" % (1000 * statistics.median(r["submit_all"])) if r["submit_all"] else "-"
        print(f"| {names[r['path']]} | {f(median)} | {spread} | {submit} | {f(r['restart_ready_s'])} | {f(r['stop_s'])} | "
              f"{e.get('uid', '-')} / {e.get('USER', '-')} / {e.get('LOGNAME', '-')} | "
              f"{e.get('HOME', '-')} / {e.get('SHELL', '-')} | {r['kernel'] or '-'} | {f(r['load'])} | "
              f"{'ok' if r['ok'] else 'FAILED'} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True, help="an empty private directory (0755: the job's user reads the venv)")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--screenshot", metavar="PNG",
                    help="save the daemon path's notebook page, as headless Chromium shows it, here")
    ap.add_argument("--repeats", type=int, default=3,
                    help="spawns per path for the time to ready (the first one does all the checks)")
    args = ap.parse_args()
    args.bridge = os.path.realpath(args.bridge)
    paths = [p for p in args.paths.split(",") if p]
    for p in paths:
        if p not in PATHS:
            ap.error(f"unknown path {p!r} (one of {', '.join(PATHS)})")

    sandbox = Sandbox(os.path.join(args.work, "sb"))
    password = secrets.token_urlsafe(16)
    results, failures = [], []
    t_start = time.monotonic()
    try:
        log(f"sandbox up in {sandbox.dir}")
        sandbox.up()
        for p in paths:
            run = PathRun(p, args, sandbox, password)
            try:
                run.run(restart=(p == "daemon"))
            except (HubError, AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                msg = str(exc) if isinstance(exc, HubError) else "".join(traceback.format_exception(exc))
                run.result["error"] = msg
                failures.append((p, msg, run.diagnostics()))
                log(f"[{p}] FAILED: {msg}")
            finally:
                run.cleanup()
                results.append(run.result)
    finally:
        sandbox.down()
    leftovers = processes_under(args.work)
    if leftovers:
        failures.append(("cleanup", "processes left behind under " + args.work, "\n".join(
            f"  pid {pid}: {' '.join(argv)[:200]}" for pid, argv in leftovers.items())))
        for pid in leftovers:
            stop_pid(pid)
    print_table(results)
    passed = sum(1 for r in results if r["ok"])
    print(f"\nhub.notebook: {passed}/{len(paths)} paths passed in "
          f"{time.monotonic() - t_start:.0f} s")
    for p, msg, diag in failures:
        print(f"\n===== FAILED path {p}: {msg}\n{diag}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
