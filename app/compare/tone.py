"""Tone per section and its shift between the years, with bootstrap 95% intervals.

A year's tone index is (positive - negative) / n over the section's scored sentences; its
interval resamples those sentences (n draws with replacement: a multinomial over the three
label counts, which is the same thing and costs nothing).

The shift's interval must not treat the years as independent samples: most sentences of a
report come back unchanged, with the same label, and resampling the years apart would drown a
real change in noise they do not have. So the unit resampled is the sentence change: a pair
(unchanged or edited) carries both labels, a new sentence only the current one, a removed one
only the prior one. Changes fall into at most 16 kinds (no sentence / positive / negative /
neutral in each year), so a resample is again one multinomial draw over their counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from app.records import Label, ToneStats

_SIDES: tuple[Label | None, ...] = (None, "positive", "negative", "neutral")
_SIGN = {None: 0, "positive": 1, "negative": -1, "neutral": 0}


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    values = values[np.isfinite(values)]
    if not len(values):
        return None, None
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def tone_stats(labels: Sequence[Label], rng: np.random.Generator, resamples: int) -> ToneStats:
    """Label counts, tone index and its bootstrap 95% interval for one year's sentences."""
    counts = Counter(labels)
    n = len(labels)
    pos, neg, neu = counts["positive"], counts["negative"], counts["neutral"]
    if not n:
        return ToneStats(n=0)
    draws = rng.multinomial(n, [pos / n, neg / n, neu / n], size=resamples)
    low, high = _interval((draws[:, 0] - draws[:, 1]) / n)
    return ToneStats(
        n=n,
        positive=pos,
        negative=neg,
        neutral=neu,
        tone=round((pos - neg) / n, 4),
        low=low,
        high=high,
    )


def shift_interval(
    units: Sequence[tuple[Label | None, Label | None]],
    rng: np.random.Generator,
    resamples: int,
) -> tuple[float | None, float | None, float | None]:
    """The tone shift (current - prior) over sentence changes and its paired 95% interval.

    Args:
        units: one (prior label, current label) per sentence change of the section; None where
            the change has no scored sentence in that year (new, removed, or not scored).
    """
    kinds = [(a, b) for a in _SIDES for b in _SIDES if (a, b) != (None, None)]
    counts = Counter(u for u in units if u != (None, None))
    total = sum(counts.values())
    freq = np.array([counts[k] for k in kinds], dtype=np.float64)
    prior_n = np.array([a is not None for a, _ in kinds], dtype=np.float64)
    current_n = np.array([b is not None for _, b in kinds], dtype=np.float64)
    prior_sign = np.array([_SIGN[a] for a, _ in kinds], dtype=np.float64)
    current_sign = np.array([_SIGN[b] for _, b in kinds], dtype=np.float64)
    if not total or not (freq @ prior_n) or not (freq @ current_n):
        return None, None, None
    shift = (freq @ current_sign) / (freq @ current_n) - (freq @ prior_sign) / (freq @ prior_n)
    draws = rng.multinomial(total, freq / total, size=resamples).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        shifts = (draws @ current_sign) / (draws @ current_n) - (draws @ prior_sign) / (
            draws @ prior_n
        )
    low, high = _interval(shifts)
    return round(float(shift), 4), low, high
