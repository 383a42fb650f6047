#!/usr/bin/env bash
# The GPU figures BENCHMARKS.md still lacks: DESIGN.md's configuration on one H100 (or H200).
# Needs the comparison extra:  pip install -e '.[compare]'
# Run from the repository root:  bash benchmarks/gpu_h100.sh   (about 10-15 minutes)
set -euo pipefail
out=benchmarks/results
tag=${TAG:-h100}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee $out/${tag}_gpu.txt

# 0. The GPU-only tests (native fp16 FFT at 512^2, fp16 on non-power-of-two grids).
pytest -m gpu tests/spectral tests/models tests/physics -q

# 1. The target: FNO 2D, width 64, 4 layers, 32 modes, batch 8 (4 at 1024^2), one training
#    step; every policy of ours beside neuraloperator's full/amp/half/mixed, same process.
lowprec bench --mode step --grids 128,256,512,1024 --batch 8,8,8,4 --width 64 --layers 4 --modes 32 \
    --out $out/${tag}_step.json

# 2. torch.compile of the real-valued (DFT) model against eager.
lowprec bench --mode step --grids 256,512,1024 --batch 8,8,4 --width 64 --layers 4 --modes 32 \
    --policies full_dft,bf16,fp16 --compare full --compile --no-accuracy --out $out/${tag}_step_compile.json

# 3. One spectral layer alone (target: our fp32 DFT >= 2x neuraloperator fp32 at 512^2), and the
#    FFT/DFT crossover that calibrates lowprec.spectral.backend's cost model.
lowprec bench --mode layer --grids 256,512,1024 --batch 8,8,4 --width 64 --modes 32 \
    --policies full,bf16,fp16 --backends fft,dft --out $out/${tag}_layer.json
lowprec bench --mode layer --grids 256,512 --batch 8 --width 64 --modes 128 \
    --policies full,fp16 --backends fft,dft --compare full --no-accuracy --out $out/${tag}_layer_modes128.json

# 4. Grids that are not powers of two: fp16 must take the DFT and stay finite.
lowprec bench --mode step --grids 250,500,1000 --batch 8,8,4 --width 64 --layers 4 --modes 32 \
    --policies full,half,bf16,fp16 --compare full,half --out $out/${tag}_step_non_pow2.json

# 5. PINN and DeepONet precision modes (issue 5): memory and time per step of fp32, fp16, mixed and
#    bf16 on the GPU, where fp16 has tensor cores (the CPU tables in benchmarks/results/physics/
#    emulate fp16 and say so). Short runs: the step time and peak, not the final error, are the point.
mkdir -p $out/physics/${tag}
lowprec pinn burgers --compare --device cuda --steps 2000 --out $out/physics/${tag}/burgers_2k
lowprec pinn kovasznay --compare --device cuda --steps 2000 --out $out/physics/${tag}/kovasznay_2k
lowprec deeponet advection --compare --device cuda --steps 2000 --out $out/physics/${tag}/advection_2k
