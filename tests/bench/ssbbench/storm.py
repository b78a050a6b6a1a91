"""The spawn storm: USERS hub users submit a job within SPAN_S seconds
through the bridge daemon, one CLI `submit` each with the batch script on
stdin (as batchspawner does). Every submit must be acknowledged (exit 0, a
job id) or refused with a clear error line; the jobs Slurm lists under the
storm's job name must be exactly the acknowledged ids, none twice; then
they are all cancelled and none may be left."""
import asyncio
import random
import re
import time

from ssbbench.measure import count_kinds, summarize_ms
from ssbbench.polling import run_cli

JOB_ID_RE = re.compile(r"([0-9]{1,20})(;[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?\n?")
# A refusal is clear when its first stderr line says who refused and why:
# the bridge's `slurm-ssh-bridge: CODE: message` or sbatch's own error.
CLEAR_REFUSAL_RE = re.compile(r"^(slurm-ssh-bridge: [a-z_]+: \S.*|sbatch: error: \S.*)$")

SCRIPT = """#!/bin/bash
#SBATCH --job-name={name}
#SBATCH --output=/dev/null
#SBATCH --chdir=/tmp
#SBATCH --hold
#SBATCH --time=5
sleep 300
"""


def classify(rc, out, err):
    """('ack', job id) | ('refused', first line) | ('unclear', what)."""
    text = out.decode("utf-8", "replace")
    first = (err.decode("utf-8", "replace").strip().splitlines() or [""])[0][:200]
    if rc is None:
        return "unclear", "timeout (no answer)"
    if rc == 0:
        m = JOB_ID_RE.fullmatch(text)
        if m:
            return "ack", m.group(1)
        return "unclear", f"exit 0 without a job id: {text[:60]!r}"
    if CLEAR_REFUSAL_RE.match(first):
        if first.startswith("slurm-ssh-bridge: submit_unknown:"):
            return "unclear", first  # may have reached Slurm: not a refusal
        return "refused", first
    return "unclear", f"exit {rc} without a clear error line: {first!r}"


async def _storm(bridge, conf, env, users, name, span_s, timeout_s, seed):
    rng = random.Random(seed)
    offsets = sorted(rng.uniform(0, span_s) for _ in users)
    script = SCRIPT.format(name=name).encode()
    t0 = time.monotonic()
    launched = []

    async def one(user, offset):
        await asyncio.sleep(max(0.0, t0 + offset - time.monotonic()))
        launched.append(time.monotonic() - t0)
        argv = [bridge, "--config", conf, "--mode", "daemon", "--user", user, "submit"]
        rc, out, err, ms = await run_cli(argv, env, script, timeout_s)
        return user, ms, classify(rc, out, err)

    results = await asyncio.gather(*(one(u, o) for u, o in zip(users, offsets)))
    return results, max(launched), time.monotonic() - t0


def run_storm(bridge, conf, env, users, slurm, name, span_s, timeout_s, seed=7):
    """Runs the storm and checks it against Slurm; returns the figures and
    `ok` (every check held). SLURM: a slurmctl.Slurm."""
    results, last_launch, wall = asyncio.run(_storm(bridge, conf, env, users, name, span_s, timeout_s, seed))
    acked = [r[2][1] for r in results if r[2][0] == "ack"]
    refused = [r[2][1] for r in results if r[2][0] == "refused"]
    unclear = [f"{r[0]}: {r[2][1]}" for r in results if r[2][0] == "unclear"]
    in_slurm = slurm.job_ids(name)
    dup_slurm = sorted({j for j in in_slurm if in_slurm.count(j) > 1})
    dup_acked = sorted({j for j in acked if acked.count(j) > 1})
    missing = sorted(set(acked) - set(in_slurm), key=int)
    extra = sorted(set(in_slurm) - set(acked), key=int)
    left = slurm.cancel_name(name)
    checks = {
        f"every submit launched within {span_s:g} s": last_launch <= span_s,
        "every submit acknowledged or refused with a clear error": not unclear,
        "no job id acknowledged twice": not dup_acked,
        "no job listed twice by Slurm": not dup_slurm,
        "jobs in Slurm == acknowledged ids": not missing and not extra,
        "no storm job left after cancelling": not left,
    }
    return {
        "submits": len(users), "span_s": span_s, "last_launch_s": round(last_launch, 2), "wall_s": round(wall, 2),
        "acknowledged": len(acked), "refused": len(refused), "refusal_kinds": count_kinds(refused),
        "unclear": len(unclear), "unclear_examples": unclear[:10],
        "latency_ms": summarize_ms([r[1] for r in results]),
        "slurm_jobs": len(in_slurm), "acked_not_in_slurm": missing, "in_slurm_not_acked": extra,
        "duplicate_acks": dup_acked, "duplicates_in_slurm": dup_slurm, "left_after_cancel": left,
        "checks": checks, "ok": all(checks.values()),
    }
