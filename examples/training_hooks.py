"""Watch and steer training through the engine's hooks: no subclassing, no patching torch.

    python examples/training_hooks.py
    LOWPREC_SMOKE=1 python examples/training_hooks.py   # a few samples and steps (the test suite)

The operator trainer and the PINN loop run through one engine, so the same callback works on both.
After every step it gets a StepEvent: the step number, the loss (None when an overflow skipped the
step), the model, the optimizer and the loss scaler. Here it records the gradient norm and the loss
scale, and stops the PINN once its loss is small enough; an optimizer factory swaps Adam for AdamW.
"""

import os

import torch

from lowprec.data import UnitGaussianNormalizer, darcy_dataset
from lowprec.models import FNO, Normalized
from lowprec.physics import PhysicsTrainConfig, get_problem, train
from lowprec.train import StopTraining, TrainConfig, Trainer

smoke = bool(os.environ.get("LOWPREC_SMOKE"))


class Probe:
    """Per step: the gradient norm the optimizer just used, the loss scale, whether the step was skipped."""

    def __init__(self, stop_below: float = 0.0):
        self.rows, self.stop_below = [], stop_below

    def __call__(self, event):
        grads = [p.grad.norm() for p in event.model.parameters() if p.grad is not None]
        norm = torch.stack(grads).norm().item() if grads else float("nan")
        self.rows.append((event.step, event.loss, norm, event.scaler.scale_value))
        if event.loss is not None and event.loss < self.stop_below:
            raise StopTraining  # ends the run after this step; the result is still complete

    def summary(self, name: str) -> str:
        skipped = sum(loss is None for _, loss, _, _ in self.rows)
        losses = [loss for _, loss, _, _ in self.rows if loss is not None]
        step, _, norm, scale = self.rows[-1]
        return (
            f"{name}: {step} steps ({skipped} skipped by the loss scaler), last loss {losses[-1]:.4g}, "
            f"|grad| {norm:.3g}, loss scale {scale:g}"
        )


def adamw(groups, lr, eps):
    return torch.optim.AdamW(groups, lr=lr, eps=eps, weight_decay=1e-4)


# An FNO on Darcy flow in mixed precision.
n_train, epochs = (16, 2) if smoke else (200, 6)
data, test = darcy_dataset(resolution=33, n=n_train, seed=0), darcy_dataset(resolution=33, n=8, seed=1)
fno_probe = Probe()
config = TrainConfig(epochs=epochs, batch_size=8, lr=3e-3, precision="mixed", progress=False)
fno = FNO(n_modes=(12, 12), hidden_channels=16, n_layers=4)
model = Normalized(fno, UnitGaussianNormalizer(1).fit(data.x), UnitGaussianNormalizer(1).fit(data.y))
history = Trainer(model, data, {"test": test}, config, callbacks=[fno_probe], optimizer_factory=adamw).fit()
print(fno_probe.summary("FNO, mixed"), f"test L2 {history[-1]['test_l2']:.4f}")

# A Burgers PINN in mixed precision, stopped early by the same kind of callback.
pinn_probe = Probe(stop_below=2e-2)
steps = 30 if smoke else 3000
config = PhysicsTrainConfig(steps=steps, measure_memory=False)
result = train(get_problem("burgers"), "mixed", config, callbacks=[pinn_probe])
print(pinn_probe.summary("Burgers PINN, mixed"), f"error {result.error:.4f}")
