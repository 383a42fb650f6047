"""Error and residual rounding against step for the 20000-step Kovasznay runs, read from their logs.

    python benchmarks/results/physics/kov_full_20k/plot_logs.py

The logs (``lowprec pinn ... --log-every 500``) hold every evaluation, including those of a run stopped
before its end (which writes no results.json). Writes ``error_rounding.png`` beside this file and prints,
per run, the geometric mean of the error over the evaluations from step 10000 to the last step both runs
reached: at a constant lr 1e-3 the error oscillates by 2-3x between evaluations late in training, so a
mean over many evaluations compares the modes better than one end point.
"""
import pathlib
import re
import statistics

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = pathlib.Path(__file__).parent
line = re.compile(r"step (\d+): .* error ([0-9.]+) rounding ([0-9.]+)%")
fig, ax = plt.subplots(figsize=(7, 4.5))
runs = {log.stem: [tuple(map(float, m.groups())) for m in map(line.search, log.read_text().splitlines()) if m]
        for log in sorted(here.glob("*_s*.log"))}
common = min(rows[-1][0] for rows in runs.values())
for name, rows in runs.items():
    late = [(e, r) for s, e, r in rows if 10000 <= s <= common]
    if late:
        geo = statistics.geometric_mean(e for e, _ in late)
        print(f"{name}: last step {rows[-1][0]:.0f}, error {rows[-1][1]:.4f}; steps 10000-{common:.0f} "
              f"({len(late)} evaluations): geometric mean error {geo:.4f}, min {min(e for e, _ in late):.4f}, "
              f"max {max(e for e, _ in late):.4f}, mean residual rounding {sum(r for _, r in late) / len(late):.1f} %")
for name, rows in runs.items():
    steps, err, rnd = zip(*rows)
    (line,) = ax.semilogy(steps, err, "-o", ms=2, label=f"{name} error")
    ax.semilogy(steps, [r / 100 for r in rnd], "--", lw=0.9, color=line.get_color(), label=f"{name} residual rounding")
ax.set(xlabel="step", title="Kovasznay 5 x 100, seed 0: error (-o) and fp16 residual rounding (--)")
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(here / "error_rounding.png", dpi=110)
print(f"wrote {here / 'error_rounding.png'}")
