"""The thousand-user benchmark's conclusions: the table per user count and
mode, the ratios coalesced / per-user of the same run, the issue's targets
(met or missed, with the cause), the growth of cost with users."""
import math

from ssbbench.report import ratio

DEFAULT_WINDOW_MS = 200


def by_key(report):
    return {(r["users"], r["mode"]): r for r in report["results"]}


def window_ms(result):
    """The status.window_ms a coalesced configuration ran with."""
    if result.get("window_ms"):
        return result["window_ms"]
    status = (result.get("daemon") or {}).get("status") or {}
    return status.get("window_ms", DEFAULT_WINDOW_MS)


def coalesced_modes(report):
    """"coalesced" (default window) first, then the coalesced-Wms variants."""
    return sorted({r["mode"] for r in report["results"] if r["mode"].startswith("coalesced")},
                  key=lambda m: (m != "coalesced", m))


def growth(report, mode, metric):
    """Exponent k of cost ~ users^k between the smallest and largest count
    (1: linear, < 1: sublinear), or None."""
    rows = sorted((r for r in report["results"] if r["mode"] == mode), key=lambda r: r["users"])
    if len(rows) < 2:
        return None
    a, b = rows[0], rows[-1]
    va, vb = metric(a), metric(b)
    if not va or not vb or a["users"] == b["users"]:
        return None
    return round(math.log(vb / va) / math.log(b["users"] / a["users"]), 2)


def rpc_per_s(r):
    return r["rpc"]["job_info_per_s"]


def login_per_s(r):
    return r["cpu_s_per_s"]["login"]


def mode_targets(top, pu, co):
    """The three targets of coalesced configuration CO against per-user PU."""
    if not (pu and co):
        return []
    t = []
    label = f"{top} users, window {window_ms(co)} ms"
    rr = ratio(rpc_per_s(pu), rpc_per_s(co))
    bound = pu["polls_per_s"] * window_ms(co) / 1000
    t.append({"target": f"{label}: coalesced uses >= 20x fewer job-info RPCs than per-user",
              "met": rr is not None and rr >= 20, "value": f"{fmt(rr)}x ({rpc_per_s(pu)}/s vs {rpc_per_s(co)}/s)",
              "cause": None if rr and rr >= 20 else (
                  f"coalesced runs at most one squeue per {window_ms(co)} ms window (cap "
                  f"{1000 / window_ms(co):g}/s, here {rpc_per_s(co)}/s) whatever the number of users, per-user one "
                  f"per poll ({pu['polls_per_s']}/s at a {pu['interval_s']:g} s interval): the ratio is about "
                  f"polls/s x window = {bound:.1f}x; 20x needs >= {20000 / window_ms(co):.0f} polls/s at this "
                  f"window, or a window >= {20000 / max(1e-9, pu['polls_per_s']):.0f} ms at this poll rate")})
    rc = ratio(login_per_s(pu), login_per_s(co))
    t.append({"target": f"{label}: coalesced uses >= 10x less login-host CPU than per-user",
              "met": rc is not None and rc >= 10,
              "value": f"{fmt(rc)}x ({login_per_s(pu)} vs {login_per_s(co)} CPU-s/s)",
              "cause": None if rc and rc >= 10 else (
                  f"per-user pays {pu['login_cpu_ms_per_poll']} ms per poll; coalesced "
                  f"{login_per_s(co) * 1000 / max(1e-9, rpc_per_s(co)):.1f} ms per job-info RPC at "
                  f"{rpc_per_s(co)} RPC/s: the batches' cost is bounded by the window, as the RPCs are")})
    limit = window_ms(co) + 2 * (pu["latency_ms"]["p99"] or 0)
    p99 = co["latency_ms"]["p99"]
    t.append({"target": f"{label}: coalesced p99 <= window_ms + 2 x per-user p99",
              "met": p99 is not None and p99 <= limit, "value": f"{p99} ms vs limit {limit:.1f} ms",
              "cause": None if p99 is not None and p99 <= limit else "see the latency columns"})
    return t


def evaluate(report):
    """Each target: {target, met (True/False/None = not run), value, cause}."""
    t = []
    res = by_key(report)
    users = sorted({r["users"] for r in report["results"]})
    top = users[-1] if users else None
    pu = res.get((top, "per_user"))
    not_run = report["meta"]["skipped"].get("coalesced", "not run")
    variants = [m for m in coalesced_modes(report) if (top, m) in res]
    for mode in variants:
        t += mode_targets(top, pu, res[(top, mode)])
    if not (pu and variants):
        for name in ("job-info RPCs >= 20x fewer", "login-host CPU >= 10x less", "p99 <= window_ms + 2 x per-user p99"):
            t.append({"target": f"{top} users, coalesced vs per-user: {name}", "met": None, "value": not_run,
                      "cause": not_run})
    for r in report["results"]:
        if r["errors"]:
            t.append({"target": f"zero errors ({r['users']} users, {r['mode']})", "met": False,
                      "value": f"{r['errors']} errors", "cause": "; ".join(f"{k} x{v}" for k, v in r["error_kinds"].items())})
    errs = sum(r["errors"] for r in report["results"])
    t.append({"target": "zero poll errors in every configuration", "met": errs == 0, "value": f"{errs} errors",
              "cause": None})
    for mode in ["per_user"] + coalesced_modes(report):
        for label, metric in (("job-info RPC/s", rpc_per_s), ("login-host CPU", login_per_s)):
            k = growth(report, mode, metric)
            if k is None:
                continue
            if mode == "per_user":  # the reference: one RPC and one sudo'd wrapper per poll
                t.append({"target": f"per_user (reference): {label} growth with users", "met": "info",
                          "value": f"users^{k}", "cause": "linear by design: one RPC and one sudo'd wrapper per poll"})
                continue
            t.append({"target": f"{mode}: {label} grows sublinearly with users (exponent < 1)", "met": k < 1,
                      "value": f"users^{k}", "cause": None if k < 1 else "see the curve"})
    s = report.get("storm")
    if s:
        for check, ok in s["checks"].items():
            t.append({"target": f"storm: {check}", "met": ok, "value": None, "cause": None})
    return t


def batches(r):
    """The daemon's own count of coalesced squeue runs per second in the
    window (its claim; sdiag's job-info RPC/s is the measurement)."""
    n = r["rpc"].get("daemon_counters_in_window", {}).get("batches")
    return "—" if n is None else f"{n / r['window_s']:.2f}"


def fmt(v, spec="{:.1f}"):
    return "—" if v is None else spec.format(v)


def markdown(report):
    m, c = report["meta"], report["config"]
    out = [f"## Thousand-user benchmark, {m['started']}", ""]
    out.append(f"Machine: {m['nproc']} CPUs, load average {m['loadavg_start']} at start, {m['loadavg_end']} at end; "
               f"run took {m['duration_s']} s; {m['bridge_version']}, commit {m['commit']}.")
    out.append(f"Each user polls its own job every {c['interval']:g} s ±{c['jitter'] * 100:.0f}% "
               f"(client: {m['client']}); every {c['running_every']}th job runs, the rest are held (pending); "
               f"window {c['interval'] * c['intervals']:g} s after {c['warmup']:g} s of warm-up. {m['setup']}.")
    for mode, why in m["skipped"].items():
        out.append(f"{mode}: {why}.")
    out += ["", "| users | mode | polls/s | errors | p50 ms | p99 ms | job-info RPC/s | RPCs per poll | "
            "login CPU s/s | login CPU ms/poll | Slurm CPU s/s | daemon CPU s/s | daemon RSS MiB (peak) | "
            "client CPU s/s | daemon's squeue batches/s | other load |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(report["results"], key=lambda r: (r["users"], r["mode"])):
        cpu, d = r["cpu_s_per_s"], r["daemon"]
        rss = f"{fmt((d['VmRSS_kib'] or 0) / 1024)} ({fmt((d['VmHWM_kib'] or 0) / 1024)})"
        out.append(f"| {r['users']} | {r['mode']} | {r['polls_per_s']:.2f} | {r['errors']}/{r['polls']} | "
                   f"{fmt(r['latency_ms']['p50'])} | {fmt(r['latency_ms']['p99'])} | {r['rpc']['job_info_per_s']:.2f} | "
                   f"{fmt(ratio(r['rpc']['job_info_total'], r['polls']), '{:.3f}')} | {cpu['login']:.3f} | "
                   f"{fmt(r['login_cpu_ms_per_poll'])} | {cpu['slurm']:.3f} | {cpu['daemon']:.3f} | {rss} | "
                   f"{cpu['client']:.3f} | {batches(r)} | {fmt((r['foreign_cpu_share'] or 0) * 100, '{:.0f}')}% |")
    out += ["", "Programs counted as login host (seen under sshd, sampled every 0.1 s, most frequent first):", ""]
    for r in sorted(report["results"], key=lambda r: (r["users"], r["mode"])):
        out.append(f"- {r['users']} users {r['mode']}: {', '.join(list(r.get('login_processes_seen', {}))[:8])}")
    res = by_key(report)
    rows = []
    for n, mode in sorted({(r["users"], r["mode"]) for r in report["results"] if r["mode"] != "per_user"}):
        pu, co = res.get((n, "per_user")), res[(n, mode)]
        if not pu:
            continue
        rows.append(f"| {n} | {window_ms(co)} | {fmt(ratio(rpc_per_s(pu), rpc_per_s(co)), '{:.1f}×')} | "
                    f"{fmt(ratio(login_per_s(pu), login_per_s(co)), '{:.1f}×')} | "
                    f"{fmt(ratio(co['latency_ms']['p50'], pu['latency_ms']['p50']), '{:.2f}×')} | "
                    f"{fmt(ratio(co['latency_ms']['p99'], pu['latency_ms']['p99']), '{:.2f}×')} | "
                    f"{fmt(ratio(co['cpu_s_per_s']['daemon'], pu['cpu_s_per_s']['daemon']), '{:.2f}×')} |")
    out.append("")
    if rows:
        out += ["Ratios of the same run (per-user ÷ coalesced for costs: higher = coalesced cheaper; "
                "coalesced ÷ per-user for latency and daemon CPU):", "",
                "| users | window ms | job-info RPCs | login-host CPU | p50 | p99 | daemon CPU |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"] + rows + [""]
    else:
        out += ["Ratios between modes: coalesced " + m["skipped"].get("coalesced", "not run") + ".", ""]
    s = report.get("storm")
    if s:
        out.append(f"Spawn storm ({s['mode']} daemon): {s['submits']} submits started within {s['last_launch_s']} s "
                   f"(target {s['span_s']:g} s), {s['acknowledged']} acknowledged, {s['refused']} refused"
                   f"{' ' + str(s['refusal_kinds']) if s['refusal_kinds'] else ''}, {s['unclear']} unclear; latency p50 {fmt(s['latency_ms']['p50'])} ms, "
                   f"p99 {fmt(s['latency_ms']['p99'])} ms; Slurm listed {s['slurm_jobs']} storm jobs; "
                   f"left after cancel: {len(s['left_after_cancel'])}.")
        out.append("")
    out += ["| target | result | value | cause |", "| --- | --- | --- | --- |"]
    for t in report["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not run", "info": "reference"}[t["met"]]
        out.append(f"| {t['target']} | {verdict} | {t['value'] or ''} | {t['cause'] or ''} |")
    return "\n".join(out) + "\n"
