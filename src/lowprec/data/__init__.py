"""Data for neural PDE solvers: generated (with an on-disk cache) or read from users' files.

    from lowprec.data import darcy_dataset, UnitGaussianNormalizer
    train = darcy_dataset(resolution=33, n=400, seed=0)      # x = a, y = u: (400, 1, 33, 33)
    test_hi = darcy_dataset(resolution=65, n=100, seed=1)    # same problems as seed=1 at 33²

Files:
    grf.py        resolution-consistent Gaussian random fields (cosine series)
    darcy.py      Darcy flow: FD solver, DarcyParams, darcy_dataset
    base.py       ProblemParams base, HDF5 cache (atomic writes, checked loads)
    dataset.py    PDEDataset: validated (x, y) pairs, split / subset / subsample
    normalize.py  per-channel UnitGaussianNormalizer, RangeNormalizer (nn.Modules)
    io.py         load_dataset for .pt / .npz / .h5 / .mat; save_npz, save_h5
"""

from .base import (CacheError, CacheMismatchError, ProblemParams, atomic_write, default_cache_dir,
                   load_or_generate, read_cache, write_cache)
from .darcy import DarcyParams, darcy_dataset, darcy_matrix, solve_darcy
from .dataset import PDEDataset
from .grf import cosine_basis, evaluate_cosine_series, grf_scales, sample_grf
from .io import load_dataset, save_h5, save_npz
from .normalize import RangeNormalizer, UnitGaussianNormalizer

# Problem name -> function(resolution, n, seed, *, cache_dir, progress, **params) -> PDEDataset.
# `lowprec train` and `lowprec demo` find generators here.
GENERATORS = {"darcy": darcy_dataset}

__all__ = [
    "GENERATORS",
    "CacheError", "CacheMismatchError", "ProblemParams", "atomic_write", "default_cache_dir",
    "load_or_generate", "read_cache", "write_cache",
    "DarcyParams", "darcy_dataset", "darcy_matrix", "solve_darcy",
    "PDEDataset",
    "cosine_basis", "evaluate_cosine_series", "grf_scales", "sample_grf",
    "load_dataset", "save_h5", "save_npz",
    "RangeNormalizer", "UnitGaussianNormalizer",
]
