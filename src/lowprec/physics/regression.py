"""Function regression: fit x sin(5x) on [-1, 1] with a [1, 10, 10, 1] tanh network.

No PDE: the smallest problem on which the training modes differ, and the
first example of Hayford et al. (2024).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from lowprec.models.pinn import PINN

from ..train.losses import relative_l2_error
from .base import Box, Compute, PhysicsProblem, predict


def target(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sin(5 * x)


@dataclass(frozen=True)
class Regression(PhysicsProblem):
    """Fit f(x) = x sin(5x) from ``n_train`` samples; error on ``n_test`` uniform points.

    Args:
        width / depth / activation: the network ([1, 10, 10, 1] by default).
        n_train: training samples (DeepXDE's example uses 16).
        n_test: evaluation points.
    """

    name: ClassVar[str] = "regression"
    kind: ClassVar[str] = "pinn"
    title: ClassVar[str] = "Regression x sin(5x)"
    default_steps: ClassVar[int] = 10000
    default_eval_every: ClassVar[int] = 250

    width: int = 10
    depth: int = 2
    activation: str = "tanh"
    n_train: int = 16
    n_test: int = 1000

    @property
    def domain(self) -> Box:
        return Box(("x",), (-1.0,), (1.0,))

    def build_model(self, seed: int) -> nn.Module:
        return PINN(1, 1, self.width, self.depth, self.activation, bounds=self.domain.bounds, seed=seed)

    def training_data(self, seed: int, points: torch.Tensor | None = None) -> dict:
        x = self.domain.sample(self.n_train, seed) if points is None else points
        self.domain.check(x, "training points", self.title)
        return {"x": x}

    def loss_terms(self, c: Compute, batch: dict) -> dict[str, torch.Tensor]:
        x = c.cast(batch["x"])
        return {"data": c.mse(c(x), target(x.double()))}

    def evaluate(self, net: nn.Module, dtype: torch.dtype, data: dict) -> dict[str, float]:
        x = torch.linspace(-1, 1, self.n_test, dtype=torch.float64).unsqueeze(1)
        return {"error": relative_l2_error(predict(net, dtype, x.float()), target(x))}

    def plot_solution(self, fig, net, dtype, label, data):
        x = torch.linspace(-1, 1, self.n_test).unsqueeze(1)
        ax = fig.subplots()
        ax.plot(x[:, 0], target(x)[:, 0], "k-", lw=2, label="x sin(5x)")
        ax.plot(x[:, 0], predict(net, dtype, x)[:, 0], "r--", label=label)
        ax.set_xlabel("x")
        ax.legend(fontsize=7)
