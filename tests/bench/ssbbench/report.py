"""From results to conclusions: ratios between paths, the issue's targets,
and the Markdown table printed at the end of a run."""


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
