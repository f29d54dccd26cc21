"""Run the benchmarks one after another: `python -m benchmarks [NAME ...]`.

Each is its own module (`python -m benchmarks.bench_NAME --help` for its options) and writes its
figures, with the baseline measured in the same run, to `benchmarks/results/`. Without names,
every benchmark runs with its default options (long: an hour or more on 2 cores). Training is
left out unless named: it retrains the default model's recipe.
"""

from __future__ import annotations

import subprocess
import sys

ALL = ["ingest", "html", "sentences", "scoring", "workpaper", "explain", "batch", "monitoring"]
OPTIONAL = ["training"]


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all but training); the exit status of the worst."""
    names = argv or ALL
    unknown = [n for n in names if n not in ALL + OPTIONAL]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(ALL + OPTIONAL)}",
            file=sys.stderr,
        )
        return 2
    worst = 0
    for name in names:
        print(f"== benchmarks.bench_{name}", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"])
        if rc:
            print(f"bench_{name} exited {rc}", file=sys.stderr)
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
