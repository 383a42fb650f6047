"""Command-line flags of the smallest runs the CLI tests make (a 17x17 Darcy problem), shared by the tests."""

# lowprec train / demo: an FNO of width 8, 2 layers, 4 modes.
TRAIN = "--resolution 17 --n-train 8 --n-test 4 --hidden-channels 8 --n-modes 4 --n-layers 2 --batch-size 4".split()
TRAIN += ["--no-progress"]

# lowprec quantize / pareto: a width-4 FNO, one float epoch, one QAT epoch.
STUDY = "--resolution 17 --n-train 8 --n-test 4 --width 4 --depth 1 --n-modes 2 --epochs 1 --qat-epochs 1".split()
STUDY += "--batch-size 4 --calib-batches 1".split()
