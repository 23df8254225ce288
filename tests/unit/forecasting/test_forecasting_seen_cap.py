"""The seen cap: no forecast above the highest load of the history it was made from, plus a margin."""

import numpy as np
from tenancy_operator.forecasting import SEEN_MARGIN, cap_at_seen, seen_max


def test_seen_max_is_the_causal_window_max_for_one_position_and_for_many():
    rng = np.random.default_rng(1)
    y = rng.random(5000)
    idx = np.arange(0, 5000, dtype=np.int64)
    many = seen_max(y, idx, 700)
    want = np.array([y[max(0, i - 699) : i + 1].max() for i in idx])
    assert np.array_equal(many, want)
    for i in (0, 3, 699, 700, 4999):
        assert seen_max(y, np.array([i]), 700)[0] == want[i]
    # past the end reads up to the end; a negative position has no history
    out = seen_max(y, np.array([7000, -1]), 10)
    assert out[0] == y[-10:].max() and np.isnan(out[1])


def test_cap_lowers_only_forecasts_past_the_seen_peak_and_its_margin():
    y = np.concatenate([np.full(100, 10.0), [40.0], np.full(99, 10.0)])
    idx = np.array([50, 150], dtype=np.int64)
    med, up = cap_at_seen(y, idx, np.array([12.0, 70.0]), np.array([200.0, 45.0]), span=1000)
    cap0, cap1 = (1 + SEEN_MARGIN) * 10.0, (1 + SEEN_MARGIN) * 40.0
    assert med.tolist() == [cap0, 70.0 if 70.0 <= cap1 else cap1]
    assert up.tolist() == [cap0, 45.0]
    # the peak left the window: the cap comes down with it
    med, _ = cap_at_seen(y, np.array([199]), np.array([30.0]), np.array([30.0]), span=50)
    assert med[0] == cap0
