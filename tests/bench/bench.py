#!/usr/bin/python3
"""Benchmark: slurm-ssh-bridge against a fresh ssh per call and OpenSSH
ControlMaster, in one run, against a running sandbox (tests/sandbox/sandbox.sh).

Normally started by tests/bench/run.sh, which brings the sandbox up and down:

    /usr/bin/python3 tests/bench/bench.py --sandbox-env DIR/sandbox.env \
        --bridge build/slurm-ssh-bridge --work WORKDIR [--json-out FILE]

Five paths run the same three wrappers as the same user on the same job:

  floor          sudo -n -u USER WRAPPER, locally, as the service account
  ssh            ssh -i KEY jupyterspawner@127.0.0.1 '... exec sudo -n -u USER -- WRAPPER'
  ssh-mux        the same with ControlMaster=auto + ControlPersist=60
  bridge-direct  slurm-ssh-bridge --mode direct (one libssh connection per call)
  bridge-daemon  slurm-ssh-bridge --mode daemon, served by `slurm-ssh-bridge serve`

Two operations: `query` (a RUNNING job; the answer must be exactly
"RUNNING node1") and `pair` (submit, which must print a job id, then cancel
that job through the same path; both must succeed). Every call is one
process started by this harness, as batchspawner starts one per command.

Standard library only (Debian's /usr/bin/python3). Must run as root.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import pwd
import re
import resource
import shlex
import signal
import subprocess
import sys
import threading
import time

PATHS = ("floor", "ssh", "ssh-mux", "bridge-direct", "bridge-daemon")
OPS = ("query", "pair")
CLIENT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What sshd gives a session when no PATH is configured (OpenSSH's default).
SESSION_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/games"
ACCEPT_RE = re.compile(rb"Accepted publickey for \S+ from \S+ port ([0-9]+)")
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


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load_env_file(path):
    """Parse sandbox.env (`export NAME='value'` lines)."""
    values = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line.startswith("export "):
                continue
            words = shlex.split(line)
            if len(words) == 2 and "=" in words[1]:
                name, _, value = words[1].partition("=")
                values[name] = value
    return values


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize_ms(values):
    vals = sorted(values)
    if not vals:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None, "min": None, "max": None}
    return {
        "n": len(vals),
        "p50": round(percentile(vals, 0.50), 2),
        "p95": round(percentile(vals, 0.95), 2),
        "p99": round(percentile(vals, 0.99), 2),
        "mean": round(sum(vals) / len(vals), 2),
        "min": round(vals[0], 2),
        "max": round(vals[-1], 2),
    }


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as handle:
        return [float(x) for x in handle.read().split()[:3]]


class SshdLog:
    """Counts `Accepted publickey` lines appended to sshd's log."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path)
        self.lock = threading.Lock()

    def take(self):
        """Client ports of the logins accepted since the previous take()."""
        with self.lock:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
            # Only whole lines; a partial last line is read next time.
            cut = data.rfind(b"\n") + 1
            self.offset += cut
            return [int(port) for port in ACCEPT_RE.findall(data[:cut])]


def tcp_ports(pid):
    """Local TCP ports of the sockets process PID holds."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if len(fields) > 9 and fields[9] in inodes:
                        ports.add(int(fields[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


class CpuMeter:
    """CPU time (ns) spent per side of a request.

    - login host: the sandbox's sshd and everything it starts (sessions,
      bash, sudo, the Python wrapper, squeue/sbatch/scancel), through a
      cpuacct cgroup the sshd listener is moved into before any connection;
    - slurm: slurmctld, slurmd and munged (their own cpuacct cgroup);
    - client: this harness's reaped children (the ssh client, the bridge
      CLI, and for `floor` the local sudo chain), from getrusage;
    - helper: the bridge daemon or the ControlMaster process, from
      /proc/PID/task/*/schedstat.
    Moving a process between cpuacct cgroups changes only accounting.
    Disabled (all None) when the cpuacct hierarchy is not mounted."""

    ROOT = "/sys/fs/cgroup/cpuacct"

    def __init__(self, tag, login_pids, slurm_pids):
        self.base = os.path.join(self.ROOT, f"ssb-bench-{tag}")
        self.enabled = False
        if not os.path.isfile(os.path.join(self.ROOT, "cpuacct.usage")):
            log("cpuacct cgroup hierarchy not mounted: CPU accounting disabled")
            return
        try:
            for name, pids in (("login", login_pids), ("slurm", slurm_pids)):
                os.makedirs(os.path.join(self.base, name), exist_ok=True)
                for pid in pids:
                    with open(os.path.join(self.base, name, "cgroup.procs"), "w", encoding="ascii") as handle:
                        handle.write(f"{pid}\n")
            self.enabled = True
        except OSError as exc:
            log(f"cannot set up cpuacct cgroups ({exc}): CPU accounting disabled")
            self.close()

    def usage(self, name):
        if not self.enabled:
            return 0
        with open(os.path.join(self.base, name, "cpuacct.usage"), encoding="ascii") as handle:
            return int(handle.read())

    def procs(self, name):
        if not self.enabled:
            return set()
        with open(os.path.join(self.base, name, "cgroup.procs"), encoding="ascii") as handle:
            return {line.strip() for line in handle if line.strip()}

    def close(self):
        """Move every process back to the root cpuacct cgroup, remove ours."""
        for name in ("login", "slurm"):
            path = os.path.join(self.base, name)
            if not os.path.isdir(path):
                continue
            for _ in range(3):
                try:
                    pids = self.procs(name) if self.enabled else set()
                    for pid in pids:
                        try:
                            with open(os.path.join(self.ROOT, "cgroup.procs"), "w", encoding="ascii") as handle:
                                handle.write(f"{pid}\n")
                        except OSError:
                            pass  # exited meanwhile
                    os.rmdir(path)
                    break
                except OSError:
                    time.sleep(0.1)
        try:
            os.rmdir(self.base)
        except OSError:
            pass
        self.enabled = False


def machine_busy_ns():
    """CPU time all CPUs spent busy since boot (ns), from /proc/stat."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def self_cpu_ns():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def children_cpu_ns():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((ru.ru_utime + ru.ru_stime) * 1e9)


def task_cpu_ns(pid):
    """Sum of the on-CPU time of every thread of PID (ns), 0 if gone."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as handle:
                    total += int(handle.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return 0
    return total


class CallResult:
    __slots__ = ("ok", "ms", "rc", "out", "err", "why")

    def __init__(self, ok, ms, rc, out, err, why):
        self.ok, self.ms, self.rc, self.out, self.err, self.why = ok, ms, rc, out, err, why


def run_timed(argv, stdin, env, timeout, cwd=None):
    """Run ARGV once: (returncode or None on timeout, stdout, stderr, ms).

    Every command gets its own session, as sshd gives each of its sessions:
    with the kernel's autogroup scheduling (on here) a session is one
    scheduling group, so this keeps the CPU share of a process independent
    of which path started it. subprocess uses vfork here (no uid change)."""
    t0 = time.monotonic()
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=timeout, check=False, cwd=cwd,
                              start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        return None, exc.stdout or b"", exc.stderr or b"", (time.monotonic() - t0) * 1000
    return proc.returncode, proc.stdout, proc.stderr, (time.monotonic() - t0) * 1000


def floor_helper_main():
    """`--floor-helper`: runs as the service account (started so by the
    harness) and starts the `floor` commands for it, so that sudo's real
    user is the service account, as over SSH, while the harness itself
    stays root. One JSON request per line on stdin, answered (out of order,
    by id) on stdout; requests run concurrently."""
    out_lock = threading.Lock()

    def answer(msg):
        line = json.dumps(msg) + "\n"
        with out_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def serve(req):
        if req.get("cpu"):
            answer({"id": req["id"], "cpu_ns": children_cpu_ns(), "self_ns": self_cpu_ns()})
            return
        rc, out, err, ms = run_timed(req["argv"], req["stdin"].encode(), req["env"], req["timeout"], req.get("cwd"))
        answer({"id": req["id"], "rc": rc, "out": out.decode("utf-8", "replace"),
                "err": err.decode("utf-8", "replace"), "ms": ms})

    with concurrent.futures.ThreadPoolExecutor(max_workers=600) as pool:
        for line in sys.stdin:
            if line.strip():
                pool.submit(serve, json.loads(line))
    return 0


class FloorHelper:
    """The harness's side of --floor-helper."""

    def __init__(self, work, svc, env):
        script = os.path.join(work, "floor_helper.py")
        with open(os.path.abspath(__file__), "rb") as src, open(script, "wb") as dst:
            dst.write(src.read())
        os.chmod(script, 0o644)
        self.proc = subprocess.Popen(["/usr/bin/python3", script, "--floor-helper"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=svc.pw_dir, user=svc.pw_uid,
                                     group=svc.pw_gid, extra_groups=os.getgrouplist(svc.pw_name, svc.pw_gid),
                                     text=True, bufsize=1)
        self.lock = threading.Lock()
        self.pending = {}
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.lock:
                slot = self.pending.pop(msg["id"])
            slot[1] = msg
            slot[0].set()
        with self.lock:  # the helper died: release every waiter
            for slot in self.pending.values():
                slot[1] = {"rc": None, "out": "", "err": "floor helper exited", "ms": 0.0, "cpu_ns": 0}
                slot[0].set()
            self.pending.clear()

    def request(self, msg):
        slot = [threading.Event(), None]
        with self.lock:
            if self.proc.poll() is not None:
                raise RuntimeError("the floor helper exited")
            self.next_id += 1
            msg["id"] = self.next_id
            self.pending[msg["id"]] = slot
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        slot[0].wait()
        return slot[1]

    def run(self, argv, stdin, env, timeout, cwd):
        r = self.request({"argv": argv, "stdin": stdin.decode(), "env": env, "timeout": timeout, "cwd": cwd})
        return r["rc"], r["out"].encode(), r["err"].encode(), r["ms"]

    def cpu_ns(self):
        """(CPU of the commands it ran, its own CPU), ns."""
        r = self.request({"cpu": True})
        return r.get("cpu_ns", 0), r.get("self_ns", 0)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


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
        self.daemon = None
        self.daemon_log = None
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
                "bridge-daemon": task_cpu_ns(self.daemon.pid) if self.daemon else 0}
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
        self.daemon_log = open(os.path.join(self.work, "daemon.log"), "ab")
        self.daemon = subprocess.Popen([self.bridge, "--config", self.conf, "serve"], stdin=subprocess.DEVNULL,
                                       stdout=self.daemon_log, stderr=subprocess.STDOUT, env=self.client_env,
                                       start_new_session=True)
        with open(os.path.join(self.work, "daemon.pid"), "w", encoding="ascii") as handle:
            handle.write(f"{self.daemon.pid}\n")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise RuntimeError(f"the daemon exited with status {self.daemon.returncode}; see {self.work}/daemon.log")
            status = self.daemon_status()
            if status is not None:
                if status.get("pid") != self.daemon.pid:
                    raise RuntimeError(f"another daemon (pid {status.get('pid')}) answers on the sandbox's socket")
                log(f"daemon up (pid {self.daemon.pid})")
                return
            time.sleep(0.1)
        raise RuntimeError("the daemon did not answer `status` within 15 s")

    def daemon_status(self):
        proc = subprocess.run([self.bridge, "--config", self.conf, "status"], capture_output=True,
                              env=self.client_env, timeout=20, check=False)
        if proc.returncode != 0:
            return None
        try:
            return json.loads(proc.stdout)
        except ValueError:
            return None

    def daemon_memory(self):
        mem = {}
        try:
            with open(f"/proc/{self.daemon.pid}/status", encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    if key in ("VmHWM", "VmRSS", "Threads"):
                        mem[key] = int(value.split()[0])
        except OSError:
            pass
        return mem

    def stop_daemon(self):
        if self.daemon is None or self.daemon.poll() is not None:
            return
        self.daemon.send_signal(signal.SIGTERM)
        try:
            self.daemon.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.daemon.kill()
            self.daemon.wait(timeout=10)
        log(f"daemon stopped (exit {self.daemon.returncode})")

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


def count_kinds(whys):
    kinds = {}
    for why in whys:
        key = re.sub(r"\b[0-9]{4,}\b", "N", why or "?")[:200]
        kinds[key] = kinds.get(key, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def compute_ratios(results, paths, levels):
    """Every path against ssh and ssh-mux: p50 (lower is better) and
    throughput (higher is better), per operation."""
    out = {}
    for op, per_path in results.items():
        out[op] = {}
        for p in paths:
            entry = {}
            for ref in ("ssh", "ssh-mux"):
                if ref not in per_path:
                    continue
                entry[f"p50_vs_{ref}"] = ratio(per_path[p]["latency"]["p50"], per_path[ref]["latency"]["p50"])
                entry[f"throughput_vs_{ref}"] = {
                    str(c): ratio(per_path[p]["throughput"][str(c)]["ok_per_s"],
                                  per_path[ref]["throughput"][str(c)]["ok_per_s"]) for c in levels}
            out[op][p] = entry
    return out


def evaluate_targets(results, daemon_info, paths, levels):
    """The issue's targets, checked against this run's figures."""
    targets = []
    if "bridge-daemon" not in paths:
        return targets
    q = results.get("query", {})
    if "floor" in paths and q:
        over = q["bridge-daemon"]["latency"]["p50"] - q["floor"]["latency"]["p50"]
        targets.append({"target": "bridge-daemon query p50 within 3 ms of floor (c=1)", "met": over <= 3.0,
                        "value": f"{over:+.1f} ms"})
    if "ssh-mux" in paths and q:
        d, m = q["bridge-daemon"]["latency"]["p50"], q["ssh-mux"]["latency"]["p50"]
        targets.append({"target": "bridge-daemon query p50 no slower than ssh-mux (c=1)", "met": d <= m,
                        "value": f"{d:.1f} ms vs {m:.1f} ms"})
    errs = []
    for op, per_path in results.items():
        for c in levels:
            errs.append(per_path["bridge-daemon"]["throughput"][str(c)]["errors"])
        errs.append(per_path["bridge-daemon"]["latency"]["errors"])
    targets.append({"target": "bridge-daemon: zero errors at every concurrency, query and pair",
                    "met": sum(errs) == 0, "value": f"{sum(errs)} errors"})
    if "floor" in paths and 32 in levels:
        for op, per_path in results.items():
            d = per_path["bridge-daemon"]["throughput"]["32"]["ok_per_s"]
            f = per_path["floor"]["throughput"]["32"]["ok_per_s"]
            r = ratio(d, f)
            targets.append({"target": f"bridge-daemon {op} throughput at c=32 >= 90% of floor's",
                            "met": r is not None and r >= 0.9, "value": f"{d}/s vs {f}/s ({(r or 0) * 100:.0f}%)"})
    for op, per_path in results.items():
        f = per_path.get("floor", {}).get("latency", {}).get("cpu_ms_per_call")
        d = per_path["bridge-daemon"]["latency"].get("cpu_ms_per_call")
        if f and d and d["login"] > 0:
            # floor's client side is the login host's work (sudo + wrapper).
            r = (f["client"] + f["slurm"]) / (d["login"] + d["slurm"])
            targets.append({"target": f"(context) login-host CPU per {op}: floor's ÷ bridge-daemon's "
                                      "(the throughput bound when the hub runs on another machine)",
                            "met": r >= 0.9, "value": f"{f['client'] + f['slurm']:.1f} ms vs "
                                                     f"{d['login'] + d['slurm']:.1f} ms ({r * 100:.0f}%)"})
    accepted = daemon_info.get("sshd_accepted_total")
    pool = daemon_info.get("pool_connections")
    targets.append({"target": "at most pool.connections SSH connections for the whole bridge-daemon phase",
                    "met": accepted is not None and pool is not None and accepted <= pool,
                    "value": f"{accepted} accepted, pool.connections = {pool}"})
    hwm = daemon_info.get("VmHWM_kib")
    targets.append({"target": "daemon peak RSS < 20 MiB", "met": hwm is not None and hwm < 20 * 1024,
                    "value": f"{(hwm or 0) / 1024:.1f} MiB (VmHWM)"})
    return targets


def fmt_ms(v):
    return "—" if v is None else f"{v:.1f}"


def fmt_ratio(v):
    return "—" if v is None else f"{v:.2f}×"


def gap_lines(op, per_path, paths):
    """Where the CPU of a path over floor goes, from this run's CPU table.

    floor's client CPU is the wrapper chain itself (sudo + wrapper +
    squeue/sbatch/scancel), so a path's login-host CPU minus it is what the
    SSH server side adds per channel: sshd's fork and channel handling and
    the service account's login shell. The client and helper columns are the
    path's own processes on the hub side.
    """
    f = per_path.get("floor", {}).get("latency", {}).get("cpu_ms_per_call")
    floor50 = per_path.get("floor", {}).get("latency", {}).get("p50")
    if not f or floor50 is None:
        return []
    rows = []
    for p in paths:
        c = per_path[p]["latency"].get("cpu_ms_per_call")
        p50 = per_path[p]["latency"].get("p50")
        if p == "floor" or not c or p50 is None or c["login"] <= 0:
            continue
        server = c["login"] - f["client"]
        rows.append(f"| {p} | {p50 - floor50:+.1f} | {c['client']:.1f} | {c['helper']:.1f} | {server:+.1f} | "
                    f"{c['slurm'] - f['slurm']:+.1f} |")
    if not rows:
        return []
    unit = "call" if op == "query" else "pair"
    return ["", f"Where each path's cost over floor goes, ms per {unit} (CPU, concurrency 1): its own client "
                "process, its helper, and the SSH server side — login-host CPU minus floor's (sshd's fork and "
                "channel work plus the service account's login shell, paid by every path that runs a command over "
                "SSH):", "",
            "| path | p50 − floor (wall) | client | helper | SSH server side | Slurm − floor's |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"] + rows


def markdown(report):
    paths = report["config"]["paths"]
    levels = report["config"]["concurrency"]
    lines = []
    meta = report["meta"]
    lines.append(f"## slurm-ssh-bridge benchmark, {meta['started']}")
    lines.append("")
    lines.append(f"Machine: {meta['nproc']} CPUs, load average {meta['loadavg_start']} at start, "
                 f"{meta['loadavg_end']} at end; run took {meta['duration_s']:.0f} s. "
                 f"{meta['openssh']}; bridge {meta['bridge_version']}.")
    fs = []
    for op, per_path in report["results"].items():
        for p in paths:
            v = per_path[p]["latency"].get("foreign_cpu_share")
            if v is not None:
                fs.append((v, f"{op} latency"))
            for c in levels:
                v = per_path[p]["throughput"][str(c)].get("foreign_cpu_share")
                if v is not None:
                    fs.append((v, f"{op} {p} c={c}"))
    if fs:
        worst = max(fs)
        lines.append(f"Other processes on the machine (not this run) used {sum(v for v, _ in fs) / len(fs) * 100:.0f}% "
                     f"of its CPUs on average over the phases, at most {worst[0] * 100:.0f}% ({worst[1]}); "
                     "load averages include this run's own processes.")
    names = {"query": "query (squeue of a RUNNING job)", "pair": "submit + cancel pair"}
    for op, per_path in report["results"].items():
        n_lat = report["config"]["latency_calls"][op]
        lines.append("")
        lines.append(f"### {names[op]}")
        lines.append("")
        lines.append(f"Latency at concurrency 1 ({n_lat} {'calls' if op == 'query' else 'pairs'} per path, "
                     "paths interleaved), ms; ratios are p50 ÷ the reference's p50 (lower is better):")
        lines.append("")
        lines.append("| path | p50 | p95 | p99 | errors | p50 − floor | ÷ ssh | ÷ ssh-mux | sshd logins |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        floor50 = per_path.get("floor", {}).get("latency", {}).get("p50")
        for p in paths:
            lat = per_path[p]["latency"]
            rat = report["ratios"][op][p]
            over = None if floor50 is None or lat["p50"] is None else lat["p50"] - floor50
            lines.append(f"| {p} | {fmt_ms(lat['p50'])} | {fmt_ms(lat['p95'])} | {fmt_ms(lat['p99'])} | "
                         f"{lat['errors']}/{lat['calls']} | {'—' if over is None else f'{over:+.1f}'} | "
                         f"{fmt_ratio(rat.get('p50_vs_ssh'))} | {fmt_ratio(rat.get('p50_vs_ssh-mux'))} | "
                         f"{lat['sshd_accepted']} |")
        if any("cpu_ms_per_call" in per_path[p]["latency"] for p in paths):
            lines.append("")
            lines.append("CPU time per " + ("call" if op == "query" else "pair") + " at concurrency 1, ms "
                         "(client: the process the harness starts — ssh, the bridge CLI, or for floor the local "
                         "sudo + wrapper chain; helper: the bridge daemon or the ControlMaster; login host: sshd "
                         "and everything it runs — sudo, the Python wrapper, squeue/sbatch/scancel; Slurm: "
                         "slurmctld + slurmd + munged):")
            lines.append("")
            lines.append("| path | client | helper | login host | Slurm | total |")
            lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
            for p in paths:
                c = per_path[p]["latency"].get("cpu_ms_per_call")
                if c:
                    lines.append(f"| {p} | {c['client']:.1f} | {c['helper']:.1f} | {c['login']:.1f} | "
                                 f"{c['slurm']:.1f} | {c['total']:.1f} |")
            lines.extend(gap_lines(op, per_path, paths))
        lines.append("")
        unit = "calls/s" if op == "query" else "pairs/s"
        lines.append(f"Throughput ({unit} answered correctly) and errors (wrong or failed) at concurrency "
                     f"{', '.join(map(str, levels))}; ratios are throughput ÷ the reference's (higher is better):")
        lines.append("")
        head = "| path |"
        sep = "| --- |"
        for c in levels:
            head += f" c={c} {unit} | err | ÷ ssh | ÷ ssh-mux |"
            sep += " ---: | ---: | ---: | ---: |"
        head += " sshd logins |"
        sep += " ---: |"
        lines.append(head)
        lines.append(sep)
        for p in paths:
            row = f"| {p} |"
            total_acc = 0
            for c in levels:
                t = per_path[p]["throughput"][str(c)]
                total_acc += t["sshd_accepted"]
                rat = report["ratios"][op][p]
                row += (f" {t['ok_per_s']:.1f} | {t['errors']}/{t['calls']} | "
                        f"{fmt_ratio(rat.get('throughput_vs_ssh', {}).get(str(c)))} | "
                        f"{fmt_ratio(rat.get('throughput_vs_ssh-mux', {}).get(str(c)))} |")
            row += f" {total_acc} |"
            lines.append(row)
    d = report.get("daemon") or {}
    if d.get("VmHWM_kib") is not None:
        lines.append("")
        lines.append(f"Daemon: peak RSS (VmHWM) {d.get('VmHWM_kib', 0) / 1024:.1f} MiB, "
                     f"{d.get('sshd_accepted_total')} SSH connection(s) accepted by sshd over the whole run "
                     f"(pool.connections = {d.get('pool_connections')}, channels_per_connection = "
                     f"{d.get('pool_channels')}).")
    if report["targets"]:
        lines.append("")
        lines.append("| target (issue 6) | met | this run |")
        lines.append("| --- | --- | --- |")
        for t in report["targets"]:
            lines.append(f"| {t['target']} | {'yes' if t['met'] else '**no**'} | {t['value']} |")
    errs = []
    for op, per_path in report["results"].items():
        for p in paths:
            for c in levels:
                for kind, count in per_path[p]["throughput"][str(c)]["error_kinds"].items():
                    errs.append(f"- {op} {p} c={c}: {count} × `{kind}`")
    if errs:
        lines.append("")
        lines.append("Errors by kind:")
        lines.append("")
        lines.extend(errs[:60])
    return "\n".join(lines) + "\n"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sandbox-env", required=True, help="DIR/sandbox.env of a running sandbox")
    ap.add_argument("--bridge", required=True, help="the slurm-ssh-bridge binary")
    ap.add_argument("--work", required=True, help="scratch directory (ControlPath, daemon log)")
    ap.add_argument("--json-out", default="build/bench.json", help="JSON result file (default: %(default)s)")
    ap.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of: " + ", ".join(PATHS))
    ap.add_argument("--ops", default=",".join(OPS), help="query, pair or both (default: %(default)s)")
    ap.add_argument("--user", default="alice.proj1", help="notebook user (default: %(default)s)")
    ap.add_argument("--latency-calls", type=int, default=60, help="queries per path at concurrency 1 (default: %(default)s)")
    ap.add_argument("--latency-pairs", type=int, default=20, help="pairs per path at concurrency 1 (default: %(default)s)")
    ap.add_argument("--concurrency", default="8,32,128", help="throughput levels (default: %(default)s)")
    ap.add_argument("--calls", type=int, default=96,
                    help="queries per path and level; at least the level (default: %(default)s)")
    ap.add_argument("--pairs", type=int, default=32,
                    help="pairs per path and level; at least the level (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed rounds before the latency phase (default: %(default)s)")
    ap.add_argument("--call-timeout", type=int, default=120, help="seconds before one call is killed (default: %(default)s)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds of pause between throughput phases (default: %(default)s)")
    args = ap.parse_args(argv)
    args.paths = [p for p in args.paths.split(",") if p]
    args.ops = [o for o in args.ops.split(",") if o]
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    for p in args.paths:
        if p not in PATHS:
            ap.error(f"unknown path {p!r}")
    for o in args.ops:
        if o not in OPS:
            ap.error(f"unknown op {o!r}")
    if any(c < 1 or c > 512 for c in args.concurrency):
        ap.error("concurrency levels must be 1..512")
    for name in ("latency_calls", "latency_pairs", "calls", "pairs"):
        if getattr(args, name) < 1 or getattr(args, name) > 10000:
            ap.error(f"--{name.replace('_', '-')} must be 1..10000")
    return args


def main(argv):
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.py: must run as root (it runs sudo as the service account and reads sshd's log)", file=sys.stderr)
        return 2
    bench = Bench(args)
    started = time.time()
    t_start = time.monotonic()
    load_start = loadavg()
    version = subprocess.run([bench.bridge, "--version"], capture_output=True, text=True, check=False).stdout.strip().split("\n")[0]
    openssh = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    results = {op: {p: {"throughput": {}} for p in args.paths} for op in args.ops}
    daemon_info = {}
    swept_after_latency = {}
    failure = None
    try:
        bench.start_cpu_meter()
        bench.start_query_job()
        if "bridge-daemon" in args.paths:
            bench.start_daemon()
            st = bench.daemon_status() or {}
            daemon_info["pool_connections"] = st.get("pool", {}).get("connections")
            daemon_info["pool_channels"] = st.get("pool", {}).get("channels_per_connection")
        for op in args.ops:
            n = args.latency_calls if op == "query" else args.latency_pairs
            log(f"{op}: latency at concurrency 1, {n} per path, paths interleaved")
            lat = bench.latency_phase(op, n)
            for p in args.paths:
                results[op][p]["latency"] = lat[p]
                log(f"  {p:14s} p50 {fmt_ms(lat[p]['p50'])} ms  p95 {fmt_ms(lat[p]['p95'])}  "
                    f"errors {lat[p]['errors']}  sshd logins {lat[p]['sshd_accepted']}")
            if op == "pair":
                left = bench.sweep_jobs(keep=bench.query_job)
                if left:
                    swept_after_latency[op] = left
                    log(f"  swept {len(left)} job(s) failed pairs left behind: {' '.join(left)}")
            for i, c in enumerate(args.concurrency):
                n = max(args.calls if op == "query" else args.pairs, c)
                # Rotate the order per level so no path always runs first.
                order = args.paths[i % len(args.paths):] + args.paths[:i % len(args.paths)]
                for p in order:
                    time.sleep(args.settle)
                    t = bench.throughput_phase(p, op, c, n)
                    results[op][p]["throughput"][str(c)] = t
                    log(f"{op} c={c:<3d} {p:14s} {t['ok_per_s']:7.1f}/s  errors {t['errors']}/{n}  "
                        f"sshd logins {t['sshd_accepted']}  wall {t['wall_s']:.1f} s")
                    if op == "pair":
                        left = bench.sweep_jobs(keep=bench.query_job)
                        if left:
                            t["leftover_jobs_swept"] = left
                            log(f"  swept {len(left)} job(s) a failed pair left behind: {' '.join(left)}")
        if "bridge-daemon" in args.paths:
            mem = bench.daemon_memory()
            daemon_info["VmHWM_kib"] = mem.get("VmHWM")
            daemon_info["VmRSS_kib"] = mem.get("VmRSS")
            daemon_info["threads"] = mem.get("Threads")
            daemon_info["status"] = bench.daemon_status()
            time.sleep(0.3)
            bench.logins(None)
            # Every login of the daemon's connections over the whole run,
            # warm-up calls included.
            daemon_info["sshd_accepted_total"] = bench.accepted_total["bridge-daemon"]
    except Exception as exc:  # report, clean up, fail
        failure = f"{type(exc).__name__}: {exc}"
        log(f"FAILED: {failure}")
    finally:
        bench.stop_daemon()
        if "ssh-mux" in args.paths:
            bench.stop_mux_master()
        if bench.cpu:
            bench.cpu.close()
        bench.floor.close()
        try:
            if bench.query_job:
                bench.sweep_jobs()
            left = bench.active_jobs()
            if left:
                failure = failure or f"jobs still active after the run: {left}"
        except Exception as exc:  # pylint: disable=broad-except
            failure = failure or f"cannot check for leftover jobs: {exc}"
    if failure:
        print(f"bench.py: {failure}", file=sys.stderr)
        return 1

    duration = time.monotonic() - t_start
    report = {
        "meta": {
            "started": datetime.datetime.fromtimestamp(started).astimezone().isoformat(timespec="seconds"),
            "duration_s": round(duration, 1), "nproc": os.cpu_count(),
            "loadavg_start": load_start, "loadavg_end": loadavg(), "bridge_version": version, "openssh": openssh,
            "python": sys.version.split()[0], "command": " ".join(shlex.quote(a) for a in sys.argv),
            "user": args.user, "query_job": bench.query_job, "jobs_submitted_by_pairs": len(bench.submitted),
            "sshd": {"MaxStartups": "default (10:30:100)", "MaxSessions": "default (10)"},
            "jobs_swept_after_latency_phase": swept_after_latency,
            "sshd_logins_by_path": bench.accepted_total,
        },
        "config": {
            "paths": args.paths, "ops": args.ops, "concurrency": args.concurrency,
            "latency_calls": {"query": args.latency_calls, "pair": args.latency_pairs},
            "throughput_calls": {"query": args.calls, "pair": args.pairs}, "warmup_rounds": args.warmup,
        },
        "results": results,
    }
    report["ratios"] = compute_ratios(results, args.paths, args.concurrency)
    report["overhead_over_floor_p50_ms"] = {
        op: {p: round(results[op][p]["latency"]["p50"] - results[op]["floor"]["latency"]["p50"], 2)
             for p in args.paths if results[op][p]["latency"]["p50"] is not None}
        for op in args.ops if "floor" in args.paths and results[op]["floor"]["latency"]["p50"] is not None
    }
    report["daemon"] = daemon_info
    report["targets"] = evaluate_targets(results, daemon_info, args.paths, args.concurrency)
    out_dir = os.path.dirname(os.path.abspath(args.json_out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.json_out, "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=1)
        handle.write("\n")
    sys.stdout.write(markdown(report))
    log(f"JSON written to {args.json_out}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--floor-helper"]:
        sys.exit(floor_helper_main())
    sys.exit(main(sys.argv[1:]))
