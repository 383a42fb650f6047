"""Regenerate every table in the benchmark Markdown files from the JSON/JSONL results beside them.

A Markdown file under ``benchmarks/`` holds generated tables between two markers::

    <!-- table: GENERATOR FILE [ARG ...] -->
    (generated: never edit by hand)
    <!-- /table -->

FILE is relative to the Markdown file. ``python benchmarks/make_tables.py`` rewrites every such block;
``--check`` rewrites nothing and exits 1, naming each stale block, when a committed table differs from
what its data gives (CI runs it, so a table cannot drift from its numbers). Generators:

* ``bench FILE.json``: ``lowprec bench``'s table, as the command prints it.
* ``bench_accuracy FILE.json``: each policy's relative error against fp64, one column per grid.
* ``pareto FILE.jsonl``: a ``lowprec pareto`` sweep's table (as in its ``pareto.md``) and its front.
* ``pareto_vs_float FILE.jsonl ...``: every preset against the float model at full resolution.
* ``pareto_fronts FILE.jsonl ...``: each sweep's front: its points, their kind, its span in BOPs.
* ``runs FILE.jsonl ...``: training runs' ``metrics.jsonl``: test error at the first, middle and last
  epoch, saved activations, median seconds per epoch; one row per file.
* ``runs_by_policy FILE.jsonl ...``: the same runs grouped by policy (seeds): mean (min-max) of the last
  test error, its ratio to ``full``'s mean, and the saved activations.
* ``rollout FILE.json``: ``python -m lowprec.train.rollout`` per seed (``{"seeds": {seed: results}}``): the
  one-step test error and the rollout error after k steps per precision, mean and range over the seeds.
* ``memory FILE.json``: saved activations and CPU time per step, stored against recomputed, from
  ``benchmarks/memory_cpu.py``; ratios against neuraloperator fp32 and against the same policy stored.
* ``int8 FILE.json``: the int8 kernels of ``lowprec quantize --int8``, as the command prints them.
* ``physics_hosts FILE.json``: the machines the experiments name.
* ``physics_errors FILE.json GROUP``: mean final error per mode of each experiment of a group, and mixed
  against fp32 on the seeds both ran.
* ``physics_seeds FILE.json ID|GROUP[,...]``: the final error of every seed, per mode (and experiment).
* ``physics_evals FILE.json ID STEP ...``: error and residual rounding along training.
* ``accuracy_study FILE.json``: ``lowprec analyze``'s table: precision error per policy and N against the
  discretization error, crossover and verdict.
* ``mode_sweep FILE.json``: ``lowprec analyze --mode-sweep``: error, time and saved activations per mode count.
* ``pinn_bound FILE.json``: ``benchmarks/pinn_bound.py``'s check of the gradient-descent rounding bound.
* ``accuracy_claims FILE.jsonl [table|claims]``: ``benchmarks/accuracy_claims.py``: test L2/H1 per case at 1x
  and zero-shot 2x, mean ± std over the seeds and the L2 ratio to ``full`` (``table``); or each paper claim
  beside the measured per-seed ratios (``claims``).
* ``grad_compression FILE.json``: ``benchmarks/grad_compression_cpu.py``: final test L2/H1 per seed of
  2-process training with fp32 and with bf16 gradient communication, and their mean.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent
BLOCK = re.compile(r"(<!-- table: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /table -->)", re.DOTALL)

try:
    import lowprec  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT.parent / "src"))


def _code(text: str) -> str:
    return "```\n" + text.rstrip() + "\n```\n"


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def _jsonl(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [p for p in lines if "header" not in p]


def _sweep_name(path: Path) -> str:
    return path.stem.removeprefix("pareto_")


# --- lowprec bench ---------------------------------------------------------------------------------------


def bench(path: Path) -> str:
    from lowprec.bench.report import bench_table

    return _code(bench_table(json.loads(path.read_text())))


def bench_accuracy(path: Path) -> str:
    rows = json.loads(path.read_text())["rows"]
    grids = sorted({r["grid"] for r in rows})
    cases: dict[tuple, dict] = {}
    for r in rows:
        case = cases.setdefault((r["impl"], r["policy"], r["backend"]), {})
        case[r["grid"]] = r
    body = []
    for (impl, policy, backend), by_grid in cases.items():
        cells = []
        for g in grids:
            r = by_grid.get(g)
            cells.append(
                "-"
                if r is None
                else r["error"].split(": ", 1)[-1]
                if "error" in r
                else "-"
                if r.get("rel_error") is None
                else f"{r['rel_error']:.1e}"
            )
        finite = {r.get("finite") for r in by_grid.values() if "error" not in r}
        name = policy if impl == "lowprec" else f"{impl} {policy}"
        body.append([name, backend, *cells, "-" if not finite else "yes" if finite == {True} else "no"])
    return _markdown(["policy", "backend", *(f"rel. error {g}²" for g in grids), "loss finite"], body)


# --- lowprec pareto / quantize ---------------------------------------------------------------------------


def _front_line(points: list[dict]) -> str:
    from lowprec.quant.study import pareto_front

    front = pareto_front(points)
    both = sum(p["factor"] > 1 and p["preset"] != "float" for p in front)
    quant = sum(p["factor"] == 1 and p["preset"] != "float" for p in front)
    span = max(p["bops"] for p in front) / min(p["bops"] for p in front)
    sweep = max(p["bops"] for p in points) / min(p["bops"] for p in points)
    return (
        f"Front (`*`): {len(front)} of {len(points)} points, {both} quantized and at reduced resolution, "
        f"{quant} quantized only, {len(front) - both - quant} float; it spans {span:.0f}x in BOPs "
        f"({min(p['bops'] for p in front):.1e} .. {max(p['bops'] for p in front):.1e}), the sweep {sweep:.0f}x.\n"
    )


def pareto(path: Path) -> str:
    from lowprec.quant.study import table

    points = _jsonl(path)
    return _code(table(points)) + "\n" + _front_line(points)


def pareto_vs_float(*paths: Path) -> str:
    from lowprec.report import format_table

    rows = []
    for path in paths:
        points = [p for p in _jsonl(path) if p["factor"] == 1]
        base = next(p for p in points if p["preset"] == "float")
        for p in points:
            if p is not base:
                rows.append(
                    {
                        "sweep": _sweep_name(path),
                        "preset": p["preset"],
                        "float_mse": base["mse"],
                        "mse": p["mse"],
                        "ratio": p["mse"] / base["mse"],
                        "float_l2": base["rel_l2"],
                        "rel_l2": p["rel_l2"],
                    }
                )
    return _code(
        format_table(
            rows,
            [
                ("sweep", "sweep", ""),
                ("preset", "preset", ""),
                ("float_mse", "float MSE", ".3e"),
                ("mse", "MSE", ".3e"),
                ("ratio", "MSE / float", ".2f"),
                ("float_l2", "float rel L2", ".4f"),
                ("rel_l2", "rel L2", ".4f"),
            ],
        )
    )


def pareto_fronts(*paths: Path) -> str:
    from lowprec.quant.study import pareto_front

    body = []
    for path in paths:
        points = _jsonl(path)
        front = pareto_front(points)
        lo, hi = min(p["bops"] for p in front), max(p["bops"] for p in front)
        body.append(
            [
                _sweep_name(path),
                str(len(points)),
                str(len(front)),
                str(sum(p["factor"] > 1 and p["preset"] != "float" for p in front)),
                str(sum(p["factor"] == 1 and p["preset"] != "float" for p in front)),
                str(sum(p["preset"] == "float" for p in front)),
                f"{hi / lo:.0f}x ({lo:.1e} .. {hi:.1e})",
                f"{max(p['bops'] for p in points) / min(p['bops'] for p in points):.0f}x",
            ]
        )
    return _markdown(
        [
            "sweep",
            "points",
            "on the front",
            "quantized and reduced",
            "quantized only",
            "float",
            "front span in BOPs",
            "sweep span",
        ],
        body,
    )


def rollout(path: Path) -> str:
    seeds = json.loads(path.read_text())["seeds"]
    precisions = list(next(iter(seeds.values())))
    steps = [k for k in (1, 2, 4, 6, 9, 12) if k <= len(next(iter(seeds.values()))[precisions[0]]["l2"])]

    def cell(values: list[float]) -> str:
        return f"{_mean(values):.3f} ({min(values):.3f}-{max(values):.3f})" if len(values) > 1 else f"{values[0]:.3f}"

    body = []
    for name in precisions:
        runs = [r[name] for r in seeds.values()]
        one_step = [next(iter(r["test_l2"].values())) for r in runs]
        body.append([name, cell(one_step)] + [cell([r["l2"][k - 1] for r in runs]) for k in steps])
    header = ["precision", "one-step test L2"] + [f"after {k} h" for k in steps]
    return f"{len(seeds)} seed(s): {', '.join(seeds)}; mean (min-max) over seeds\n\n" + _markdown(header, body)


def runs(*paths: Path) -> str:
    body = []
    for path in paths:
        epochs = _jsonl(path)
        test = next(k for k in epochs[0] if k.startswith("test") and k.endswith("_l2"))
        mid = epochs[(len(epochs) - 1) // 2]
        seconds = sorted(e["seconds"] for e in epochs)[len(epochs) // 2]
        body.append(
            [
                path.stem,
                epochs[0]["policy"],
                f"{epochs[0][test]:.4f}",
                f"{mid[test]:.4f} ({mid['epoch']})",
                f"{epochs[-1][test]:.4f} ({epochs[-1]['epoch']})",
                f"{epochs[0]['activation_mib']:.1f}",
                f"{seconds:.0f}",
            ]
        )
    header = [
        "run",
        "policy",
        "test rel. L2, epoch 1",
        "middle (epoch)",
        "last (epoch)",
        "saved activations MiB (first epoch)",
        "median s/epoch",
    ]
    return _markdown(header, body)


def runs_by_policy(*paths: Path) -> str:
    groups: dict[str, list[dict]] = {}
    for path in paths:
        epochs = _jsonl(path)
        # A schedule's runs are named by the policies they went through, in order.
        groups.setdefault(" > ".join(dict.fromkeys(e["policy"] for e in epochs)), []).append(epochs)
    test = next(k for k in groups[next(iter(groups))][0][0] if k.startswith("test") and k.endswith("_l2"))
    last = {p: [runs[-1][test] for runs in g] for p, g in groups.items()}
    base = _mean(last["full"]) if "full" in last else None
    body = []
    for policy, runs in groups.items():
        values = last[policy]
        body.append(
            [
                policy,
                str(len(values)),
                f"{_mean(values):.4f} ({min(values):.4f}-{max(values):.4f})",
                f"{_mean(values) / base:.3f}" if base else "-",
                f"{_mean([r[0]['activation_mib'] for r in runs]):.1f}",
                f"{_mean([sorted(e['seconds'] for e in r)[len(r) // 2] for r in runs]):.0f}",
            ]
        )
    header = ["policy", "seeds", f"final {test} mean (min-max)", "vs full", "saved activations MiB", "median s/epoch"]
    return _markdown(header, body)


def memory(path: Path) -> str:
    result = json.loads(path.read_text())
    rows = result["rows"]
    body = []
    for r in rows:
        base = next((b for b in rows if b["grid"] == r["grid"] and b["impl"] == "neuralop"), None)
        stored = next(
            b
            for b in rows
            if b["grid"] == r["grid"] and b["impl"] == r["impl"] and b["policy"] == r["policy"] and not b["recompute"]
        )
        option = "recompute" if r["recompute"] else "stored"
        body.append(
            [
                f"{r['grid']}^2",
                r["impl"],
                r["policy"],
                option,
                f"{r['saved_mib']:.1f}",
                f"{r['saved_mib'] / base['saved_mib']:.2f}x" if base else "-",
                f"{r['cpu_s']:.3f}",
                f"{r['cpu_s'] / stored['cpu_s']:.2f}x",
            ]
        )
    header = ["grid", "impl", "policy", "activations", "saved MiB", "vs neuralop fp32", "CPU s/step", "vs stored"]
    meta = result["meta"]
    return (
        f"{meta['device']}, torch {meta['torch']}, neuraloperator {meta['neuraloperator'] or '-'}, "
        f"{meta['date'][:10]}; `{meta['command']}`\n\n" + _markdown(header, body)
    )


def int8(path: Path) -> str:
    from lowprec.quant.int8 import latency_table
    from lowprec.report import format_table

    check = json.loads(path.read_text())["int8"]
    head = (
        f"int8 kernels (torch._int_mm) in {len(check['converted'])} Linear/Conv layers; max |int8 - fake-quant| "
        f"/ max |fake-quant| = {check['max_rel_diff']:.2e}"
    )
    whole = format_table(
        [{k: v * 1e3 for k, v in check["seconds"].items()}],
        [
            ("float", "whole model fp32 ms", ".1f"),
            ("fake", "fake-quant ms", ".1f"),
            ("int8", "int8 Linear/Conv ms", ".1f"),
        ],
    )
    return _code("\n".join([head, whole, latency_table(check)]))


# --- PINNs and DeepONets ---------------------------------------------------------------------------------

MODES = ("fp32", "fp16", "mixed", "bf16", "mixed_then_fp32")


def _experiments(path: Path, selector: str) -> list[dict]:
    wanted = selector.split(",")
    found = [e for e in json.loads(path.read_text())["experiments"] if e["id"] in wanted or e["group"] in wanted]
    if not found:
        raise SystemExit(f"{path}: no experiment or group {selector!r}")
    return found


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _errors(experiment: dict, mode: str, by_seed: bool = False):
    """Final errors of the runs of ``mode`` that finished: a list, or a dict by seed."""
    runs = [r for r in experiment["runs"] if r["mode"] == mode and not r.get("failure")]
    return {r["seed"]: r["error"] for r in runs} if by_seed else [r["error"] for r in runs]


def _fmt(x: float, spec: str = ".4f") -> str:
    return "-" if math.isnan(x) else format(x, spec)


def physics_errors(path: Path, group: str) -> str:
    everything = {e["id"]: e for e in json.loads(path.read_text())["experiments"]}
    body = []
    for e in _experiments(path, group):
        cells = [_fmt(_mean(_errors(e, m))) for m in MODES]
        ours = next((m for m in ("mixed", "mixed_then_fp32") if _errors(e, m)), None)
        vs = "-"
        if ours is not None:
            # On the seeds both modes ran: fp32 from the baseline experiment where this one has none.
            ref = _errors(e, "fp32", by_seed=True) or _errors(
                everything[e.get("baseline", e["id"])], "fp32", by_seed=True
            )
            mine = {s: x for s, x in _errors(e, ours, by_seed=True).items() if s in ref}
            if mine:
                vs = f"{_mean(list(mine.values())) / _mean([ref[s] for s in mine]) - 1:+.1%}"
        seeds = sorted({r["seed"] for r in e["runs"]})
        body.append(
            [e["title"], f"`{e['id']}`", ", ".join(map(str, seeds)), f"{e['host']}, {e['date'] or '-'}", *cells, vs]
        )
    return _markdown(["experiment", "id", "seeds", "host, date", *MODES, "mixed vs fp32"], body)


def physics_hosts(path: Path) -> str:
    return _markdown(["host", "machine"], [[k, v] for k, v in json.loads(path.read_text())["hosts"].items()])


def physics_seeds(path: Path, selector: str) -> str:
    experiments = _experiments(path, selector)
    seeds = sorted({r["seed"] for e in experiments for r in e["runs"]})
    body = []
    for e in experiments:
        for mode in dict.fromkeys(r["mode"] for r in e["runs"]):
            by_seed = {r["seed"]: r["error"] for r in e["runs"] if r["mode"] == mode}
            name = mode if len(experiments) == 1 else f"{e['title']}: {mode}"
            body.append([name, *(_fmt(by_seed.get(s, math.nan)) for s in seeds), _fmt(_mean(list(by_seed.values())))])
    return _markdown(
        ["mode" if len(experiments) == 1 else "experiment, mode", *(f"seed {s}" for s in seeds), "mean"], body
    )


def physics_evals(path: Path, experiment_id: str, *steps: str) -> str:
    (e,) = _experiments(path, experiment_id)
    wanted = [int(s) for s in steps]
    body = []
    for r in e["runs"]:
        at = {ev[0]: ev for ev in r["evals"]}
        body.append([f"{r['mode']} error", *(_fmt(at[s][1]) if s in at else "-" for s in wanted)])
        body.append(
            [
                f"{r['mode']} residual rounding",
                *(f"{100 * at[s][2]:.1f} %" if s in at and at[s][2] is not None else "-" for s in wanted),
            ]
        )
    return _markdown(["step", *map(str, wanted)], body)


# --- lowprec analyze, benchmarks/pinn_bound.py ---------------------------------------------------------------


def accuracy_study(path: Path) -> str:
    from lowprec.analysis.cli import format_study

    return _code(format_study(json.loads(path.read_text())))


def mode_sweep(path: Path) -> str:
    body = []
    for row in json.loads(path.read_text())["mode_sweep"]:
        if "skipped" in row:
            body.append([str(row["modes"]), "-", row["skipped"], "", ""])
            continue
        for policy, r in row["policies"].items():
            saved = f"{r['saved_bytes'] / 2**20:.1f}" if "saved_bytes" in r else "-"
            seconds = f"{r['seconds']:.3f}" if "seconds" in r else "-"
            body.append([str(row["modes"]), policy, f"{r['error']:.2e}", seconds, saved])
    return _markdown(["modes", "policy", "error vs fp64", "s / step (fwd+bwd)", "saved MiB"], body)


def pinn_bound(path: Path) -> str:
    data = json.loads(path.read_text())
    header = [
        "mode",
        "weights / compute",
        "L",
        "eta",
        "delta (median)",
        "delta / u_c",
        "floor G*",
        "|g| first",
        "|g| last",
        "loss first",
        "loss last",
        "(1) holds",
        "loss rose",
    ]
    body = []
    for s in data["summary"].values():
        body.append(
            [
                s["mode"],
                f"{s['weights']} / {s['compute']}",
                f"{s['L']:.4g}",
                f"{s['eta']:.3g}",
                f"{s['delta_median']:.2e}",
                f"{s['delta_over_u_compute']:.3g}",
                f"{s['floor_measured_delta']:.3g}",
                f"{s['grad_first']:.3g}",
                f"{s['grad_last']:.3g}",
                f"{s['loss_first']:.5g}",
                f"{s['loss_last']:.5g}",
                f"{s['descent_inequality_holds']}/{s['steps']}",
                f"{s['stalled_steps']}/{s['steps']}",
            ]
        )
    return _markdown(header, body)


def _std(xs: list[float]) -> float:
    """Sample standard deviation (n - 1); nan for fewer than two values."""
    if len(xs) < 2:
        return math.nan
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _pm(xs: list[float]) -> str:
    return f"{_mean(xs):.4f}" + ("" if len(xs) < 2 else f" ± {_std(xs):.4f}")


def _claims_runs(path: Path) -> dict[str, dict[str, dict[int, dict]]]:
    """problem -> case -> seed -> run (the last line wins where a (problem, case, seed) ran twice)."""
    out: dict[str, dict[str, dict[int, dict]]] = {}
    for r in _jsonl(path):
        out.setdefault(r["problem"], {}).setdefault(r["case"], {})[r["seed"]] = r
    return out


def _grids(run: dict) -> tuple[str, str]:
    """The test-set names at the training resolution and at the (first) zero-shot one."""
    return f"test_{run['resolution']}", f"test_{run['test_resolutions'][0]}"


def _claim_errors(runs: dict[int, dict], grid: str, metric: str = "l2") -> dict[int, float]:
    """seed -> error on ``grid`` evaluated under the run's last policy."""
    return {s: r["errors"][f"{grid}/own"][metric] for s, r in runs.items() if f"{grid}/own" in r["errors"]}


def accuracy_claims(path: Path, part: str = "table") -> str:
    """``benchmarks/accuracy_claims.py``'s runs: ``table`` (per problem and case, mean ± std over seeds of test
    L2 and H1 at 1x and zero-shot at 2x, and the ratio of the mean L2 to ``full``'s over the seeds both ran)
    or ``claims`` (each claim of the papers beside what the runs measured). Errors are evaluated under each
    run's last policy: a model trained with a stabilizer is tested with it."""
    data = _claims_runs(path)
    if part == "claims":
        return _claims_verdicts(data)
    if part != "table":
        raise SystemExit(f"accuracy_claims: unknown part {part!r}; choose table or claims")
    out = []
    for problem, cases in data.items():
        first = next(iter(next(iter(cases.values())).values()))
        one, two = _grids(first)
        n1, n2 = one.removeprefix("test_"), two.removeprefix("test_")
        sizes = (
            f"**{problem}**: trained at {n1}^2, zero-shot at {n2}^2; {first['n_train']} training and "
            f"{first['n_test']} test samples, {first['epochs']} epochs, width {first['width']}"
        )
        if "batch_size" in first:
            sizes += f", batch {first['batch_size']}, lr {first['lr']:g}"
        trivial = [
            r["errors"][f"{one}/trivial"] for r in cases.get("full", {}).values() if f"{one}/trivial" in r["errors"]
        ]
        if trivial:
            sizes += (
                f". Trivial predictor (the mean training target) at {n1}^2: L2 {_mean([t['l2'] for t in trivial]):.4f}, "
                f"H1 {_mean([t['h1'] for t in trivial]):.4f}"
            )
        header = [
            "case",
            "seeds",
            f"L2 {n1}^2",
            "/ full",
            f"H1 {n1}^2",
            f"L2 {n2}^2 (zero-shot)",
            "/ full",
            f"H1 {n2}^2",
        ]
        full = cases.get("full", {})
        body = []
        for case, runs in cases.items():
            cells = [case, ",".join(str(s) for s in sorted(runs))]
            for grid in (one, two):
                l2, h1 = _claim_errors(runs, grid), list(_claim_errors(runs, grid, "h1").values())
                ref = _claim_errors(full, grid)
                both = [s for s in l2 if s in ref]  # the ratio of the means over the seeds both ran
                ratio = _mean([l2[s] for s in both]) / _mean([ref[s] for s in both]) if both else math.nan
                cells += [_pm(list(l2.values())), _fmt(ratio, ".3f"), _pm(h1)]
            body.append(cells)
        out.append(sizes + ".\n\n" + _markdown(header, body))
    return "\n".join(out)


def _ratios(runs: dict[int, dict], ref: dict[int, dict], grid: str) -> list[float]:
    """Per seed both ran: the case's L2 over the reference's (same data, same initial weights)."""
    a, b = _claim_errors(runs, grid), _claim_errors(ref, grid)
    return [a[s] / b[s] for s in sorted(a) if s in b]


def _ratio_text(ratios: list[float]) -> str:
    if not ratios:
        return "-"
    return f"x{_mean(ratios):.3f}" + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else "")


# Thresholds of the verdicts: "little or no loss" is a mean L2 ratio to full of at most 1.05; "about 10 %
# better" is at most 0.95 (half-way), and the schedule is at least "better" where every seed is below 1.
LITTLE_LOSS, BETTER = 1.05, 0.95
STABILIZERS = {"half": "tanh", "half_hardclip": "hardclip", "half_sigma_clip": "sigma_clip"}


def _claims_verdicts(data: dict) -> str:
    """One row per paper claim and problem: the measured per-seed L2 ratio (mean, seed range) and a verdict."""
    header = ["paper claim", "problem", "compared", "seeds", "L2 ratio 1x", "L2 ratio 2x (zero-shot)", "reproduced"]
    body = []
    for problem, cases in data.items():
        full = cases.get("full", {})
        if not full:
            continue
        one, two = _grids(next(iter(full.values())))
        for case in ("mixed", "mixed_tanh", "amp", "bf16"):
            if case in cases:
                r1, r2 = _ratios(cases[case], full, one), _ratios(cases[case], full, two)
                verdict = "yes" if _mean(r1) <= LITTLE_LOSS else f"no: {100 * (_mean(r1) - 1):+.0f} %"
                body.append(
                    [
                        "little or no loss in mixed precision",
                        problem,
                        f"{case} / full",
                        str(len(r1)),
                        _ratio_text(r1),
                        _ratio_text(r2),
                        verdict,
                    ]
                )
        if "paper" in cases:
            r1, r2 = _ratios(cases["paper"], full, one), _ratios(cases["paper"], full, two)
            m = _mean(r1)
            verdict = (
                "yes" if m <= BETTER else "better, by less" if all(x < 1 for x in r1) else f"no: {100 * (m - 1):+.0f} %"
            )
            body.append(
                [
                    "schedule ~10 % better than full (NS)",
                    problem,
                    "paper / full",
                    str(len(r1)),
                    _ratio_text(r1),
                    _ratio_text(r2),
                    verdict,
                ]
            )
        stab = {c: _claim_errors(cases[c], one) for c in STABILIZERS if c in cases}
        if "half" in stab and len(stab) > 1:
            means = {c: _mean(list(v.values())) for c, v in stab.items()}
            rival = min((c for c in stab if c != "half"), key=means.get)
            r1 = _ratios(cases["half"], cases[rival], one)
            r2 = _ratios(cases["half"], cases[rival], two)
            ranked = " < ".join(STABILIZERS[c] for c in sorted(means, key=means.get))
            body.append(
                [
                    "tanh the best stabilizer (half)",
                    problem,
                    f"tanh / {STABILIZERS[rival]}",
                    str(len(r1)),
                    _ratio_text(r1),
                    _ratio_text(r2),
                    ("yes" if min(means, key=means.get) == "half" else "no") + f": {ranked}",
                ]
            )
    return _markdown(header, body)


def grad_compression(path: Path) -> str:
    result = json.loads(path.read_text())
    meta, runs = result["meta"], result["runs"]
    final = {(r["parallel"], r["seed"], r["grad_compression"]): r["history"][-1] for r in runs}
    test = next(k.removesuffix("_l2") for k in runs[0]["history"][-1] if k.startswith("test") and k.endswith("_l2"))
    keys = ("train_loss", f"{test}_l2", f"{test}_h1")
    rows = []
    for parallel in dict.fromkeys(r["parallel"] for r in runs):
        seeds = sorted({seed for p, seed, _ in final if p == parallel})
        rows += [[parallel, str(seed), *(final[parallel, seed, c] for c in ("none", "bf16"))] for seed in seeds]
        mean = {c: {k: _mean([final[parallel, s, c][k] for s in seeds]) for k in keys} for c in ("none", "bf16")}
        rows.append([parallel, f"mean of {len(seeds)}", mean["none"], mean["bf16"]])
    body = [
        [
            parallel,
            name,
            f"{fp32[f'{test}_l2']:.5f}",
            f"{bf16[f'{test}_l2']:.5f}",
            f"{bf16[f'{test}_l2'] / fp32[f'{test}_l2'] - 1:+.3%}",
            f"{fp32[f'{test}_h1']:.5f}",
            f"{bf16[f'{test}_h1']:.5f}",
            f"{fp32['train_loss']:.5f}",
            f"{bf16['train_loss']:.5f}",
        ]
        for parallel, name, fp32, bf16 in rows
    ]
    header = [
        "parallel",
        "seed",
        f"{test} L2, fp32 gradients",
        "bf16 gradients",
        "bf16 vs fp32",
        f"{test} H1, fp32",
        "bf16",
        "train loss, fp32",
        "bf16",
    ]
    epochs = len(runs[0]["history"])
    intro = (
        f"{meta['machine']}; processes: {meta['processes']}; torch {meta['torch']}, {meta['date']}; {epochs} epochs; "
        f"`{meta['command']}`\n\n"
    )
    return intro + _markdown(header, body)


GENERATORS: dict[str, Callable[..., str]] = {
    "bench": bench,
    "bench_accuracy": bench_accuracy,
    "pareto": pareto,
    "pareto_vs_float": pareto_vs_float,
    "pareto_fronts": pareto_fronts,
    "int8": int8,
    "memory": memory,
    "runs": runs,
    "runs_by_policy": runs_by_policy,
    "rollout": rollout,
    "physics_errors": physics_errors,
    "physics_hosts": physics_hosts,
    "physics_seeds": physics_seeds,
    "physics_evals": physics_evals,
    "accuracy_study": accuracy_study,
    "pinn_bound": pinn_bound,
    "mode_sweep": mode_sweep,
    "accuracy_claims": accuracy_claims,
    "grad_compression": grad_compression,
}
MANY_FILES = {
    "pareto_vs_float",
    "pareto_fronts",
    "runs",
    "runs_by_policy",
}  # generators whose every argument is a data file


def render(markdown: Path) -> str:
    """``markdown``'s text with every generated block rewritten from its data."""

    def block(match: re.Match) -> str:
        name, file, *args = match["spec"].split()
        if name not in GENERATORS:
            raise SystemExit(f"{markdown}: unknown table generator {name!r}; known: {', '.join(GENERATORS)}")
        files = [markdown.parent / f for f in ([file, *args] if name in MANY_FILES else [file])]
        for f in files:
            if not f.is_file():
                raise SystemExit(f"{markdown}: table {match['spec']!r} reads {f}, which does not exist")
        out = GENERATORS[name](*files) if name in MANY_FILES else GENERATORS[name](files[0], *args)
        return match.group(1) + out + match.group(4)

    return BLOCK.sub(block, markdown.read_text())


def markdown_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for p in root.rglob("*.md") if "<!-- table:" in p.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a committed table is stale")
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="folder searched for Markdown files (default: benchmarks/)"
    )
    args = parser.parse_args(argv)
    stale = []
    for md in markdown_files(args.root):
        text, new = md.read_text(), render(md)
        if text == new:
            continue
        if args.check:
            old_blocks = {m["spec"]: m["body"] for m in BLOCK.finditer(text)}
            for m in BLOCK.finditer(new):
                if old_blocks.get(m["spec"]) != m["body"]:
                    stale.append(f"{md}: table `{m['spec']}` differs from its data")
        else:
            md.write_text(new)
            print(f"rewrote {md}")
    for line in stale:
        print(line)
    if stale:
        print("run `python benchmarks/make_tables.py` and commit the result")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
