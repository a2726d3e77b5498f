"""Runs of True in a per-frame track: speech, timing and prosody all turn frame masks into spans."""

from __future__ import annotations

import numpy as np


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) index of each run of True in a 1-D boolean array."""
    change = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(change == 1), np.flatnonzero(change == -1)
