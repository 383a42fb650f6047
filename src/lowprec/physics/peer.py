"""Peer comparison: the same Burgers PINN trained by DeepXDE (PyTorch backend).

DeepXDE is an optional dependency (``pip install lowprec[compare]``). Its
``set_default_float("mixed")`` on PyTorch wraps the forward and backward pass
in ``torch.autocast(float16)`` around fp32 weights, with no loss scaling and
no guard on the residual derivatives; that is what is compared here, beside
its float32 mode, with DeepXDE's own Burgers example setup (2540 / 80 / 160
points, Glorot-normal tanh FNN, Adam) and our network size, step count,
learning rate and Cole-Hopf reference.

DeepXDE changes process-wide state (torch's default dtype, its global
``mixed`` flag, the random seeds), so every peer run happens in its own
Python process (``python -m lowprec.physics.peer``), and lowprec's runs are
not affected by having run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

PEER_PRECISIONS = ("float32", "mixed")


class PeerUnavailable(RuntimeError):
    """DeepXDE is not installed or cannot run here; the message says why and how to fix it."""


def deepxde_available() -> tuple[bool, str]:
    """(True, version) when DeepXDE imports on the PyTorch backend; else (False, reason with the fix)."""
    code = (
        "import os; os.environ.setdefault('DDE_BACKEND', 'pytorch'); import deepxde as dde; "
        "print(dde.__version__, dde.backend.backend_name)"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "DDE_BACKEND": "pytorch"},
        )
    except subprocess.TimeoutExpired:
        return False, "importing deepxde timed out"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["?"])[-1]
        if "No module named 'deepxde'" in out.stderr:
            return False, "DeepXDE is not installed: pip install 'lowprec[compare]' (or pip install deepxde)"
        return False, f"deepxde failed to import: {last}"
    version, backend = (out.stdout.strip().splitlines() or ["? ?"])[-1].split()[:2]
    if backend != "pytorch":
        return False, f"deepxde runs on the {backend} backend; set DDE_BACKEND=pytorch"
    return True, version


def run_deepxde_burgers(
    precision: str,
    steps: int,
    lr: float = 1e-3,
    seed: int = 0,
    nu: float = None,
    width: int = 32,
    depth: int = 3,
    timeout: float | None = None,
) -> dict:
    """Train DeepXDE's Burgers PINN in a subprocess; return its error against our Cole-Hopf reference.

    Returns a dict: precision, error, ms_per_step, steps, deepxde version, or
    ``failure`` (a message) when the run itself failed (e.g. NaN losses).

    Raises:
        PeerUnavailable: DeepXDE is missing or not on the PyTorch backend.
        ValueError: ``precision`` is not one of float32 / mixed.
    """
    if precision not in PEER_PRECISIONS:
        raise ValueError(f"DeepXDE precision {precision!r}: choose one of {PEER_PRECISIONS}.")
    ok, info = deepxde_available()
    if not ok:
        raise PeerUnavailable(info)
    import torch

    from .burgers import NU

    threads = torch.get_num_threads()  # the child uses as many threads as we do, for comparable timings
    args = {
        "precision": precision,
        "steps": steps,
        "lr": lr,
        "seed": seed,
        "nu": NU if nu is None else nu,
        "width": width,
        "depth": depth,
        "threads": threads,
    }
    env = {**os.environ, "DDE_BACKEND": "pytorch", "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, "-m", "lowprec.physics.peer", json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        tail = "\n".join(out.stderr.strip().splitlines()[-5:])
        return {"precision": precision, "failure": f"DeepXDE run failed (exit {out.returncode}): {tail}"}
    return json.loads(lines[-1])


def _child(args: dict) -> dict:  # runs in the subprocess
    import deepxde as dde
    import numpy as np
    import torch

    from ..train.losses import relative_l2_error
    from .burgers import Burgers

    nu = args["nu"]
    torch.set_num_threads(args["threads"])
    dde.config.set_random_seed(args["seed"])
    dde.config.set_default_float(args["precision"])
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))

    def pde(x, y):
        dy_x = dde.grad.jacobian(y, x, i=0, j=0)
        dy_t = dde.grad.jacobian(y, x, i=0, j=1)
        dy_xx = dde.grad.hessian(y, x, i=0, j=0)
        return dy_t + y * dy_x - nu * dy_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: 0, lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    data = dde.data.TimePDE(geomtime, pde, [bc, ic], num_domain=2540, num_boundary=80, num_initial=160)
    net = dde.nn.FNN([2] + [args["width"]] * args["depth"] + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    model.compile("adam", lr=args["lr"])
    t0 = time.perf_counter()
    losshistory, _ = model.train(iterations=args["steps"], display_every=max(1, args["steps"] // 10), verbose=0)
    seconds = time.perf_counter() - t0
    _, _, pts, u = Burgers(nu=nu).reference()
    pred = torch.as_tensor(np.asarray(model.predict(pts.numpy()), dtype=np.float64))[:, 0]
    losses = np.asarray(losshistory.loss_train[-1], dtype=np.float64)
    out = {
        "precision": args["precision"],
        "steps": args["steps"],
        "error": relative_l2_error(pred, u),
        "ms_per_step": 1e3 * seconds / args["steps"],
        "final_loss": float(losses.sum()),
        "deepxde": dde.__version__,
    }
    if not np.isfinite(losses).all() or not np.isfinite(out["error"]):
        out["failure"] = f"DeepXDE {args['precision']}: non-finite loss {losses.tolist()}"
    return out


if __name__ == "__main__":
    os.environ.setdefault("DDE_BACKEND", "pytorch")
    print(json.dumps(_child(json.loads(sys.argv[1]))), flush=True)
