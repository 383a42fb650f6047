"""Fail when the repository carries bulk: a tracked file over 1 MB, or benchmarks/results/ over 3 MB in all.

    python .ci/check_size.py [REPO]

Counts tracked files only (``git ls-files -z``), at their size in the working tree. Prints one line per
offender and exits 1; exits 0 silently otherwise. Raw runs belong under benchmarks/runs/ (ignored), and
git history keeps what left the tree (benchmarks/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

MB = 1_000_000
FILE_LIMIT = 1 * MB
RESULTS = "benchmarks/results/"
RESULTS_LIMIT = 3 * MB


def tracked_sizes(repo: str = ".") -> dict[str, int]:
    """Size in bytes of every tracked file that exists in the working tree, by path relative to ``repo``."""
    out = subprocess.run(["git", "-C", repo, "ls-files", "-z"], check=True, capture_output=True).stdout
    sizes = {}
    for path in out.decode().split("\0"):
        full = os.path.join(repo, path)
        if path and os.path.isfile(full):
            sizes[path] = os.path.getsize(full)
    return sizes


def offenders(
    sizes: Mapping[str, int], file_limit: int = FILE_LIMIT, results: str = RESULTS, results_limit: int = RESULTS_LIMIT
) -> list[str]:
    """One line per file over ``file_limit`` bytes, and one if the files under ``results`` exceed ``results_limit``."""
    lines = [
        f"{path}: {size / MB:.2f} MB, over the {file_limit / MB:g} MB limit for a tracked file"
        for path, size in sorted(sizes.items())
        if size > file_limit
    ]
    total = sum(size for path, size in sizes.items() if path.startswith(results))
    if total > results_limit:
        lines.append(
            f"{results}: {total / MB:.2f} MB tracked, over its {results_limit / MB:g} MB limit; keep curated "
            "results there and raw runs under benchmarks/runs/"
        )
    return lines


def main(argv: list[str]) -> int:
    lines = offenders(tracked_sizes(argv[0] if argv else "."))
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
