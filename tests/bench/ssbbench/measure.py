"""Measuring one call and the machine around it: wall time of a call
(run_timed), CPU of processes and of the machine, sshd's logins, percentiles."""
import os
import re
import resource
import shlex
import subprocess
import sys
import threading
import time


ACCEPT_RE = re.compile(rb"Accepted publickey for \S+ from \S+ port ([0-9]+)")


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


def count_kinds(whys):
    kinds = {}
    for why in whys:
        key = re.sub(r"\b[0-9]{4,}\b", "N", why or "?")[:200]
        kinds[key] = kinds.get(key, 0) + 1
    return dict(sorted(kinds.items(), key=lambda kv: -kv[1]))
