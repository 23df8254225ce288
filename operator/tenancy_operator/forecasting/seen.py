"""Seen cap: no forecast above the highest load of the history it was made from, plus a margin.

Why this exists: a model that has not seen a day type can extrapolate it into a peak nothing in the
history ever reached. On a day after one whose pattern moved by an hour, the quantile GBM reads
"yesterday the load jumped x4 at this minute" and forecasts x4 on top of today's plateau (bench
hour_shift development seed 3: an upper forecast of 148 replicas where the day's load needed 42);
its median rises past the tolerance with it, and the rise-only floor lifts to the upper forecast for
the quarter hour until the window passes: +0.65% replica-hours of the week in one lift. A rise
larger than anything in the last fortnight is not something the history supports: the cap leaves
the rise decision to the models but sizes the lift at most ``1 + margin`` times the highest load
seen, and the HPA takes a genuinely new peak reactively, as it would without a forecast. Pure
numpy, causal (position ``i`` reads only ``y[: i + 1]``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["seen_max", "cap_at_seen"]

SEEN_MARGIN = 0.2
"""The cap is ``1 + SEEN_MARGIN`` times the highest load seen: room for a forecast a little past
the fortnight's peak (growth, a noisy plateau) without letting an extrapolated jump size a lift."""


def seen_max(y: np.ndarray, idx: np.ndarray, span: int) -> np.ndarray:
    """max(y[max(0, i - span + 1) : i + 1]) for each position ``i`` of ``idx`` (positions past the end
    of ``y`` read up to its end; NaN for a negative position). Slices for a few positions (one
    decision's forecast), SciPy's running maximum over the whole series for many (a backtest)."""
    y = np.asarray(y, dtype=float)
    idx = np.asarray(idx, dtype=np.int64)
    out = np.full(idx.shape, np.nan)
    n = len(y)
    if n == 0 or len(idx) == 0:
        return out
    hi = np.minimum(idx, n - 1) + 1  # exclusive end
    ok = idx >= 0
    if ok.sum() <= 16:
        lo = np.maximum(hi - span, 0)
        for j in np.flatnonzero(ok):
            out[j] = y[lo[j] : hi[j]].max()
        return out
    from scipy.ndimage import maximum_filter1d  # imported with the models, not at the operator's start

    width = min(span, n)
    # origin (width - 1) // 2 puts the window at [i - width + 1, i]; "nearest" repeats y[0] before it.
    trailing = maximum_filter1d(y, size=width, origin=(width - 1) // 2, mode="nearest")
    out[ok] = trailing[hi[ok] - 1]
    return out


def cap_at_seen(y: np.ndarray, idx: np.ndarray, median: np.ndarray, upper: np.ndarray, span: int,
                margin: float = SEEN_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """(median, upper) of forecasts made at positions ``idx`` of ``y``, each at most ``1 + margin``
    times the highest value of the last ``span`` samples known then; never raised."""
    cap = (1.0 + margin) * seen_max(y, idx, span)
    cap = np.where(np.isfinite(cap), cap, np.inf)
    return np.minimum(np.asarray(median, dtype=float), cap), np.minimum(np.asarray(upper, dtype=float), cap)
