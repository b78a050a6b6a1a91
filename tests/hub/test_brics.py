"""hub.brics: the reference deployment's BriCS authentication and spawner, through the bridge.

Debian's JupyterHub 3.0 with bricsauthenticator's real ``BricsAuthenticator``
and python_shim's ``BridgeBricsSlurmSpawner`` (BricsSlurmSpawner + the
bridge), against a private sandbox login host. A user with two projects on
the hub's platform (and one elsewhere):

  /hub/login with a signed JWT in X-Auth-Id-Token (issuer: a loopback test
  double, brics_oidc.py) -> the spawn page's form offers proj1 and proj2
  (not the other platform's) -> POST brics_project=proj2.brics -> the Slurm
  job belongs to alice.proj2 (squeue %u) -> the hub says ready (timed) ->
  through the proxy a kernel evaluates 6*7 and sees USER/LOGNAME/HOME of
  alice.proj2 (after a first start of a project whose account the login host
  lacks failed: the retry must not reuse that account; JupyterHub >= 2.2
  gives it a new Spawner object) -> the hub restarts under the running job (the spawner's
  saved state and user_options bring back the project account: same job,
  same kernel) -> stop -> the job is gone -> start again choosing proj1 ->
  the new job belongs to alice.proj1 -> stop.

Also: no token, a token for another audience, and a token whose projects are
all on other platforms are refused with BricsAuthenticator's statuses.

    test_brics.py --bridge BUILD/slurm-ssh-bridge --venv VENV --work DIR

Run through tests/hub/run_brics.sh (it makes the venv). Uses the hub tests'
harness (harness.py) and sandbox helper (notebook_test.py).
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from brics_oidc import OidcIssuer, projects_claim  # noqa: E402
from harness import (HubClient, HubError, LocalHub, free_port, hub_and_job_logs, pid_alive, stop_pid,  # noqa: E402
                     wait_until)
from notebook_test import ENV_NAMES, Sandbox  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SHORT_NAME = "alice"
ACCOUNTS = {"proj1.brics": "alice.proj1", "proj2.brics": "alice.proj2"}
CHOSEN = "proj2.brics"
ACCOUNT = ACCOUNTS[CHOSEN]
# A project the portal lists but whose account the login host does not have
# (not provisioned yet): starting it fails, and the retry with another
# project must not reuse its account.
UNPROVISIONED = ("proj9.brics", "alice.proj9")
PLATFORM = "brics.ssb-test.notebooks.shared"
AUDIENCE = "zenith-jupyter"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class BricsRun:
    def __init__(self, args, sandbox: Sandbox, issuer: OidcIssuer):
        self.args = args
        self.sandbox = sandbox
        self.issuer = issuer
        self.workdir = os.path.join(args.work, "hub-brics")
        os.makedirs(self.workdir, mode=0o700)
        self.job_log_dir = os.path.join(args.work, "jobs-brics")
        os.makedirs(self.job_log_dir)
        os.chmod(self.job_log_dir, 0o1777)  # the job (as the user) writes its output here
        public_port = free_port()
        self.public_url = "http://127.0.0.1:%d/" % public_port
        settings = {
            "workdir": self.workdir, "path": "direct", "users": [SHORT_NAME],
            "password": secrets.token_urlsafe(16),  # unused: BricsAuthenticator has no password
            "public_port": public_port, "hub_port": free_port(), "proxy_api_port": free_port(),
            "bridge": args.bridge, "bridge_config": sandbox.env["BRIDGE_CONFIG"], "venv": args.venv,
            "job_log_dir": self.job_log_dir, "ssh_port": int(sandbox.env["SSH_PORT"]),
            "client_key": sandbox.env["CLIENT_KEY"], "known_hosts": sandbox.env["KNOWN_HOSTS"],
            "wrappers_dir": sandbox.env["WRAPPERS_DIR"],
            "oidc_server": issuer.url, "brics_platform": PLATFORM, "jwt_audience": AUDIENCE,
        }
        # auth_state (the projects) is stored encrypted; the key by environment only, never argv.
        self.hub = LocalHub.for_test(args.venv, os.path.join(HERE, "brics_jupyterhub_config.py"), self.workdir,
                                     settings, extra_env={"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)})
        self.client = HubClient(self.public_url)
        self.figures = {}

    # ------------------------------------------------------------ helpers

    def jobs(self, user: str) -> dict:
        """{job_id: (owner, state)} of ``user``'s jobs in the sandbox's cluster (squeue %u)."""
        r = subprocess.run(["squeue", "-h", "-u", user, "-o", "%i %u %T"], capture_output=True, text=True,
                           timeout=30, env={**os.environ, "SLURM_CONF": self.sandbox.env["SLURM_CONF"]})
        if r.returncode != 0:
            raise HubError(f"squeue -u {user} (SLURM_CONF={self.sandbox.env['SLURM_CONF']}) failed: "
                           f"{r.stderr.strip()}")
        out = {}
        for line in r.stdout.splitlines():
            if line.strip():
                job, owner, state = line.split(None, 2)
                out[job] = (owner, state)
        return out

    def login_status(self, token=None) -> int:
        """GET /hub/login as Zenith forwards it (a fresh browser); the HTTP status."""
        headers = {"X-Auth-Id-Token": token} if token else {}
        with HubClient(self.public_url).session as s:
            r = s.get(self.client.url("hub/login"), headers=headers, allow_redirects=False, timeout=30)
        return r.status_code

    def check_refusals(self) -> None:
        cases = [
            ("no X-Auth-Id-Token header", None, 401),
            ("a token for another audience",
             self.issuer.token(SHORT_NAME, projects_claim(ACCOUNTS, PLATFORM), "someone-else"), 401),
            ("a token whose projects are all on another platform",
             self.issuer.token(SHORT_NAME, projects_claim(ACCOUNTS, "other.platform"), AUDIENCE), 403),
        ]
        for what, token, want in cases:
            got = self.login_status(token)
            if got != want:
                raise HubError(f"/hub/login with {what} answered {got}, expected {want} (BricsAuthenticator "
                               f"refuses it); hub log {self.hub.log_path}")
        log("  refused as BricsAuthenticator should: no token 401, wrong audience 401, no project here 403")

    def login(self) -> None:
        c = self.client
        claim = projects_claim(dict(ACCOUNTS, **dict([UNPROVISIONED])), PLATFORM, "other.platform")
        token = self.issuer.token(SHORT_NAME, claim, AUDIENCE)
        r = c._request("GET", "hub/login", expect=(302, 303), allow_redirects=False,
                       headers={"X-Auth-Id-Token": token})
        if not any(k.name.startswith("jupyterhub-session") or k.name == "jupyterhub-hub-login"
                   for k in c.session.cookies):
            raise HubError(f"/hub/login with a valid JWT redirected to {r.headers.get('Location')} "
                           f"but set no login cookie (cookies: {sorted(k.name for k in c.session.cookies)})")
        c.user = SHORT_NAME
        me = c.hub_api("GET", "user").json()
        if me.get("name") != SHORT_NAME:
            raise HubError(f"logged in with short_name {SHORT_NAME} but /hub/api/user says {me.get('name')!r}")
        fetched = [p for p in self.issuer.requests if p.endswith(("openid-configuration", "/certs"))]
        if len(fetched) < 2:
            raise HubError(f"the hub logged {SHORT_NAME} in without fetching the OIDC config and JWKS "
                           f"from {self.issuer.url} (fetched: {self.issuer.requests})")

    def spawn_form(self, chosen: str, fails: bool = False):
        c = self.client
        page = c._request("GET", f"hub/spawn/{SHORT_NAME}", expect=(200,), allow_redirects=False,
                          headers={"Referer": c.url("hub/home")}).text
        missing = [p for p in list(ACCOUNTS) + [UNPROVISIONED[0]] if f'value="{p}"' not in page]
        if missing or 'name="brics_project"' not in page:
            raise HubError(f"the spawn page of {SHORT_NAME} does not offer {missing or 'a brics_project field'} "
                           f"(BricsSlurmSpawner's form from auth_state); page: {page[:800]!r}")
        if 'value="elsewhere.brics"' in page:
            raise HubError("the spawn page offers elsewhere.brics, a project with no resource on "
                           f"{PLATFORM}")
        form = {"brics_project": chosen, "runtime": "01:00:00", "ngpus": "1", "partition": "", "reservation": ""}
        c.spawn_requested_at = time.monotonic()
        r = c._request("POST", f"hub/spawn/{SHORT_NAME}", expect=(200, 302, 303), data=form,
                       allow_redirects=False, headers={"Referer": c.url(f"hub/spawn/{SHORT_NAME}")},
                       timeout=60)
        if r.status_code == 200 and not fails:
            raise HubError(f"POST hub/spawn/{SHORT_NAME} {form} showed the page again instead of spawning: "
                           f"{r.text[:600]!r}")
        log(f"  the form offered {sorted(ACCOUNTS) + [UNPROVISIONED[0]]} (not elsewhere.brics); "
            f"posted brics_project={chosen}")
        return r

    def check_job_owner(self, chosen: str) -> str:
        account = ACCOUNTS[chosen]
        jobs = wait_until(f"a Slurm job of {account} after choosing {chosen}", lambda: self.jobs(account), 30, 0.3)
        if len(jobs) != 1:
            raise HubError(f"choosing {chosen} left {len(jobs)} jobs of {account}: {jobs}")
        (job, (owner, state)), = jobs.items()
        if owner != account:
            raise HubError(f"job {job} belongs to {owner} in squeue %u, expected {account}")
        for other in set(ACCOUNTS.values()) - {account}:
            if self.jobs(other):
                raise HubError(f"choosing {chosen} also left jobs of {other}: {self.jobs(other)}")
        log(f"  job {job}: squeue %u = {owner} ({state})")
        return job

    def check_notebook(self, kernel=None) -> str:
        """Server API, 6*7 in a (new or given) kernel, the job's identity; returns the kernel id."""
        c = self.client
        c.open_server()
        status = c.server_get("api/status")
        if "started" not in status:
            raise HubError(f"{c.url(c.server_path('api/status'))} answered without 'started': {status}")
        kernel = kernel or c.start_kernel()
        reply = c.execute(kernel, "6*7")
        if reply.result != "42":
            raise HubError(f"kernel {kernel} evaluated 6*7 to {reply.result!r} (error {reply.error}, "
                           f"stderr {reply.stderr[-300:]!r})")
        code = "import json, os; print(json.dumps({n: os.environ.get(n) for n in %r}))" % (ENV_NAMES,)
        reply = c.execute(kernel, code)
        try:
            job_env = json.loads(reply.stdout)
        except ValueError:
            raise HubError(f"reading the job's environment failed: stdout {reply.stdout!r}, "
                           f"error {reply.error}") from None
        entry = pwd.getpwnam(ACCOUNT)  # the login host is this machine: its passwd is the authority
        want = {"USER": ACCOUNT, "LOGNAME": ACCOUNT, "HOME": entry.pw_dir}
        wrong = {n: job_env.get(n) for n in want if job_env.get(n) != want[n]}
        if wrong:
            raise HubError(f"the notebook of {SHORT_NAME} ({CHOSEN}) runs with {wrong}, expected {want}")
        self.figures["env"] = job_env
        log(f"  kernel {kernel}: 6*7 = 42; job environment "
            + " ".join(f"{n}={job_env.get(n)}" for n in ENV_NAMES))
        return kernel

    def proxy_pid(self):
        try:
            with open(os.path.join(self.workdir, "proxy.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop_hub(self) -> None:
        proxy = self.proxy_pid()
        self.hub.stop(timeout=30)
        if proxy and pid_alive(proxy):
            wait_until(f"configurable-http-proxy (pid {proxy}) to exit with the hub", lambda: not pid_alive(proxy), 15)

    def restart_hub(self, job: str, kernel: str) -> None:
        c = self.client
        self.stop_hub()
        state = self.jobs(ACCOUNT).get(job, (None, None))[1]
        if state != "RUNNING":
            raise HubError(f"after stopping the hub, job {job} of {ACCOUNT} is {state!r}, not RUNNING")
        t0 = time.monotonic()
        self.hub.start(self.public_url)
        c.spawn_requested_at = t0
        self.figures["restart_ready_s"] = c.wait_ready(timeout=60)
        if list(self.jobs(ACCOUNT)) != [job]:
            raise HubError(f"after the hub restart {ACCOUNT} has jobs {self.jobs(ACCOUNT)}, not just {job}")
        if kernel not in c.list_kernels():
            raise HubError(f"after the hub restart the server lists kernels {c.list_kernels()}, not {kernel}")
        self.check_notebook(kernel)
        log(f"  hub restarted under job {job}: ready again after {self.figures['restart_ready_s']:.2f} s, "
            f"same job, same kernel")

    def failed_start(self) -> None:
        """Start the unprovisioned project: the hub must give up (the bridge finds no such account)."""
        project, account = UNPROVISIONED
        r = self.spawn_form(project, fails=True)
        if r.status_code == 200:
            # JupyterHub shows the form again with the error when the start failed at once.
            m = re.search(r"Error:\s*([^<]*)<", r.text)
            if not m:
                raise HubError(f"starting {project} showed the spawn page again without an error: "
                               f"{r.text[-600:]!r}")
            log(f"  the spawn page says: Error: {' '.join(m.group(1).split())}")

        def given_up():
            model = self.client.user_model()
            server = (model.get("servers") or {}).get("")
            if server and server.get("ready"):
                raise HubError(f"{SHORT_NAME}'s server became ready as {account}, an account the login "
                               "host does not have")
            return not (server or {}).get("pending") and not model.get("pending")

        wait_until(f"the hub to give up starting {project} ({account} has no account on the login host)",
                   given_up, 60, 0.3)
        hub_log = self.hub.log_tail(400)
        if account not in hub_log:
            raise HubError(f"the failed start of {project} left no trace of {account} in the hub log")
        log(f"  {project} ({account}, not on the login host): the start failed, as it must")

    def stop_and_gone(self, job: str, account: str) -> float:
        took = self.client.stop_server(timeout=60)
        wait_until(f"job {job} of {account} to leave Slurm's queue after the stop",
                   lambda: job not in self.jobs(account), 30)
        log(f"  stopped in {took:.2f} s; job {job} is gone from squeue")
        return took

    def diagnostics(self) -> str:
        parts = hub_and_job_logs(self.hub, self.job_log_dir)
        return "\n".join(parts)

    # ----------------------------------------------------------------- run

    def run(self) -> None:
        c = self.client
        log(f"hub on {self.public_url}, OIDC issuer (test double) {self.issuer.url}")
        self.hub.start(self.public_url)
        self.check_refusals()
        self.login()
        log(f"  {SHORT_NAME} logged in with a JWT (BricsAuthenticator fetched the OIDC config and JWKS)")
        self.failed_start()
        self.spawn_form(CHOSEN)
        job = self.figures["job"] = self.check_job_owner(CHOSEN)
        try:
            self.figures["ready_s"] = c.wait_ready(timeout=100)
        except HubError as exc:
            raise HubError(f"{exc}. The job {job} ran as {ACCOUNT}; if its output shows a PermissionError "
                           "under another account's home, the bridge lacks the remote HOME fix") from None
        log(f"  ready after {self.figures['ready_s']:.2f} s (press start -> hub says ready)")
        kernel = self.check_notebook()
        self.restart_hub(job, kernel)
        self.figures["stop_s"] = self.stop_and_gone(job, ACCOUNT)
        # The other project, from the same session: a new job as that account.
        self.spawn_form("proj1.brics")
        job1 = self.figures["job1"] = self.check_job_owner("proj1.brics")
        self.figures["ready1_s"] = c.wait_ready(timeout=100)
        log(f"  proj1.brics: ready after {self.figures['ready1_s']:.2f} s")
        self.stop_and_gone(job1, ACCOUNTS["proj1.brics"])
        self.stop_hub()

    def cleanup(self) -> None:
        proxy = self.proxy_pid()
        if self.hub.proc and self.hub.proc.poll() is None:
            try:
                self.hub.stop(timeout=20)
            except HubError as exc:
                log(f"cleanup: {exc}")
        if proxy:
            stop_pid(proxy)
        for account in ACCOUNTS.values():
            try:
                for job in self.jobs(account):
                    log(f"cleanup: cancelling leftover job {job} of {account}")
                    self.sandbox.scancel(job)
            except HubError as exc:
                log(f"cleanup: {exc}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True, help="an empty private directory (0755: the job's user reads the venv)")
    args = ap.parse_args()
    args.bridge = os.path.realpath(args.bridge)
    t0 = time.monotonic()
    sandbox = Sandbox(os.path.join(args.work, "sb"))
    failure = None
    run = None
    try:
        log(f"sandbox up in {sandbox.dir}")
        sandbox.up()
        with OidcIssuer() as issuer:
            run = BricsRun(args, sandbox, issuer)
            try:
                run.run()
            except (HubError, AssertionError, OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
                failure = (str(exc), run.diagnostics())
            finally:
                run.cleanup()
    finally:
        sandbox.down()
    took = time.monotonic() - t0
    if failure:
        print(f"\nnot ok - hub.brics: {failure[0]}\n{failure[1]}")
        return 1
    f = run.figures
    env = f.get("env", {})
    print(f"\nok - hub.brics: BricsAuthenticator (JWT) + BridgeBricsSlurmSpawner on JupyterHub 3.0: "
          f"{SHORT_NAME} chose {CHOSEN}, job {f.get('job')} ran as {ACCOUNT} "
          f"(USER={env.get('USER')} LOGNAME={env.get('LOGNAME')} HOME={env.get('HOME')}), "
          f"ready in {f.get('ready_s', 0):.2f} s, again {f.get('restart_ready_s', 0):.2f} s after a hub restart, "
          f"stopped in {f.get('stop_s', 0):.2f} s; then proj1.brics: job {f.get('job1')} as "
          f"{ACCOUNTS['proj1.brics']}, ready in {f.get('ready1_s', 0):.2f} s; {took:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
