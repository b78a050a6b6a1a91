"""The command line of tests/bench/bench.py: options, the order of the run,
the JSON report (build/bench.json) and the Markdown on stdout."""
import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

from ssbbench import __doc__ as PACKAGE_DOC
from ssbbench.measure import loadavg, log
from ssbbench.report import compute_ratios, evaluate_targets, fmt_ms, markdown
from ssbbench.workload import OPS, PATHS, Bench


def parse_args(argv):
    ap = argparse.ArgumentParser(description=PACKAGE_DOC.split("\n\n")[0],
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
            st = bench.daemon.status() or {}
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
            mem = bench.daemon.memory()
            daemon_info["VmHWM_kib"] = mem.get("VmHWM")
            daemon_info["VmRSS_kib"] = mem.get("VmRSS")
            daemon_info["threads"] = mem.get("Threads")
            daemon_info["status"] = bench.daemon.status()
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
