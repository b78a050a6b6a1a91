"""What is measured: the five paths, the two operations, and the phases
(latency at concurrency 1, throughput per level) that run them (Bench)."""
import concurrent.futures
import os
import pwd
import re
import shlex
import subprocess
import threading
import time

from ssbbench.daemon import Daemon
from ssbbench.floor_client import FloorHelper
from ssbbench.measure import (CallResult, CpuMeter, SshdLog, children_cpu_ns, count_kinds, load_env_file, loadavg, log,
                              machine_busy_ns, run_timed, self_cpu_ns, summarize_ms, task_cpu_ns, tcp_ports)


PATHS = ("floor", "ssh", "ssh-mux", "bridge-direct", "bridge-daemon")
OPS = ("query", "pair")
CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What sshd gives a session when no PATH is configured (OpenSSH's default).
SESSION_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"
JOB_ID_RE = re.compile(r"[0-9]{1,20}(;[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?")

# The job script submitted by every `pair`: held, so it never starts (no
# slurmstepd noise on a 2-core machine), and cancelled right after.
PAIR_SCRIPT = """#!/bin/bash
#SBATCH --job-name=ssb-bench-pair
#SBATCH --output=/dev/null
#SBATCH --hold
#SBATCH --time=5
sleep 300
"""
# The long-running job every `query` looks at.
QUERY_SCRIPT = """#!/bin/bash
#SBATCH --job-name=ssb-bench-query
#SBATCH --output=/dev/null
#SBATCH --time=60
sleep 3600
"""


class Bench:
    def __init__(self, args):
        self.args = args
        self.sb = load_env_file(args.sandbox_env)
        self.user = args.user
        self.bridge = os.path.realpath(args.bridge)
        self.work = os.path.realpath(args.work)
        self.conf = self.sb["BRIDGE_CONFIG"]
        self.wrappers = self.sb["WRAPPERS_DIR"]
        self.sshd_log = SshdLog(self.sb["SSHD_LOG"])
        self.control_path = os.path.join(self.work, "mux-%C")
        self.daemon = None            # a daemon.Daemon once started
        self.query_job = None
        self.submitted = set()        # every job id a pair submitted
        self.submitted_lock = threading.Lock()
        svc = pwd.getpwnam(self.sb.get("SANDBOX_SERVICE_USER", "jupyterspawner"))
        self.svc = svc
        self.client_env = {"PATH": CLIENT_PATH, "HOME": pwd.getpwuid(os.getuid()).pw_dir, "LANG": "C.UTF-8"}
        # The environment sshd gives the service account's session (see
        # sshd(8) "LOGIN PROCESS"), plus the sandbox's SetEnv SLURM_CONF.
        self.floor_env = {
            "PATH": SESSION_PATH, "HOME": svc.pw_dir, "USER": svc.pw_name, "LOGNAME": svc.pw_name,
            "SHELL": svc.pw_shell, "SLURM_CONF": self.sb["SLURM_CONF"],
        }
        self.slurm_env = dict(self.client_env, SLURM_CONF=self.sb["SLURM_CONF"])
        self.cpu = None
        self.mux_pid = None
        self.accepted_total = {p: 0 for p in PATHS}
        self.script = PAIR_SCRIPT
        self.floor = FloorHelper(self.work, svc, self.floor_env)

    # ---- sshd logins -----------------------------------------------------
    def logins(self, running):
        """sshd logins since the last call, attributed to a path: by client
        port to the daemon's and the ControlMaster's own connections (which
        may open while another path runs), else to RUNNING. Returns the
        count for RUNNING; every login is added to accepted_total."""
        ports = self.sshd_log.take()
        if not ports:
            return 0
        owners = {}
        if self.daemon is not None:
            owners.update({port: "bridge-daemon" for port in tcp_ports(self.daemon.pid)})
        if self.find_mux_master():
            owners.update({port: "ssh-mux" for port in tcp_ports(self.mux_pid)})
        mine = 0
        for port in ports:
            path = owners.get(port, running) or "unattributed"
            self.accepted_total[path] = self.accepted_total.get(path, 0) + 1
            mine += path == running
        return mine

    # ---- CPU accounting --------------------------------------------------
    def start_cpu_meter(self):
        slurm = [self.sb["SLURMCTLD_PID"], self.sb["MUNGED_PID"]] + self.sb["SLURMD_PIDS"].split()
        self.cpu = CpuMeter(f"{self.sb['SANDBOX_ID']}-{os.getpid()}", [self.sb["SSHD_PID"]], slurm)

    def find_mux_master(self):
        """The ControlMaster process (ControlPersist forks it away from us)."""
        if self.mux_pid and os.path.exists(f"/proc/{self.mux_pid}"):
            return self.mux_pid
        self.mux_pid = None
        prefix = f"ssh: {os.path.join(self.work, 'mux-')}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmd = handle.read()
            except OSError:
                continue
            if cmd.startswith(prefix) and b"[mux]" in cmd:
                self.mux_pid = int(entry)
                break
        return self.mux_pid

    def snapshot(self):
        floor_children, floor_self = self.floor.cpu_ns()
        snap = {"client": children_cpu_ns() + floor_children, "harness": self_cpu_ns() + floor_self,
                "machine": machine_busy_ns(), "wall": time.monotonic_ns(), "login": self.cpu.usage("login") if self.cpu else 0,
                "slurm": self.cpu.usage("slurm") if self.cpu else 0,
                "bridge-daemon": self.daemon.cpu_ns() if self.daemon else 0}
        mux = self.mux_pid if self.mux_pid and os.path.exists(f"/proc/{self.mux_pid}") else None
        snap["ssh-mux"] = task_cpu_ns(mux) if mux else 0
        return snap

    def settle(self, before_procs, limit_s):
        """Wait until the login host's processes started since BEFORE_PROCS
        are gone (sshd tears sessions down after the client has its answer),
        so their CPU is charged to the call that caused it."""
        if not self.cpu or not self.cpu.enabled:
            return
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.cpu.procs("login") <= before_procs:
                return
            time.sleep(0.005)

    @staticmethod
    def foreign_share(before, after):
        """Share of the machine's CPUs used by processes that are not part
        of this run (other test suites...) between two snapshots: all busy
        CPU time minus what the harness, the commands, the helpers, the
        login host's sshd and Slurm used."""
        ours = sum(after[k] - before[k] for k in ("client", "harness", "login", "slurm", "bridge-daemon", "ssh-mux"))
        busy = after["machine"] - before["machine"]
        span = (after["wall"] - before["wall"]) * (os.cpu_count() or 1)
        if span <= 0:
            return None
        return round(max(0.0, (busy - ours) / span), 3)

    @staticmethod
    def cpu_delta(path, before, after):
        """Per-side CPU (ms) between two snapshots, the helper only for its path."""
        d = {k: (after[k] - before[k]) / 1e6 for k in ("client", "login", "slurm")}
        d["helper"] = (after[path] - before[path]) / 1e6 if path in ("bridge-daemon", "ssh-mux") else 0.0
        return d

    # ---- the five paths -------------------------------------------------
    def wrapper(self, op):
        name = {"submit": "slurmspawner_sbatch", "query": "slurmspawner_squeue", "cancel": "slurmspawner_scancel"}[op]
        return os.path.join(self.wrappers, name)

    def remote_command(self, op, job_id):
        """What the ssh paths run: the same sudo line the bridge sends."""
        sudo = f"exec /usr/bin/sudo -n -u {shlex.quote(self.user)} -- {shlex.quote(self.wrapper(op))}"
        if op == "submit":
            return sudo
        return f"SLURMSPAWNER_JOB_ID={shlex.quote(job_id)}; export SLURMSPAWNER_JOB_ID; {sudo}"

    def ssh_argv(self, mux):
        argv = [
            "ssh", "-F", "/dev/null", "-T",
            "-i", self.sb["CLIENT_KEY"], "-p", self.sb["SSH_PORT"],
            "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.sb['KNOWN_HOSTS']}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=10",
        ]
        if mux:
            argv += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}", "-o", "ControlPersist=60"]
        return argv

    def call(self, path, op, job_id=None):
        """One command through PATH; returns a CallResult (correctness checked)."""
        stdin = (self.script if op == "submit" else "").encode()
        if path == "floor":
            argv = ["/usr/bin/sudo", "-n", "-u", self.user, "--", self.wrapper(op)]
            env = dict(self.floor_env)
            if op != "submit":
                env["SLURMSPAWNER_JOB_ID"] = job_id
        elif path in ("ssh", "ssh-mux"):
            argv = self.ssh_argv(path == "ssh-mux") + [
                f"{self.sb['SSH_USER']}@{self.sb['SSH_HOST']}", self.remote_command(op, job_id)]
            env = self.client_env
        else:
            mode = "direct" if path == "bridge-direct" else "daemon"
            argv = [self.bridge, "--config", self.conf, "--mode", mode, "--user", self.user, op]
            if op != "submit":
                argv.append(job_id)
            env = self.client_env
        if path == "floor":
            rc, out, err, ms = self.floor.run(argv, stdin, env, self.args.call_timeout, self.svc.pw_dir)
        else:
            rc, out, err, ms = run_timed(argv, stdin, env, self.args.call_timeout)
        out = out.decode("utf-8", "replace")
        err = err.decode("utf-8", "replace")
        if rc is None:
            return CallResult(False, ms, None, out, err, f"timeout after {self.args.call_timeout} s")
        why = None
        if op == "query":
            if rc != 0:
                why = f"exit {rc}"
            elif out != "RUNNING node1\n":
                why = f"wrong answer {out[:60]!r}"
        elif op == "submit":
            text = out.strip()
            if rc != 0:
                why = f"exit {rc}"
            elif not JOB_ID_RE.fullmatch(text):
                why = f"no job id in {out[:60]!r}"
            else:
                with self.submitted_lock:
                    self.submitted.add(text.split(";")[0])
        elif op == "cancel":
            if rc != 0:
                why = f"exit {rc}"
            elif out.strip():
                why = f"unexpected output {out[:60]!r}"
        if why and err.strip():
            why += ": " + err.strip().splitlines()[-1][:160]
        return CallResult(why is None, ms, rc, out, err, why)

    def pair(self, path):
        """submit then cancel through PATH: (ok, total ms, submit ms, cancel ms, why)."""
        sub = self.call(path, "submit")
        if not sub.ok:
            return (False, sub.ms, sub.ms, None, "submit: " + sub.why)
        job_id = sub.out.strip()
        can = self.call(path, "cancel", job_id)
        if not can.ok:
            return (False, sub.ms + can.ms, sub.ms, can.ms, "cancel: " + can.why)
        return (True, sub.ms + can.ms, sub.ms, can.ms, None)

    def one(self, path, op):
        """One unit of work of OP: (ok, ms, detail dict, why)."""
        if op == "query":
            r = self.call(path, "query", self.query_job)
            return r.ok, r.ms, None, r.why
        ok, ms, sub_ms, can_ms, why = self.pair(path)
        return ok, ms, {"submit": sub_ms, "cancel": can_ms}, why

    # ---- daemon --------------------------------------------------------
    def start_daemon(self):
        self.daemon = Daemon(self.bridge, self.conf, self.work, self.client_env)
        self.daemon.start()

    def stop_daemon(self):
        if self.daemon is not None:
            self.daemon.stop()

    def stop_mux_master(self):
        argv = self.ssh_argv(True) + ["-O", "exit", f"{self.sb['SSH_USER']}@{self.sb['SSH_HOST']}"]
        proc = subprocess.run(argv, capture_output=True, env=self.client_env, timeout=20, check=False)
        return proc.returncode == 0

    # ---- Slurm bookkeeping (local, as root) ------------------------------
    def active_jobs(self):
        proc = subprocess.run(["squeue", "-h", "-u", self.user, "-t", "PENDING,RUNNING,CONFIGURING,SUSPENDED,COMPLETING",
                               "-o", "%i %T"], capture_output=True, text=True, env=self.slurm_env, timeout=60,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"squeue failed: {proc.stderr.strip()}")
        return [line.split() for line in proc.stdout.splitlines() if line.strip()]

    def sweep_jobs(self, keep=None):
        """Cancel any active job of the user but KEEP; returns the ids swept."""
        left = [job for job, _ in self.active_jobs() if job != keep]
        if left:
            subprocess.run(["scancel"] + left, env=self.slurm_env, timeout=60, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                if not [j for j, _ in self.active_jobs() if j in left]:
                    break
                time.sleep(0.2)
        return left

    def start_query_job(self):
        rc, out, err, _ = self.floor.run(["/usr/bin/sudo", "-n", "-u", self.user, "--", self.wrapper("submit")],
                                         QUERY_SCRIPT.encode(), self.floor_env, 60, self.svc.pw_dir)
        job = out.decode().strip().split(";")[0]
        if rc != 0 or not job.isdigit():
            raise RuntimeError(f"cannot submit the query job (exit {rc}): {err.decode().strip()}")
        self.query_job = job
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = self.call("floor", "query", job)
            if r.ok:
                log(f"query job {job} is RUNNING on node1")
                return
            time.sleep(0.5)
        raise RuntimeError(f"job {job} did not reach RUNNING node1 within 60 s")

    # ---- phases ----------------------------------------------------------
    def warm(self, path):
        """One untimed call, so the ControlMaster and the daemon's pool are up."""
        self.call(path, "query", self.query_job)

    def latency_phase(self, op, n):
        """Concurrency 1, the paths interleaved call by call so that the
        machine's background load drifts over all of them alike."""
        samples = {p: [] for p in self.args.paths}
        details = {p: {"submit": [], "cancel": []} for p in self.args.paths}
        errors = {p: [] for p in self.args.paths}
        accepted = {p: 0 for p in self.args.paths}
        cpu = {p: {"client": 0.0, "helper": 0.0, "login": 0.0, "slurm": 0.0} for p in self.args.paths}
        paths = list(self.args.paths)
        self.logins(None)
        phase_start = None
        for i in range(n + self.args.warmup):
            if i == self.args.warmup:
                phase_start = self.snapshot()
            order = paths[i % len(paths):] + paths[:i % len(paths)]
            for p in order:
                warm = i < self.args.warmup
                if p == "ssh-mux" and not warm:
                    self.find_mux_master()
                procs = self.cpu.procs("login") if self.cpu else set()
                before = self.snapshot()
                ok, ms, detail, why = self.one(p, op)
                if not warm:
                    self.settle(procs, 2.0)
                after = self.snapshot()
                accepted[p] += self.logins(p)
                if warm:
                    continue
                for k, v in self.cpu_delta(p, before, after).items():
                    cpu[p][k] += v
                if ok:
                    samples[p].append(ms)
                    if detail:
                        details[p]["submit"].append(detail["submit"])
                        details[p]["cancel"].append(detail["cancel"])
                else:
                    errors[p].append(why)
        foreign = self.foreign_share(phase_start, self.snapshot()) if phase_start else None
        out = {}
        for p in paths:
            entry = summarize_ms(samples[p])
            entry["foreign_cpu_share"] = foreign
            entry["calls"] = n
            entry["errors"] = len(errors[p])
            entry["error_kinds"] = count_kinds(errors[p])
            entry["sshd_accepted"] = accepted[p]
            if self.cpu and self.cpu.enabled:
                entry["cpu_ms_per_call"] = {k: round(v / n, 2) for k, v in cpu[p].items()}
                entry["cpu_ms_per_call"]["total"] = round(sum(cpu[p].values()) / n, 2)
            if op == "pair":
                entry["submit"] = summarize_ms(details[p]["submit"])
                entry["cancel"] = summarize_ms(details[p]["cancel"])
            out[p] = entry
        return out

    def throughput_phase(self, path, op, concurrency, n):
        """N units of OP through PATH with CONCURRENCY in flight."""
        self.warm(path)
        if path == "ssh-mux":
            self.find_mux_master()
        procs = self.cpu.procs("login") if self.cpu else set()
        self.logins(path)  # the warm-up call's, if any
        load0 = loadavg()
        results = []
        before = self.snapshot()
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(self.one, path, op) for _ in range(n)]
            for f in futures:
                results.append(f.result())
        wall = time.monotonic() - t0
        self.settle(procs, 5.0)
        time.sleep(0.2)  # sshd writes its log lines asynchronously
        after = self.snapshot()
        accepted = self.logins(path)
        ok = [r for r in results if r[0]]
        whys = [r[3] for r in results if not r[0]]
        cpu = None
        if self.cpu and self.cpu.enabled:
            cpu = {k: round(v / max(1, len(ok)), 2) for k, v in self.cpu_delta(path, before, after).items()}
            cpu["total"] = round(sum(cpu.values()), 2)
        return {
            "foreign_cpu_share": self.foreign_share(before, after),
            "cpu_ms_per_ok_call": cpu,
            "calls": n, "concurrency": concurrency, "ok": len(ok), "errors": len(whys),
            "wall_s": round(wall, 3), "ok_per_s": round(len(ok) / wall, 2) if wall > 0 else None,
            "latency_ok": summarize_ms([r[1] for r in ok]),
            "error_kinds": count_kinds(whys), "sshd_accepted": accepted, "loadavg_start": load0,
        }
