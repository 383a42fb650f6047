"""Quantization-aware training of an FNO on Darcy flow, end to end, in about two minutes on a CPU.

    python examples/quantize_fno.py
    LOWPREC_SMOKE=1 python examples/quantize_fno.py   # a few samples and one epoch each (the test suite)

1. train a float FNO (lowprec's Trainer) on 33x33 Darcy data;
2. quantize a copy to w8a8 (8-bit weights per channel, 8-bit activations, complex spectral
   weights as real and imaginary parts), calibrate it on a few batches, fine-tune it (QAT);
3. compare test errors, print the MAC/BOP table, and run the Linear/Conv layers on int8
   kernels, checked against the fake-quantized model and timed.
"""

import copy
import os

import torch

from lowprec.config import DataConfig, ModelConfig, build_datasets, build_model
from lowprec.precision import get_policy
from lowprec.quant import bops, calibrate, quantize_
from lowprec.quant.int8 import compare_int8, latency_table
from lowprec.train import TrainConfig, Trainer, evaluate

torch.set_num_threads(1)
smoke = bool(os.environ.get("LOWPREC_SMOKE"))
n_train, n_test, epochs, qat_epochs = (20, 8, 1, 1) if smoke else (200, 50, 20, 3)
FULL = get_policy("full")
train_set, tests = build_datasets(
    DataConfig(problem="darcy", resolution=33, n_train=n_train, n_test=n_test), progress=False
)
test_set = tests["test_33"]
torch.manual_seed(0)
model = build_model(ModelConfig(n_modes=(8,), hidden_channels=16, n_layers=4, domain_padding=0.1), train_set)

Trainer(model, train_set, {}, TrainConfig(epochs=epochs, lr=3e-3, progress=False)).fit()
float_l2 = evaluate(model, test_set, FULL)["l2"]

qat = quantize_(copy.deepcopy(model), "w8a8")
calibrate(qat, train_set, n_batches=4)
ptq_l2 = evaluate(qat, test_set, FULL)["l2"]  # calibrated only: post-training quantization
Trainer(qat, train_set, {}, TrainConfig(epochs=qat_epochs, lr=5e-4, weight_decay=0.0, progress=False)).fit()
qat_l2 = evaluate(qat, test_set, FULL)["l2"]
print(f"test relative L2: float {float_l2:.4f}, w8a8 calibrated {ptq_l2:.4f}, w8a8 after QAT {qat_l2:.4f}")

report = bops(qat, (1, 1, 33, 33))
print(
    f"\n{report.macs:,} MACs per sample: {report.bops:.3e} BOPs in w8a8, "
    f"{bops(model, (1, 1, 33, 33)).bops:.3e} in float\n"
)
print(report.table())

result = compare_int8(qat, test_set.x[:16], repeats=2 if smoke else 10)
print(f"\nint8 Linear/Conv layers vs fake-quantized model: max relative difference {result['max_rel_diff']:.1e}")
print(latency_table(result))
