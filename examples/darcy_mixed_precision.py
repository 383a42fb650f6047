"""Train an FNO on Darcy flow under a precision schedule, in about 40 lines of plain code.

    python examples/darcy_mixed_precision.py
    LOWPREC_SMOKE=1 python examples/darcy_mixed_precision.py   # a few samples, in seconds (the test suite)

The same model object runs under every policy: `with policy:` sets autocast for the
real-valued layers and tells each spectral layer which dtypes to use.
"""

import os

import torch

from lowprec.data import UnitGaussianNormalizer, darcy_dataset
from lowprec.models import FNO, Normalized
from lowprec.precision import LossScaler, PrecisionSchedule
from lowprec.train import evaluate, relative_l2

n_train, n_test, epochs = (20, 4, 4) if os.environ.get("LOWPREC_SMOKE") else (200, 50, 8)
torch.manual_seed(0)
train = darcy_dataset(resolution=33, n=n_train, seed=0)
test, test_fine = darcy_dataset(resolution=33, n=n_test, seed=1), darcy_dataset(resolution=65, n=n_test, seed=1)

fno = FNO(n_modes=(12, 12), hidden_channels=32, n_layers=4, domain_padding=0.1)
model = Normalized(fno, UnitGaussianNormalizer(1).fit(train.x), UnitGaussianNormalizer(1).fit(train.y))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
schedule = PrecisionSchedule.parse("half:0.25,mixed:0.5,full:0.25")  # Tu et al.'s schedule
scaler = LossScaler()
batch = 10

for epoch in range(epochs):
    policy = schedule.policy_at(epoch, epochs)
    scaler.enabled = policy.loss_scaling
    for idx in torch.randperm(len(train)).split(batch):
        with policy:
            out = model(train.x[idx])
        loss = relative_l2(out, train.y[idx]).mean()  # fp32 whatever the policy
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        overflowed = scaler.unscale_(model)  # names of parameters with inf/NaN gradients
        if not overflowed:
            optimizer.step()
        scaler.update(overflow=bool(overflowed))
    coarse, fine = evaluate(model, test, policy), evaluate(model, test_fine, policy)
    print(
        f"epoch {epoch + 1} [{policy.name}] loss {loss.item():.4f} "
        f"test L2 33x33 {coarse['l2']:.4f}, 65x65 (zero-shot) {fine['l2']:.4f}"
    )
