"""The thousand-user benchmark (issue 13): per-user against coalesced status
mode at 100, 300 and 1,000 simulated hub users in one run, then a spawn
storm. Entry point: tests/bench/thousand.py (started by
`tests/bench/run.sh --thousand-users`, which brings the sandbox up with
its bulk users and down again). Options: --help. Standard library only,
plus matplotlib (Debian's python3-matplotlib) for the picture."""
import argparse
import datetime
import json
import os
import pwd
import shlex
import subprocess
import sys
import time

from ssbbench.daemon import Daemon
from ssbbench.measure import CpuMeter, load_env_file, loadavg, log
from ssbbench.polling import Meter, PollWorkload
from ssbbench.slurmctl import Slurm
from ssbbench.storm import run_storm
from ssbbench.thousand_report import evaluate, markdown

MODES = ("per_user", "coalesced")
CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SMOKE = {"users": "20", "interval": 2.0, "intervals": 2.0, "warmup": 1.0, "running_every": 10, "storm_users": 20,
         "storm_span": 2.0, "extra_windows": ""}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sandbox-env", required=True, help="DIR/sandbox.env of a running sandbox with --bulk-users")
    ap.add_argument("--bridge", required=True, help="the slurm-ssh-bridge binary")
    ap.add_argument("--work", required=True, help="scratch directory (daemon logs)")
    ap.add_argument("--json-out", default="build/bench-thousand.json", help="JSON result (default: %(default)s)")
    ap.add_argument("--plot", default=None,
                    help="PNG of the curve (default: bench-thousand-users.png next to --json-out; '' for none)")
    ap.add_argument("--users", default="100,300,1000", help="user counts (default: %(default)s)")
    ap.add_argument("--modes", default=",".join(MODES), help="status modes (default: %(default)s)")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between a user's polls (default: %(default)s)")
    ap.add_argument("--extra-windows", default="1000",
                    help="status.window_ms values (ms) also run in coalesced mode at the largest user count, "
                         "besides the default window ('' for none; default: %(default)s)")
    ap.add_argument("--jitter", type=float, default=0.1, help="+- share of the interval (default: %(default)s)")
    ap.add_argument("--intervals", type=float, default=2.0, help="measured window, in intervals (default: %(default)s)")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of polling before the window (default: %(default)s)")
    ap.add_argument("--running-every", type=int, default=20, help="every Nth user's job runs, the rest are held")
    ap.add_argument("--storm-users", type=int, default=200, help="submits in the spawn storm (0: no storm)")
    ap.add_argument("--storm-span", type=float, default=10.0, help="seconds the storm's submits start within")
    ap.add_argument("--call-timeout", type=float, default=60.0, help="seconds before a CLI call counts as failed")
    ap.add_argument("--smoke", action="store_true",
                    help="CI variant: " + ", ".join(f"{k}={v}" for k, v in SMOKE.items())
                    + "; fails unless zero errors and the storm's sets are equal")
    args = ap.parse_args(argv)
    if args.plot is None:
        args.plot = os.path.join(os.path.dirname(os.path.abspath(args.json_out)), "bench-thousand-users.png")
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    args.users = sorted({int(u) for u in args.users.split(",") if u})
    args.modes = [m for m in args.modes.split(",") if m]
    args.extra_windows = [int(w) for w in str(args.extra_windows).split(",") if w]
    for m in args.modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r} (one of {', '.join(MODES)})")
    if not args.users or min(args.users) < 1:
        ap.error("--users needs positive counts")
    if args.interval <= 0 or args.intervals <= 0 or not 0 <= args.jitter < 1 or args.running_every < 1:
        ap.error("--interval and --intervals must be > 0, --jitter in [0, 1), --running-every >= 1")
    return args


def coalesced_available(bridge):
    """Whether this build has [status] mode (config --reference lists it)."""
    out = subprocess.run([bridge, "config", "--reference"], capture_output=True, text=True, check=False).stdout
    return "`status.mode`" in out


def bulk_users(sb, count):
    path = sb.get("SANDBOX_BULK_USERS_FILE", "")
    if not path:
        raise RuntimeError("the sandbox has no bulk users: bring it up with `sandbox.sh up DIR --bulk-users N` "
                           "(run.sh --thousand-users does)")
    with open(path, encoding="ascii") as handle:
        names = [line.strip() for line in handle if line.strip()]
    if len(names) < count:
        raise RuntimeError(f"the sandbox has {len(names)} bulk users ({path}), this run needs {count}: "
                           f"bring it up with --bulk-users {count}")
    return [pwd.getpwnam(n) for n in names[:count]]


class Run:
    def __init__(self, args):
        self.args = args
        self.sb = load_env_file(args.sandbox_env)
        self.bridge = os.path.realpath(args.bridge)
        self.conf = self.sb["BRIDGE_CONFIG"]
        self.work = os.path.realpath(args.work)
        self.env = {"PATH": CLIENT_PATH, "HOME": pwd.getpwuid(os.getuid()).pw_dir, "LANG": "C.UTF-8"}
        self.slurm = Slurm(dict(self.env, SLURM_CONF=self.sb["SLURM_CONF"]))
        self.tag = f"{self.sb['SANDBOX_ID']}-{os.getpid()}"
        self.cpu = None
        self.daemon = None

    def daemon_for(self, mode, window_ms=None):
        extra = {"SLURM_SSH_BRIDGE_STATUS_MODE": mode} if mode == "coalesced" else {}
        if window_ms:
            extra["SLURM_SSH_BRIDGE_STATUS_WINDOW_MS"] = str(window_ms)
        return Daemon(self.bridge, self.conf, self.work, self.env, extra, log_name=f"daemon-{mode}.log")

    def one_config(self, jobs, mode, window_ms=None):
        """One user count in one mode (WINDOW_MS: coalesced with that
        status.window_ms instead of the default; labelled coalesced-Wms)."""
        a = self.args
        self.daemon = self.daemon_for(mode, window_ms)
        started = self.daemon.start()
        try:
            workload = PollWorkload(self.bridge, self.conf, self.env, jobs, a.interval, a.jitter, a.call_timeout)
            result = workload.run(Meter(self.cpu, self.daemon, self.slurm), a.warmup, a.interval * a.intervals)
            mem = self.daemon.memory()
            status = self.daemon.status() or {}
        finally:
            self.daemon.stop()
        result.update(mode=f"{mode}-{window_ms}ms" if window_ms else mode, window_ms=window_ms, daemon={"VmRSS_kib": mem.get("VmRSS"), "VmHWM_kib": mem.get("VmHWM"),
                                         "threads": mem.get("Threads"), "status": status.get("status"),
                                         "pool": started.get("pool")})
        return result

    def storm(self, mode):
        a = self.args
        users = [u.pw_name for u in bulk_users(self.sb, a.storm_users)]
        self.daemon = self.daemon_for(mode)
        self.daemon.start()
        try:
            log(f"spawn storm: {a.storm_users} submits within {a.storm_span:g} s through the daemon ({mode})")
            result = run_storm(self.bridge, self.conf, self.env, users, self.slurm, f"ssb-storm-{self.tag}",
                               a.storm_span, a.call_timeout)
        finally:
            self.daemon.stop()
        result["mode"] = mode
        return result

    def execute(self):
        a = self.args
        have_coalesced = coalesced_available(self.bridge)
        skipped = {}
        modes = []
        for m in a.modes:
            if m == "coalesced" and not have_coalesced:
                skipped[m] = "not run: mode not available on this branch (config --reference has no status.mode)"
                log(f"coalesced mode skipped: {skipped[m]}")
            else:
                modes.append(m)
        users = bulk_users(self.sb, max(a.users))
        slurm_pids = [self.sb["SLURMCTLD_PID"], self.sb["MUNGED_PID"]] + self.sb["SLURMD_PIDS"].split()
        self.cpu = CpuMeter(self.tag, [self.sb["SSHD_PID"]], slurm_pids)
        if not self.cpu.enabled:
            raise RuntimeError("login-host CPU cannot be measured: the cpuacct cgroup hierarchy is not mounted")
        name = f"ssb-poll-{self.tag}"
        configs, storm = [], None
        try:
            log(f"setup: one job per user for {len(users)} users straight into Slurm (sbatch --uid as root), "
                f"every {a.running_every}th running, the rest held")
            t = time.monotonic()
            all_jobs = self.slurm.populate(users, name, a.running_every)
            log(f"setup: {len(all_jobs)} jobs in their states after {time.monotonic() - t:.0f} s")
            for i, n in enumerate(a.users):
                jobs = {u.pw_name: all_jobs[u.pw_name] for u in users[:n]}
                # Alternate which mode goes first, so a drift in the machine's
                # load does not always favour the same one.
                for mode in (modes if i % 2 == 0 else modes[::-1]):
                    log(f"{n} users, {mode}: polling every {a.interval:g} s +-{a.jitter * 100:.0f}%, "
                        f"window {a.interval * a.intervals:g} s")
                    r = self.one_config(jobs, mode)
                    configs.append(r)
                    log(f"  {r['polls']} polls ({r['polls_per_s']}/s), errors {r['errors']}, "
                        f"p50 {r['latency_ms']['p50']} ms p99 {r['latency_ms']['p99']} ms, "
                        f"job-info RPC {r['rpc']['job_info_per_s']}/s, login CPU {r['cpu_s_per_s']['login']} s/s")
            if "coalesced" in modes:
                for w in a.extra_windows:
                    n = a.users[-1]
                    log(f"{n} users, coalesced with status.window_ms = {w}")
                    r = self.one_config({u.pw_name: all_jobs[u.pw_name] for u in users[:n]}, "coalesced", w)
                    configs.append(r)
                    log(f"  {r['polls']} polls, errors {r['errors']}, p99 {r['latency_ms']['p99']} ms, "
                        f"job-info RPC {r['rpc']['job_info_per_s']}/s, login CPU {r['cpu_s_per_s']['login']} s/s")
            if a.storm_users:
                storm = self.storm("coalesced" if "coalesced" in modes else modes[0])
                log(f"  storm: {storm['acknowledged']} acknowledged, {storm['refused']} refused, "
                    f"{storm['unclear']} unclear; Slurm lists {storm['slurm_jobs']}; ok={storm['ok']}")
        finally:
            if self.daemon:
                self.daemon.stop()
            self.cpu.close()
            left = self.slurm.cancel_name(name)
            if left:
                raise RuntimeError(f"{len(left)} poll jobs still active after cancelling: {' '.join(left[:10])}")
        return configs, storm, skipped, have_coalesced


def git_commit():
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          check=False)
    return proc.stdout.strip() or None


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("thousand.py: must run as root (sdiag -r, cpuacct cgroups, sbatch --uid)", file=sys.stderr)
        return 2
    run = Run(args)
    started = time.time()
    t0 = time.monotonic()
    load_start = loadavg()
    try:
        configs, storm, skipped, have_coalesced = run.execute()
    except Exception as exc:  # report, fail (clean-up ran in execute)
        print(f"thousand.py: FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    version = subprocess.run([run.bridge, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip().split("\n")[0]
    report = {
        "meta": {
            "started": datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
            "duration_s": round(time.monotonic() - t0, 1), "nproc": os.cpu_count(), "loadavg_start": load_start,
            "loadavg_end": loadavg(), "bridge_version": version, "commit": git_commit(),
            "command": " ".join(shlex.quote(a) for a in sys.argv), "smoke": args.smoke,
            "coalesced_available": have_coalesced, "skipped": skipped,
            "client": "one CLI process per poll (slurm-ssh-bridge --mode daemon --user U query JOB), as batchspawner",
            "setup": "jobs submitted straight to Slurm as root (sbatch --uid), not through the bridge",
        },
        "config": {k: getattr(args, k) for k in ("users", "modes", "interval", "jitter", "intervals", "warmup",
                                                 "running_every", "storm_users", "storm_span", "call_timeout",
                                                 "extra_windows")},
        "results": configs, "storm": storm,
    }
    report["targets"] = evaluate(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
    with open(args.json_out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    if args.plot:
        from ssbbench.plot import plot_curve  # matplotlib only when a picture is wanted
        plot_curve(report, args.plot)
        log(f"curve written to {args.plot}")
    sys.stdout.write(markdown(report))
    log(f"JSON written to {args.json_out}")
    failures = []
    if storm is not None and not storm["ok"]:
        failures += [c for c, ok in storm["checks"].items() if not ok]
    if args.smoke:
        failures += [f"{r['users']} users {r['mode']}: {r['errors']} poll errors {r['error_kinds']}"
                     for r in configs if r["errors"] or not r["polls"]]
        failures += [f"{r['users']} users per_user: the login-host CPU accounting never saw sudo under sshd "
                     f"(saw {r['login_processes_seen']})" for r in configs
                     if r["mode"] == "per_user" and "sudo" not in r["login_processes_seen"]]
        if storm is not None and storm["acknowledged"] != storm["submits"]:
            failures.append(f"storm: {storm['acknowledged']} of {storm['submits']} submits acknowledged")
    for f in failures:
        print(f"thousand.py: FAILED: {f}", file=sys.stderr)
    return 1 if failures else 0
