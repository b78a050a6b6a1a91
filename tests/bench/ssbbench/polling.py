"""The thousand-user workload: simulated hub users, each polling its own job
through the bridge daemon the way batchspawner does (one CLI process per
poll: `slurm-ssh-bridge --mode daemon --user U query JOB`), every INTERVAL
seconds with jitter, plus the measured window around them (Meter): slurmctld's
job-info RPCs (sdiag), login-host CPU (every process under the sandbox's
sshd, cpuacct), Slurm's CPU, the daemon's CPU and memory, the client side.

asyncio, one coroutine per user: a user never has two polls in flight
(batchspawner awaits each), and nothing in the harness queues a poll, so
the latency measured is the CLI's, from process start to exit."""
import asyncio
import os
import random
import threading
import time

from ssbbench.measure import children_cpu_ns, count_kinds, machine_busy_ns, self_cpu_ns, summarize_ms
from ssbbench.slurmctl import JOB_INFO_RPCS


async def run_cli(argv, env, stdin, timeout):
    """(returncode or None on timeout, stdout, stderr, ms) of one CLI process,
    in its own session (as run_timed: autogroup scheduling)."""
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, b"", b"", (time.monotonic() - t0) * 1000
    return proc.returncode, out, err, (time.monotonic() - t0) * 1000


def why_failed(rc, out, err, expect, timeout):
    """None for a correct answer, else what went wrong (grouped by kind later)."""
    if rc is None:
        return f"timeout after {timeout} s"
    text = out.decode("utf-8", "replace")
    first_err = (err.decode("utf-8", "replace").strip().splitlines() or [""])[0][:160]
    if rc != 0:
        return f"exit {rc}: {first_err}"
    if text != expect:
        return f"wrong answer {text[:60]!r} (expected {expect.strip()!r})"
    return None


class Meter:
    """Snapshots of everything a window is charged with. cpu: a CpuMeter
    (login = sshd's tree, slurm = slurmctld + slurmd + munged), daemon: the
    Daemon, slurm: the Slurm helper (sdiag)."""

    def __init__(self, cpu, daemon, slurm):
        self.cpu, self.daemon, self.slurm = cpu, daemon, slurm
        self.seen = {}              # command name -> samples it was seen in
        self._coalescer0 = {}
        self._stop = threading.Event()
        self._sampler = None

    def _sample(self):
        """Which programs the login-host cgroup holds, every 0.1 s: evidence
        that the CPU counted is sudo's, the wrapper's and squeue's too."""
        while not self._stop.wait(0.1):
            names = set()
            for pid in self.cpu.procs("login"):
                try:
                    with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
                        names.add(handle.read().strip())
                except OSError:
                    pass
            for name in names:
                self.seen[name] = self.seen.get(name, 0) + 1

    def snap(self):
        return {"wall": time.monotonic(), "login": self.cpu.usage("login"), "slurm": self.cpu.usage("slurm"),
                "daemon": self.daemon.cpu_ns(), "client": children_cpu_ns(), "harness": self_cpu_ns(),
                "machine": machine_busy_ns()}

    def coalescer(self):
        """The daemon's own counters of coalesced status ("status" object of
        its `status`: batches, ids_queried, confirmations, refused), if any."""
        status = (self.daemon.status() or {}).get("status")
        return status if isinstance(status, dict) else {}

    def start(self):
        self._coalescer0 = self.coalescer()
        self.slurm.sdiag_reset()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self.snap()

    def finish(self, before):
        after = self.snap()
        self._stop.set()
        self._sampler.join()
        end = self.coalescer()
        # The daemon's claims over the window, next to what sdiag measured.
        claims = {k: v - self._coalescer0.get(k, 0) for k, v in end.items()
                  if isinstance(v, (int, float)) and not isinstance(v, bool)}
        rpcs = self.slurm.sdiag_counts()
        span = after["wall"] - before["wall"]
        cpu = {k: round((after[k] - before[k]) / 1e9 / span, 4)
               for k in ("login", "slurm", "daemon", "client", "harness")}
        busy = (after["machine"] - before["machine"]) / 1e9 / span
        ours = sum(cpu.values())
        job_info = {name: rpcs.get(name, 0) for name in JOB_INFO_RPCS}
        return span, cpu, {
            "job_info": job_info, "job_info_total": sum(job_info.values()),
            "job_info_per_s": round(sum(job_info.values()) / span, 3),
            "all_rpcs": sum(rpcs.values()), "daemon_counters_in_window": claims,
        }, round(max(0.0, busy - ours) / (os.cpu_count() or 1), 3)


class PollWorkload:
    def __init__(self, bridge, conf, env, jobs, interval_s, jitter, timeout_s, seed=1):
        """JOBS: {user: (job id, expected answer)}."""
        self.bridge, self.conf, self.env = bridge, conf, env
        self.jobs = jobs
        self.interval, self.jitter, self.timeout = interval_s, jitter, timeout_s
        self.rng = random.Random(seed)
        self.samples = []          # (start, ms, why) of every poll
        self.stop = None

    async def _user(self, user, job, expect, phase):
        argv = [self.bridge, "--config", self.conf, "--mode", "daemon", "--user", user, "query", job]
        delay = phase
        while True:
            try:
                await asyncio.wait_for(self.stop.wait(), delay)
                return
            except asyncio.TimeoutError:
                pass
            start = time.monotonic()
            rc, out, err, ms = await run_cli(argv, self.env, b"", self.timeout)
            self.samples.append((start, ms, why_failed(rc, out, err, expect, self.timeout)))
            step = self.interval * (1 + self.rng.uniform(-self.jitter, self.jitter))
            delay = max(0.0, start + step - time.monotonic())

    async def _run(self, meter, warmup_s, window_s):
        self.stop = asyncio.Event()
        tasks = [asyncio.ensure_future(self._user(u, j, exp, self.rng.uniform(0, self.interval)))
                 for u, (j, exp) in self.jobs.items()]
        await asyncio.sleep(warmup_s)
        # The meter's commands (sdiag, status) run in a thread, so the loop
        # keeps reaping the polls in flight meanwhile (no added latency).
        loop = asyncio.get_running_loop()
        before = await loop.run_in_executor(None, meter.start)
        await asyncio.sleep(window_s - (time.monotonic() - before["wall"]))
        measured = await loop.run_in_executor(None, meter.finish, before)
        t0, t1 = before["wall"], before["wall"] + measured[0]
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), self.timeout + 30)
        return measured, t0, t1

    def run(self, meter, warmup_s, window_s):
        """Poll for WARMUP_S, then measure WINDOW_S; returns the figures."""
        (span, cpu, rpc, foreign), t0, t1 = asyncio.run(self._run(meter, warmup_s, window_s))
        inside = [s for s in self.samples if t0 <= s[0] < t1]
        ok_ms = [ms for _, ms, why in inside if why is None]
        whys = [why for _, _, why in inside if why is not None]
        polls = len(inside)
        return {
            "users": len(self.jobs), "interval_s": self.interval, "jitter": self.jitter,
            "window_s": round(span, 2), "warmup_s": warmup_s,
            "polls": polls, "polls_per_s": round(polls / span, 3), "errors": len(whys),
            "error_kinds": count_kinds(whys), "latency_ms": summarize_ms(ok_ms),
            "polls_over_1s": sum(ms > 1000 for ms in ok_ms),
            "rpc": rpc, "cpu_s_per_s": cpu, "foreign_cpu_share": foreign,
            "login_cpu_ms_per_poll": round(cpu["login"] * span * 1000 / polls, 2) if polls else None,
            "polls_outside_window": len(self.samples) - polls,
            "login_processes_seen": dict(sorted(meter.seen.items(), key=lambda kv: -kv[1])),
        }
