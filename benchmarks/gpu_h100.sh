#!/usr/bin/env bash
# The GPU figures benchmarks/README.md still lacks: the FNO target configuration (2D, width 64, 4 layers,
# 32 modes, batch 8, 4 at 1024^2), activation memory with recomputation, and the PINN/DeepONet precision
# modes, on one H100 (or H200).
# Needs the comparison extra for neuraloperator's rows:  pip install -e '.[compare]'
# Run from the repository root:
#   bash benchmarks/gpu_h100.sh            # results into benchmarks/results/ (TAG=h100 names the files)
#   SMOKE=1 bash benchmarks/gpu_h100.sh    # every step at tiny sizes on the CPU, into a temporary folder:
#                                          # checks that the script runs end to end (CI does this)
#
# Time on one H100: ESTIMATES, not measurements (the script has not yet run on a GPU). From the
# configurations: a width-64 training step at 512^2, batch 8, moves about 110 GB (about 220 passes
# over 0.5 GiB activations, forward and backward): about 45 ms in fp32, 90 ms at 1024^2, batch 4; each
# bench case adds about 1 s of model building, the fp64 accuracy pass and cleanup. The PINN/DeepONet
# steps are launch-bound: 5-15 ms a step (their CPU tables: 15-45 ms on one core).
#   0. GPU-only tests ............................................. ~0.5 min
#   1. training step, 7 policies + 4 neuraloperator, 4 grids ......... ~2 min
#   2. torch.compile vs eager, 3 policies, 2 grids (~30 s a compile)  ~3.5 min
#   3. one spectral layer, FFT and DFT, 32 and 128 modes ............. ~0.5 min
#   4. grids that are not powers of two .............................. ~1 min
#   5. PINN/DeepONet modes, 3 problems x 4 modes x 500 steps ......... ~1.5 min
#   6. peak memory, stored vs recomputed, 2 policies, 512^2 and 1024^2  ~0.5 min
#   total ............................................................ ~9.5 min (fits 10 if compiles take <= 30 s)
# If a run overshoots, step 2's compiles are the first to drop (run it alone with its own command).
set -euo pipefail

lowprec() { python -m lowprec "$@"; }  # the CLI of whichever python is first on PATH
# Elapsed time at each step, to replace the estimates above with measurements.
step() { echo "== gpu_h100.sh step $1 at ${SECONDS} s" >&2; }

if [[ -n "${SMOKE:-}" && "${SMOKE}" != 0 ]]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
    tag=smoke
    export OMP_NUM_THREADS=1
    # The same commands on grids of 10 to 32 points, one timed step, 5 optimizer steps, and one
    # policy under torch.compile (a cold Inductor compile costs about 25 s of CPU).
    run="--device cpu --threads 1 --warmup 1 --repeats 1"
    fno="--width 8 --layers 2 --modes 4"
    g1=16,32 b1=2,2; g2=16 b2=2; p2=bf16; g3=16,32 b3=2,2; g3m=16 m3=8; g4=10,18 b4=2,2
    pinn="--device cpu --threads 1 --steps 5"
    g6=16,32 b6=2,2
    raw="$out"
    echo "gpu_h100.sh smoke run (CPU, tiny sizes) into $out"
else
    out=benchmarks/results
    tag=${TAG:-h100}
    run=""
    fno="--width 64 --layers 4 --modes 32"
    g1=128,256,512,1024 b1=8,8,8,4; g2=512,1024 b2=8,4; p2=full_dft,bf16,fp16
    g3=256,512,1024 b3=8,8,4; g3m=256,512 m3=128; g4=250,500,1000 b4=8,8,4
    pinn="--device cuda --steps 500"
    g6=512,1024 b6=8,4
    raw=benchmarks/runs  # PINN run folders (plots, logs): outside the curated results, ignored by git
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/${tag}_gpu.txt"
fi

# 0. The GPU-only tests (native fp16 FFT at 512^2, fp16 on non-power-of-two grids); skipped on a CPU.
step 0
python -m pytest -m gpu tests/spectral tests/models tests/physics -q -p no:cacheprovider

# 1. The target: one training step per policy of ours beside neuraloperator's full/amp/half/mixed,
#    same process.
step 1
lowprec bench --mode step --grids $g1 --batch $b1 $fno $run --out "$out/${tag}_step.json"

# 2. torch.compile of the real-valued (DFT) model against eager.
step 2
lowprec bench --mode step --grids $g2 --batch $b2 $fno $run \
    --policies $p2 --compare full --compile --no-accuracy --out "$out/${tag}_step_compile.json"

# 3. One spectral layer alone (target: our fp32 DFT >= 2x neuraloperator fp32 at 512^2), and the
#    FFT/DFT crossover that calibrates lowprec.spectral.backend's cost model.
step 3
lowprec bench --mode layer --grids $g3 --batch $b3 $fno $run \
    --policies full,bf16,fp16 --backends fft,dft --out "$out/${tag}_layer.json"
lowprec bench --mode layer --grids $g3m --batch 8 $fno --modes $m3 $run \
    --policies full,fp16 --backends fft,dft --compare full --no-accuracy --out "$out/${tag}_layer_modes${m3}.json"

# 4. Grids that are not powers of two: fp16 must take the DFT and stay finite.
step 4
lowprec bench --mode step --grids $g4 --batch $b4 $fno $run \
    --policies full,half,bf16,fp16 --compare full,half --out "$out/${tag}_step_non_pow2.json"

# 5. PINN and DeepONet precision modes: memory and time per step of fp32, fp16, mixed and bf16 on the
#    GPU, where fp16 has tensor cores (the CPU tables in benchmarks/results/physics/ emulate fp16 and
#    say so). Short runs: the step time and peak, not the final error, are the point.
step 5
mkdir -p "$raw/physics/${tag}"
lowprec pinn burgers --compare $pinn --out "$raw/physics/${tag}/burgers"
lowprec pinn kovasznay --compare $pinn --out "$raw/physics/${tag}/kovasznay"
lowprec deeponet advection --compare $pinn --out "$raw/physics/${tag}/advection"

# 6. Activation memory (docs/memory.md): peak CUDA memory and saved activations with activations stored
#    and with per-stage recomputation, and which layer saves what.
step 6
lowprec bench --mode step --grids $g6 --batch $b6 $fno $run --policies full,bf16 --recompute both \
    --compare full --memory-report --no-accuracy --out "$out/${tag}_step_memory.json"
step done
echo "gpu_h100.sh: every step ran; results in $out"
