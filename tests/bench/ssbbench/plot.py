"""The curve of the thousand-user benchmark as a PNG: job-info RPCs per
second and login-host CPU per second against users, one line per status
mode, from one run's JSON report. Debian's python3-matplotlib."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

STYLE = {"per_user": ("tab:red", "o", "per-user (one sudo'd slurmspawner_squeue per poll)"),
         "coalesced": ("tab:blue", "s", "coalesced, default window (one squeue per window)")}
EXTRA = ("tab:green", "^")


def style(mode):
    if mode in STYLE:
        return STYLE[mode]
    return EXTRA + (f"coalesced, status.window_ms = {mode.split('-', 1)[1].removesuffix('ms')}",)


def plot_curve(report, path):
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=100)
    panels = ((axes[0], lambda r: r["rpc"]["job_info_per_s"], "slurmctld job-info RPCs / s (sdiag)"),
              (axes[1], lambda r: r["cpu_s_per_s"]["login"], "login-host CPU s / s (all under sshd)"),
              (axes[2], lambda r: r["latency_ms"]["p99"] or 0, "query latency p99, ms (client side)"))
    for ax, metric, title in panels:
        top = 0.0
        highest = {}  # users -> the largest value of any mode there
        for r in report["results"]:
            highest[r["users"]] = max(highest.get(r["users"], 0), metric(r))
        for mode in sorted({r["mode"] for r in report["results"]}, key=lambda m: (m != "per_user", m != "coalesced", m)):
            colour, marker, label = style(mode)
            rows = sorted((r for r in report["results"] if r["mode"] == mode), key=lambda r: r["users"])
            xs = [r["users"] for r in rows]
            ys = [metric(r) for r in rows]
            top = max([top] + ys)
            ax.plot(xs, ys, color=colour, marker=marker, label=label)
            for x, y in zip(xs, ys):
                offset = (4, 6) if y >= highest[x] else (4, -12)  # the highest label above its point
                text = f"{y:.3f}" if y < 1 else f"{y:.2f}" if y < 100 else f"{y:.0f}"
                ax.annotate(text, (x, y), textcoords="offset points", xytext=offset, fontsize=8)
        ax.set_xlabel("simulated hub users (each polling its own job)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, max(r["users"] for r in report["results"]) * 1.1)
        ax.set_ylim(0, top * 1.15 or 1)
        ax.legend(fontsize=8, loc="upper left")
    m, c = report["meta"], report["config"]
    title = (f"slurm-ssh-bridge daemon, every user polling every {c['interval']:g} s (±{c['jitter'] * 100:.0f}%), "
             f"{m['nproc']}-CPU sandbox, {m['started'][:16]}, commit {m['commit']}")
    if "coalesced" in m["skipped"]:
        title += "\ncoalesced mode " + m["skipped"]["coalesced"]
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
