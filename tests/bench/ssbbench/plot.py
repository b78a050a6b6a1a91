"""The curve of the thousand-user benchmark as a PNG: job-info RPCs per
second and login-host CPU per second against users, one line per status
mode, from one run's JSON report. Debian's python3-matplotlib."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

STYLE = {"per_user": ("tab:red", "o", "per-user (sudo'd slurmspawner_squeue per poll)"),
         "coalesced": ("tab:blue", "s", "coalesced (one squeue per window)")}


def plot_curve(report, path):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    panels = ((axes[0], lambda r: r["rpc"]["job_info_per_s"], "slurmctld job-info RPCs / s (sdiag)"),
              (axes[1], lambda r: r["cpu_s_per_s"]["login"], "login-host CPU s / s (all under sshd)"))
    for ax, metric, title in panels:
        for mode, (colour, marker, label) in STYLE.items():
            rows = sorted((r for r in report["results"] if r["mode"] == mode), key=lambda r: r["users"])
            if not rows:
                continue
            xs = [r["users"] for r in rows]
            ys = [metric(r) for r in rows]
            ax.plot(xs, ys, color=colour, marker=marker, label=label)
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.set_xlabel("simulated hub users")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=8, loc="upper left")
    m, c = report["meta"], report["config"]
    skipped = "; coalesced " + m["skipped"]["coalesced"] if "coalesced" in m["skipped"] else ""
    fig.suptitle(f"slurm-ssh-bridge daemon, each user polling every {c['interval']:g} s "
                 f"(±{c['jitter'] * 100:.0f}%), {m['nproc']}-CPU sandbox, {m['started'][:16]}, "
                 f"commit {m['commit']}{skipped}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
