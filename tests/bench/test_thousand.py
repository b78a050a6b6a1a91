"""Unit tests of the thousand-user benchmark's pure parts (no sandbox): how
a storm submit's outcome is classified, how a poll's answer is judged, the
sdiag parser, and the targets' verdicts and causes. Run by CTest
(unit.bench_thousand) with Debian's pytest: /usr/bin/python3 -m pytest."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ssbbench.polling import why_failed  # noqa: E402
from ssbbench.slurmctl import SDIAG_RE  # noqa: E402
from ssbbench.storm import classify  # noqa: E402
from ssbbench.thousand_report import evaluate, growth, markdown  # noqa: E402


def test_storm_ack_needs_a_job_id():
    assert classify(0, b"1234\n", b"") == ("ack", "1234")
    assert classify(0, b"1234;clusterA\n", b"") == ("ack", "1234")
    assert classify(0, b"", b"")[0] == "unclear"
    assert classify(0, b"Submitted batch job 12\n", b"")[0] == "unclear"


def test_storm_refusals_must_say_who_and_why():
    assert classify(255, b"", b"slurm-ssh-bridge: overloaded: queue full (1024 waiting)\n") == (
        "refused", "slurm-ssh-bridge: overloaded: queue full (1024 waiting)")
    assert classify(1, b"", b"sbatch: error: Batch job submission failed: Invalid account\n")[0] == "refused"
    kind, why = classify(1, b"", b"Traceback (most recent call last):\n")
    assert kind == "unclear" and "without a clear error line" in why
    assert classify(1, b"", b"")[0] == "unclear"
    assert classify(None, b"", b"") == ("unclear", "timeout (no answer)")


def test_storm_submit_unknown_is_not_a_refusal():
    # The job may exist: it must not be counted as refused.
    kind, _ = classify(255, b"", b"slurm-ssh-bridge: submit_unknown: the connection dropped after sending\n")
    assert kind == "unclear"


def test_poll_answer_must_match_the_jobs_state():
    assert why_failed(0, b"RUNNING node1\n", b"", "RUNNING node1\n", 60) is None
    assert "wrong answer" in why_failed(0, b"PENDING n/a\n", b"", "RUNNING node1\n", 60)
    assert why_failed(255, b"", b"slurm-ssh-bridge: transport: reset\nmore\n", "X\n", 60) == (
        "exit 255: slurm-ssh-bridge: transport: reset")
    assert why_failed(None, b"", b"", "X\n", 60) == "timeout after 60 s"


def test_sdiag_parser_reads_message_types():
    text = """Remote Procedure Call statistics by message type
\tREQUEST_JOB_INFO_SINGLE                 ( 2021) count:33     ave_time:6363   total_time:12726
\tREQUEST_JOB_INFO                        ( 2003) count:5      ave_time:152    total_time:152
"""
    assert dict((n, int(c)) for n, c in SDIAG_RE.findall(text)) == {"REQUEST_JOB_INFO_SINGLE": 33,
                                                                    "REQUEST_JOB_INFO": 5}


def result(users, mode, rpc, login, p99, polls_per_s, window_ms=None, errors=0):
    return {"users": users, "mode": mode, "window_ms": window_ms, "interval_s": 30, "window_s": 60,
            "polls": int(polls_per_s * 60), "polls_per_s": polls_per_s, "errors": errors, "error_kinds": {},
            "latency_ms": {"p50": p99 / 2, "p99": p99}, "login_cpu_ms_per_poll": 25.0,
            "rpc": {"job_info_per_s": rpc, "job_info_total": rpc * 60},
            "cpu_s_per_s": {"login": login, "slurm": 0.01, "daemon": 0.01, "client": 0.01},
            "foreign_cpu_share": 0.1, "daemon": {"VmRSS_kib": 10000, "VmHWM_kib": 10000, "status": None}}


def report(results, skipped=None):
    return {"meta": {"skipped": skipped or {}, "started": "2026-12-02T04:00:00", "nproc": 2, "loadavg_start": [0],
                     "loadavg_end": [0], "duration_s": 1, "bridge_version": "v", "commit": "c", "client": "cli",
                     "setup": "sbatch"},
            "config": {"interval": 30, "jitter": 0.1, "running_every": 20, "intervals": 2, "warmup": 5},
            "results": results, "storm": None}


def test_targets_missed_rpc_ratio_names_the_window_bound():
    r = report([result(100, "per_user", 3.3, 0.08, 100, 3.3), result(100, "coalesced", 2.9, 0.01, 200, 3.3),
                result(1000, "per_user", 33.0, 0.8, 1000, 33.0), result(1000, "coalesced", 5.0, 0.03, 220, 33.0)])
    t = {x["target"]: x for x in evaluate(r)}
    rpc = t["1000 users, window 200 ms: coalesced uses >= 20x fewer job-info RPCs than per-user"]
    assert rpc["met"] is False
    assert "polls/s x window = 6.6x" in rpc["cause"] and "window >= 606 ms" in rpc["cause"]
    assert t["1000 users, window 200 ms: coalesced uses >= 10x less login-host CPU than per-user"]["met"] is True
    assert t["1000 users, window 200 ms: coalesced p99 <= window_ms + 2 x per-user p99"]["met"] is True
    assert t["coalesced: job-info RPC/s grows sublinearly with users (exponent < 1)"]["met"] is True
    assert t["per_user (reference): job-info RPC/s growth with users"]["met"] == "info"
    r["targets"] = evaluate(r)
    assert "**missed**" in markdown(r)


def test_targets_fail_on_errors_and_slow_p99():
    r = report([result(1000, "per_user", 33.0, 0.8, 100, 33.0),
                result(1000, "coalesced", 1.0, 0.01, 900, 33.0, errors=3)])
    t = {x["target"]: x for x in evaluate(r)}
    assert t["zero poll errors in every configuration"]["met"] is False
    assert t["1000 users, window 200 ms: coalesced p99 <= window_ms + 2 x per-user p99"]["met"] is False


def test_not_run_when_coalesced_is_missing():
    why = "not run: mode not available on this branch"
    r = report([result(20, "per_user", 10, 0.2, 50, 10)], skipped={"coalesced": why})
    verdicts = [x for x in evaluate(r) if "coalesced vs per-user" in x["target"]]
    assert len(verdicts) == 3 and all(x["met"] is None and x["value"] == why for x in verdicts)
    r["targets"] = evaluate(r)
    assert why in markdown(r)


def test_growth_exponent():
    r = report([result(100, "coalesced", 2.0, 0.01, 1, 3), result(1000, "coalesced", 20.0, 0.1, 1, 33)])
    assert growth(r, "coalesced", lambda x: x["rpc"]["job_info_per_s"]) == 1.0
    assert growth(r, "per_user", lambda x: x["rpc"]["job_info_per_s"]) is None
