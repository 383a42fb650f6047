#!/usr/bin/env bash
# The CPU figures of benchmarks/results/bench_cpu.md: small sizes, one thread (steadier on a shared machine).
# Run from the repository root:  bash benchmarks/cpu_small.sh   (about 15 minutes on 2 busy cores),
# then python benchmarks/make_tables.py to regenerate the tables from the new JSON.
set -euo pipefail
out=benchmarks/results
common="--device cpu --threads 1 --width 32 --modes 16 --batch 4"

# Every policy, for its accuracy against fp64 and a NaN check (CPU times of the fp16
# policies mean little: CPUs without fp16 arithmetic run it in software).
lowprec bench --mode step $common --grids 32,64 --layers 4 --warmup 1 --repeats 3 \
    --policies full,amp,half,mixed,mixed_tanh,amp_bf16,half_bf16,mixed_bf16,full_dft,bf16,fp16 \
    --out $out/cpu_step_all_policies.json

# Training step timing: fp32 FFT/DFT and bf16 DFT against neuraloperator fp32.
lowprec bench --mode step $common --grids 64,128,256 --layers 4 --warmup 2 --repeats 7 \
    --policies full,bf16 --backends fft,dft --compare full --out $out/cpu_step.json

# One spectral layer: each backend in fp32 and bf16 (the FFT in bf16 is emulated on CPU).
lowprec bench --mode layer $common --grids 64,128,256 --policies full,bf16 --backends fft,dft \
    --compare full --warmup 2 --repeats 9 --out $out/cpu_layer.json

# torch.compile of the real-valued model (DFT backend), eager beside it.
lowprec bench --mode step $common --grids 64,128 --layers 4 --policies full_dft,bf16 --compare full \
    --compile --warmup 3 --repeats 7 --no-accuracy --out $out/cpu_compile.json
