"""Facts about this process (peak memory) for a run's summary.

It is not monitoring of the model, and it imports nothing of sesame, so any layer may use it:
the analyze command, the batch driver and its workers record `peak_rss_mb` in a run's summary.
"""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident memory in MB (for a run's summary: `peak_rss_mb`)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
