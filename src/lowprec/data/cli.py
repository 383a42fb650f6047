"""``lowprec data``: generate a data set to a file, describe a data file, plot a sample.

    lowprec data generate navier_stokes --n 200 --res 64 --seed 0 --out ns.h5 --viscosity 1e-4 --t-final 30
    lowprec data generate darcy --n 1000 --res 65 --out darcy.h5
    lowprec data generate burgers_pdebench --n 100 --out burgers.hdf5 --format pdebench
    lowprec data info ns.h5
    lowprec data plot ns.h5 --index 3 --out ns3.png

``generate`` solves (or reads from the cache) exactly what ``lowprec train`` with
``problem: NAME`` would, and writes it: input/output problems as ``x``/``y`` (our
``lowprec`` layout, .h5 or .npz), time series as the whole trajectories ``u``/``t``
(``lowprec-trajectories``, .h5) together with the default input/output view, so
``lowprec train --path FILE`` cuts the same pairs. ``--format pdebench`` writes
PDEBench's layout instead. Every PDE parameter is a flag (``generate NAME --help``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .._catalog import DATA_PROBLEMS
from .._threads import add_threads_flag

if TYPE_CHECKING:
    import numpy as np

COMMON = ("resolution", "n", "seed")


def _add_problem_parser(sub, name: str, problem: dict) -> None:
    """``generate NAME``'s flags, from the problem's entry in :data:`lowprec._catalog.DATA_PROBLEMS`."""
    params = problem["params"]
    docs = {p["name"]: p["help"].replace("%", "%%") for p in params if "help" in p}
    hyphenated = name.replace("_", "-")
    p = sub.add_parser(
        name,
        aliases=[hyphenated] if hyphenated != name else [],
        help=problem["summary"],
        description=problem["summary"] + ".",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = {f["name"]: f["default"] for f in params}
    p.add_argument("--n", type=int, default=defaults["n"], help="number of samples (trajectories)")
    p.add_argument(
        "--res",
        dest="resolution",
        type=int,
        default=defaults["resolution"],
        help=docs.get("resolution", "grid points per axis"),
    )
    p.add_argument("--seed", type=int, default=defaults["seed"], help=docs.get("seed", "random seed"))
    p.add_argument(
        "--out",
        help="write the data here (.h5; .npz for input/output problems); without "
        "it the data is only generated into the cache",
    )
    p.add_argument(
        "--format",
        choices=("lowprec", "pdebench"),
        default="lowprec",
        help="file layout: ours (read back by load_dataset with parameters and view), or "
        "PDEBench's (burgers*, diffusion_sorption, darcy*)",
    )
    group = p.add_argument_group(f"{name} parameters (cached with the data)")
    for f in params:
        if f["name"] in COMMON:
            continue
        kind, key = f["type"], f["name"]
        flag = "--" + key.replace("_", "-")
        if kind == "tuple":
            group.add_argument(
                flag,
                dest=key,
                type=float,
                nargs=f["nargs"],
                default=argparse.SUPPRESS,
                metavar="V",
                help=f"{docs.get(key, '')} (default: {' '.join(map(str, f['default']))})",
            )
        elif kind == "bool":
            group.add_argument(
                flag,
                dest=key,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=docs.get(key),
            )
        else:
            group.add_argument(
                flag,
                dest=key,
                type={"int": int, "float": float, "str": str}[kind],
                default=argparse.SUPPRESS,
                metavar=key.split("_")[-1].upper(),
                help=f"{docs.get(key, '')} (default: {f['default']})",
            )
    dv = problem["view"]
    if dv is not None:
        view = p.add_argument_group("default input/output view (stored in the file; not cached)")
        view.add_argument("--t-in", dest="t_in", type=int, default=dv["t_in"], help="input snapshots (channels of x)")
        view.add_argument(
            "--t-out",
            dest="t_out",
            type=int,
            default=dv["t_out"],
            help="output snapshots (channels of y); default: all after the input",
        )
        view.add_argument(
            "--t-start", dest="t_start", type=int, default=dv["t_start"], help="index of the first input snapshot"
        )
        view.add_argument(
            "--window-stride",
            dest="window_stride",
            type=int,
            default=dv["window_stride"],
            help="0: one pair per trajectory; k > 0: every window k snapshots apart "
            "(autoregressive training; needs --t-out)",
        )
    speed = p.add_argument_group("speed (the data does not depend on these)")
    speed.add_argument(
        "--device", default=None, help="torch device for the torch solvers (default: cuda if available, else cpu)"
    )
    speed.add_argument(
        "--batch-size", dest="batch_size", type=int, default=None, help="samples solved together (torch solvers)"
    )
    speed.add_argument(
        "--cache-dir",
        dest="cache_dir",
        default=None,
        help="cache directory (default: $LOWPREC_CACHE or ~/.cache/lowprec)",
    )
    speed.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="processes that share the samples (each sample depends only on its seed and index, so the cache "
        "entry is the one a single process writes)",
    )
    speed.add_argument("--no-cache", dest="cache", action="store_false", help="neither read nor write the cache")
    speed.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_threads_flag(speed)
    p.set_defaults(func=_generate, problem=name)


def _generate(args) -> int:
    import numpy as np

    from .io import save_h5, save_npz, save_pdebench_1d, save_pdebench_darcy, save_pdebench_groups, save_trajectories
    from .problems import PROBLEMS, VIEW_KEYS

    problem = PROBLEMS[args.problem]
    names = {f.name for f in dataclasses.fields(problem.params)} - set(COMMON)
    params = {k: v for k, v in vars(args).items() if k in names}
    speed = {k: getattr(args, k) for k in ("device", "batch_size") if getattr(args, k, None) is not None}
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".h5", ".hdf5", ".npz"):
        raise ValueError(f"--out {out}: use a .h5/.hdf5 file (or .npz for input/output problems).")
    from ..config import check_writable
    from .base import default_cache_dir

    if out is not None:
        check_writable(out.resolve().parent, "--out")
    if args.cache:
        check_writable(args.cache_dir if args.cache_dir is not None else default_cache_dir(), "--cache-dir")
    if problem.trajectories is not None:  # check the view before solving anything
        times = problem.params.from_kwargs(resolution=args.resolution, n=args.n, seed=args.seed, **params).times()
        _check_view(times, {k: getattr(args, k) for k in VIEW_KEYS})
    start = time.perf_counter()
    if args.workers > 1:
        from .parallel import load_or_generate_parallel

        if not args.cache:
            raise ValueError(
                "--workers N merges the processes' samples into the cache; drop --no-cache, or use --workers 1."
            )
        load_or_generate_parallel(
            problem.params.from_kwargs(resolution=args.resolution, n=args.n, seed=args.seed, **params),
            args.workers,
            args.cache_dir,
            **speed,
        )
    common = dict(
        resolution=args.resolution,
        n=args.n,
        seed=args.seed,
        cache_dir=args.cache_dir,
        cache=args.cache,
        progress=args.progress,
        **speed,
        **params,
    )
    if problem.trajectories is not None:
        data = problem.trajectories(**common)
        view = {k: getattr(args, k) for k in VIEW_KEYS}
        pairs = _cut(data, view)  # checks the view before anything is written
        shapes = (
            f"u {tuple(data.u.shape)} at t = {data.t[0].item():g}..{data.t[-1].item():g}; "
            f"default view x {tuple(pairs.x.shape)}, y {tuple(pairs.y.shape)}"
        )
    else:
        data = problem.dataset(**common)
        shapes = (
            ", ".join(f"{k} {tuple(v.shape)}" for k, v in data.fields.items())
            if hasattr(data, "fields")
            else f"x {tuple(data.x.shape)}, y {tuple(data.y.shape)}"
        )
    seconds = time.perf_counter() - start
    print(f"{problem.name}: {shapes} ({seconds:.1f} s{'' if args.cache else ', not cached'})")
    if out is None:
        if args.cache:
            print(f"cached in {data.meta.get('source')}; pass --out FILE to write a copy elsewhere")
        return 0
    if hasattr(data, "fields"):  # named fields (bodies): their own HDF5 layout
        from .bodies import save_bodies

        if out.suffix.lower() == ".npz" or args.format != "lowprec":
            raise ValueError(f"--out {out}: {problem.name} is written as HDF5 (.h5) in lowprec's layout.")
        save_bodies(data, out)
    elif args.format == "pdebench":
        if problem.name in ("burgers", "burgers_pdebench"):
            attrs = (
                {"Nu": data.meta["params"]["nu"]}
                if problem.name == "burgers_pdebench"
                else {"Nu": data.meta["params"]["viscosity"] * np.pi}
            )
            save_pdebench_1d(data, out, attrs)
        elif problem.name == "diffusion_sorption":
            save_pdebench_groups(data, out)
        elif problem.name in ("darcy", "darcy_pdebench"):
            p = data.meta["params"]
            save_pdebench_darcy(data, out, beta=p.get("beta", p.get("forcing", 1.0)))
        else:
            raise ValueError(f"PDEBench has no layout for {problem.name}; use --format lowprec.")
    elif problem.trajectories is not None:
        if out.suffix.lower() == ".npz":
            raise ValueError(f"--out {out}: time series are written as HDF5 (.h5).")
        save_trajectories(data, out, default_view={k: getattr(args, k) for k in VIEW_KEYS})
    else:
        (save_npz if out.suffix.lower() == ".npz" else save_h5)(data, out)
    print(f"wrote {out} ({args.format} layout)")
    return 0


def _cut(traj, view: dict):
    from .timeseries import cut

    return cut(traj, **view)


def _check_view(times, view: dict) -> None:
    """Raise the view's error (with the flags to change) on a stand-in of the right length."""
    import torch

    from .timeseries import Trajectories

    try:
        _cut(Trajectories(torch.zeros(1, len(times), 1), times), view)
    except ValueError as err:
        raise ValueError(
            f"{err} Set the view with --t-in, --t-out, --t-start (or change --t-final / --record-dt)."
        ) from None


# ------------------------------------------------------------------------------------------ info


def _info(args) -> int:
    import numpy as np

    from .io import detect_layout, inventory

    path = Path(args.file)
    inv = inventory(path)
    try:
        layout = detect_layout(path)
    except ValueError:
        layout = "unknown (read it with load_dataset(path, x_key=..., y_key=...))"
    print(f"file:    {path}  ({inv['format']}, {path.stat().st_size / 2**20:.1f} MiB)")
    print(f"layout:  {layout}")
    print("arrays:")
    values = _read_all(path, inv)
    width = max((len(k) for k in inv["arrays"]), default=4)
    for name, (shape, dtype) in inv["arrays"].items():
        line = f"  {name:<{width}}  {str(tuple(shape)):<22} {dtype:<8}"
        a = values.get(name)
        if a is not None and a.size and np.issubdtype(a.dtype, np.number) | (a.dtype == bool):
            a = a.astype(np.float64)
            finite = np.isfinite(a)
            if finite.any():
                line += f" range [{a[finite].min():.4g}, {a[finite].max():.4g}], mean {a[finite].mean():.4g}"
            bad = int((~finite).sum())
            if bad:
                line += f", {bad} NaN/inf"
        print(line)
        if name.count("/") and len(inv["arrays"]) > 12 and name.startswith("0001/"):
            print(f"  ... ({len(inv['arrays'])} arrays in all)")
            break
    meta = inv["meta"] or {}
    if inv["attrs"]:
        print(f"attributes: {json.dumps(inv['attrs'], default=str)}")
    shown = meta.get("meta", meta)
    if shown:
        print("parameters:")
        for key, value in shown.items():
            if isinstance(value, dict):
                print(f"  {key}:")
                for k, v in value.items():
                    print(f"    {k}: {v}")
            else:
                print(f"  {key}: {value}")
    if meta.get("default_view"):
        print(f"default view: {meta['default_view']}")
    return 0


def _read_all(path: Path, inv: dict, limit: int = 2**28) -> dict[str, np.ndarray]:
    """Arrays for the ranges in ``info``; arrays over ``limit`` bytes are skipped, groups sampled."""
    import h5py
    import numpy as np
    import scipy.io
    import torch

    out = {}
    fmt = inv["format"]
    names = list(inv["arrays"])
    if len(names) > 12:  # PDEBench per-sample groups: the first two samples are enough
        names = [n for n in names if n.startswith(("0000/", "0001/"))] or names[:12]
    if fmt in ("h5", "mat-v7.3"):
        with h5py.File(path, "r") as f:
            for n in names:
                if f[n].size * f[n].dtype.itemsize <= limit:
                    out[n] = np.asarray(f[n][()])
    elif fmt == "npz":
        with np.load(path, allow_pickle=False) as z:
            out = {n: z[n] for n in names}
    elif fmt == "pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        out = {n: obj[n].numpy() for n in names if isinstance(obj.get(n), torch.Tensor)}
    else:
        out = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    return out


# ------------------------------------------------------------------------------------------ plot

# Up to this many snapshots a 1D trajectory is drawn as one line per snapshot: an image of so few
# rows is interpolated into a smooth space-time field that was never computed.
LINE_SNAPSHOTS = 8


def _plot(args) -> int:
    import numpy as np

    from ..report import pyplot, save_figure
    from .io import TIME_SERIES, detect_layout, load_dataset, load_trajectories

    plt = pyplot()
    path = Path(args.file)
    layout = detect_layout(path) if args.x_key is None else "by key"
    i = args.index
    out = Path(args.out) if args.out else Path(f"{path.stem}_sample{i}.png")
    if layout in TIME_SERIES:
        traj = load_trajectories(path)
        _check_index(i, len(traj), path)
        u, t = traj.u[i].numpy(), traj.t.numpy()
        if traj.meta.get("sphere_grid"):  # (T, variables, nlat, nlon) on the sphere: maps
            fig = _sphere_maps(plt, u, t, traj.meta)
        elif u.ndim == 2 and len(t) <= LINE_SNAPSHOTS:  # (T, X), few snapshots: one line each, not an image
            fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
            grid = np.linspace(0, 1, u.shape[-1], endpoint=traj.grid != "periodic")
            for k in range(len(t)):
                ax.plot(
                    grid,
                    u[k],
                    marker="o" if u.shape[-1] <= 64 else None,
                    markersize=3,
                    color=plt.cm.viridis(k / max(1, len(t) - 1)),
                    label=f"t = {t[k]:g}",
                )
            ax.set_xlabel("x")
            ax.set_ylabel("u")
            ax.legend(fontsize=8)
        elif u.ndim == 2:  # (T, X): space-time image
            fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
            im = ax.imshow(u, origin="lower", aspect="auto", cmap="RdBu_r", extent=(0, 1, t[0], t[-1]))
            ax.set_xlabel("x")
            ax.set_ylabel("t")
            fig.colorbar(im, ax=ax, label="u")
        else:  # (T, X, Y): snapshots in a row
            picks = np.unique(np.linspace(0, len(t) - 1, min(6, len(t))).round().astype(int))
            fig, axes = plt.subplots(
                1, len(picks), figsize=(2.6 * len(picks), 2.9), squeeze=False, layout="constrained"
            )
            lim = np.abs(u[..., :, :][picks]).max() or 1.0
            for ax, k in zip(axes[0], picks):
                im = ax.imshow(u[k].T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(0, 1, 0, 1))
                ax.set_title(f"t = {t[k]:g}")
                ax.set_xticks([])
                ax.set_yticks([])
            fig.colorbar(im, ax=list(axes[0]), shrink=0.8)
        fig.suptitle(f"{path.name}: trajectory {i} ({traj.meta.get('problem', layout)})")
    else:
        keys = {} if args.x_key is None else {"x_key": args.x_key, "y_key": args.y_key}
        ds = load_dataset(path, n=i + 1, **keys)
        _check_index(i, len(ds), path, count_known=False)
        x, y = ds.x[i].numpy(), ds.y[i].numpy()
        panels = [("x (input)", x), ("y (output)", y)]
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False, layout="constrained")
        for ax, (title, a) in zip(axes[0], panels):
            if a.ndim == 2 and a.shape[0] <= LINE_SNAPSHOTS:  # (C, X), few channels: lines
                grid = np.linspace(0, 1, a.shape[-1], endpoint=ds.grid != "periodic")
                for c in range(a.shape[0]):
                    ax.plot(grid, a[c], label=f"channel {c}")
                ax.set_xlabel("x")
                if a.shape[0] > 1:
                    ax.legend()
            elif a.ndim == 2:  # (C, X) with many channels (snapshots): channel-space image
                im = ax.imshow(a, origin="lower", aspect="auto", cmap="RdBu_r", extent=(0, 1, 0, a.shape[0]))
                ax.set_xlabel("x")
                ax.set_ylabel("channel (snapshot)")
                fig.colorbar(im, ax=ax)
            else:  # (C, X, Y): first channel, and the last when there are several
                im = ax.imshow(a[-1].T, origin="lower", cmap="viridis", extent=(0, 1, 0, 1))
                title += f", channel {a.shape[0] - 1} of {a.shape[0]}" if a.shape[0] > 1 else ""
                fig.colorbar(im, ax=ax)
            ax.set_title(title)
        fig.suptitle(f"{path.name}: sample {i} ({ds.meta.get('problem', ds.meta.get('layout', ''))})")
    save_figure(fig, out)
    print(f"wrote {out}")
    return 0


def _sphere_maps(plt, u: np.ndarray, t: np.ndarray, meta: dict):
    """Longitude-latitude maps of (T, variables, nlat, nlon) fields: one row per variable, up to 4 times."""
    import numpy as np

    from ..spectral.sht import grid_points

    theta, phi = grid_points(u.shape[-2], u.shape[-1], meta["sphere_grid"])
    lat, lon = 90 - np.degrees(theta.numpy()), np.degrees(phi.numpy())
    names = meta.get("variables") or [f"variable {c}" for c in range(u.shape[1])]
    names = [f"{name} [{unit}]" for name, unit in zip(names, meta["units"])] if meta.get("units") else names
    picks = np.unique(np.linspace(0, len(t) - 1, min(4, len(t))).round().astype(int))
    fig, axes = plt.subplots(
        u.shape[1], len(picks), figsize=(3.4 * len(picks), 1.9 * u.shape[1]), squeeze=False, layout="constrained"
    )
    for c, row in enumerate(axes):
        lim = np.abs(u[picks, c]).max() or 1.0
        for ax, k in zip(row, picks):
            im = ax.pcolormesh(lon, lat, u[k, c], cmap="RdBu_r", vmin=-lim, vmax=lim, shading="nearest")
            ax.set_xlim(0, 360)
            ax.set_ylim(-90, 90)
            ax.set_xticks([0, 180, 360] if c == len(axes) - 1 else [])
            ax.set_yticks([-90, 0, 90] if k == picks[0] else [])
            if c == 0:
                ax.set_title(f"t = {t[k]:g}")
        row[0].set_ylabel(names[c])
        fig.colorbar(im, ax=list(row), shrink=0.9)
    return fig


def _check_index(i: int, n: int, path: Path, count_known: bool = True) -> None:
    if i < 0 or i >= n:
        where = f"holds {n} samples" if count_known else f"has fewer than {i + 1} samples"
        raise ValueError(
            f"--index {i} is out of range: {path} {where}; use 0 <= index < its sample count "
            f"(see `lowprec data info {path}`)."
        )


# ------------------------------------------------------------------------------------------ wiring


def add_subcommands(subparsers) -> None:
    """Register ``lowprec data`` (generate, info, plot) on the top-level CLI's subparsers."""
    data = subparsers.add_parser(
        "data",
        help="generate, describe and plot PDE data sets",
        description=__doc__.split("\n\n")[0].split(": ", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Problems: " + "; ".join(f"{name}: {p['summary']}" for name, p in DATA_PROBLEMS.items()),
    )
    sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    gen = sub.add_parser(
        "generate",
        help="solve a problem (or read it from the cache) and write a file",
        description="Generate a data set with lowprec's solvers, cached on disk, and "
        "write it. `lowprec data generate PROBLEM --help` lists the PDE's "
        "parameters.",
    )
    problems = gen.add_subparsers(dest="problem", required=True, metavar="PROBLEM")
    for name, problem in DATA_PROBLEMS.items():
        _add_problem_parser(problems, name, problem)

    info = sub.add_parser(
        "info",
        help="shapes, dtypes, ranges and parameters of a data file",
        description="Describe a data file: its layout, every array's shape, dtype and "
        "range, and the parameters stored with it.",
    )
    info.add_argument("file", help="a .h5/.hdf5, .npz, .pt or .mat file")
    info.set_defaults(func=_info)

    plot = sub.add_parser(
        "plot",
        help="a PNG of one sample",
        description="Plot one sample of a data file: 1D fields as lines, 2D fields as "
        "images, time series as a space-time image (1D; lines when it holds at most "
        f"{LINE_SNAPSHOTS} snapshots) or snapshots (2D).",
    )
    plot.add_argument("file", help="a .h5/.hdf5, .npz, .pt or .mat file")
    plot.add_argument("--index", type=int, default=0, help="which sample (default 0)")
    plot.add_argument("--out", help="PNG to write (default: <file stem>_sample<index>.png here)")
    plot.add_argument("--x-key", dest="x_key", default=None, help="input array, for files in no known layout")
    plot.add_argument("--y-key", dest="y_key", default="y", help="output array (with --x-key)")
    plot.set_defaults(func=_plot)
