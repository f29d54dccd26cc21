"""What the process costs: peak resident memory, for run summaries and benchmarks.

Floor module: imports nothing of sesame.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (for a run's summary: `peak_rss_mb`)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
