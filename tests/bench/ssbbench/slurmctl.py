"""The Slurm side of the thousand-user benchmark, run locally as root
against the sandbox's private cluster: slurmctld's RPC counters (`sdiag`),
the poll workload's jobs (submitted straight to Slurm with `sbatch --uid`:
setup, not what is measured), jobs by name, cancelling them."""
import concurrent.futures
import re
import subprocess
import time

SDIAG_RE = re.compile(r"^\s*([A-Z][A-Z0-9_]+)\s+\(\s*\d+\)\s+count:(\d+)", re.M)
JOB_INFO_RPCS = ("REQUEST_JOB_INFO", "REQUEST_JOB_INFO_SINGLE")
ACTIVE = "PENDING,RUNNING,CONFIGURING,SUSPENDED,COMPLETING"
EXPECT_RUNNING = "RUNNING node1\n"
EXPECT_HELD = "PENDING n/a\n"


class Slurm:
    def __init__(self, env):
        self.env = env  # PATH + SLURM_CONF of the sandbox

    def run(self, argv, timeout=60, stdin=None):
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False,
                              input=stdin, cwd="/tmp")
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:3])} failed (exit {proc.returncode}): {proc.stderr.strip()[:300]}")
        return proc.stdout

    # ---- slurmctld's RPC statistics ---------------------------------------
    def sdiag_reset(self):
        self.run(["sdiag", "-r"])

    def sdiag_counts(self):
        """{message type: count} since the last reset ("Remote Procedure Call
        statistics by message type")."""
        out = self.run(["sdiag"])
        section = out.split("by message type", 1)[-1].split("by user", 1)[0]
        return {name: int(count) for name, count in SDIAG_RE.findall(section)}

    # ---- jobs ------------------------------------------------------------
    def submit_as(self, user, name, running):
        """One job for USER (sbatch --uid as root): a `sleep` that runs for
        the whole benchmark, or the same held (pending, never starts)."""
        argv = ["sbatch", "--parsable", f"--uid={user.pw_uid}", f"--gid={user.pw_gid}", f"--job-name={name}",
                "--output=/dev/null", "--chdir=/tmp", "--time=120"]
        if not running:
            argv.append("--hold")
        out = self.run(argv + ["--wrap", "sleep 7200"])
        return out.strip().split(";")[0]

    def populate(self, users, name, running_every):
        """One job per user in USERS (pwd entries), every RUNNING_EVERY-th
        one running, the rest held; returns {user: (job id, expected answer)}
        once every job is in its state."""
        def one(i_user):
            i, user = i_user
            running = i % running_every == 0
            return user.pw_name, self.submit_as(user, name, running), running

        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            made = list(pool.map(one, enumerate(users)))
        jobs = {u: (j, EXPECT_RUNNING if r else EXPECT_HELD) for u, j, r in made}
        want = {j: exp for j, exp in jobs.values()}
        deadline = time.monotonic() + 120
        while True:
            states = self.states(name)
            wrong = [j for j, exp in want.items() if states.get(j) != exp]
            if not wrong:
                return jobs
            if time.monotonic() > deadline:
                j = wrong[0]
                raise RuntimeError(f"{len(wrong)} of the {len(want)} setup jobs are not in their state after 120 s "
                                   f"(job {j}: {states.get(j, 'not listed')!r}, expected {want[j]!r}); "
                                   "see the sandbox's slurmctld.log")
            time.sleep(1)

    def states(self, name):
        """{job id: "STATE NODES\\n"} of the active jobs named NAME, as the
        wrapper's squeue prints them."""
        out = self.run(["squeue", "-h", f"--name={name}", "-t", ACTIVE, "-o", "%i %T %B"])
        result = {}
        for line in out.splitlines():
            job, _, rest = line.partition(" ")
            result[job] = rest + "\n"
        return result

    def job_ids(self, name):
        """Every job named NAME that slurmctld still lists, any state, in its
        order (a list: a duplicate would show twice)."""
        return [line.strip() for line in self.run(["squeue", "-h", f"--name={name}", "-t", "all", "-o", "%i"]).splitlines()
                if line.strip()]

    def cancel_name(self, name, wait_s=60):
        """Cancel every job named NAME; returns the ids still active after
        WAIT_S (empty when all are gone)."""
        self.run(["scancel", f"--name={name}"])
        deadline = time.monotonic() + wait_s
        while True:
            left = list(self.states(name))
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)
