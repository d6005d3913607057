"""Input levels: RMS level in dBFS, peak, and the width of a level meter.

One home for the live view's status bar (:class:`~livespeech.ui.widgets.StatusBar`)
and ``livespeech record``'s meter and take cutting. Samples are float, full scale 1.0.
"""

from __future__ import annotations

import math

import numpy as np

SILENCE_RMS = 1e-6  # RMS at or below this counts as silence
SILENCE_DB = -120.0  # dBFS of SILENCE_RMS: the floor of level_db
METER_FLOOR_DB = -60.0  # dBFS at a meter's empty end; 0 dBFS fills it


def level_db(samples: np.ndarray) -> float:
    """RMS level of ``samples``, shape (n,), in dB relative to full scale: 0 for a
    full-scale square wave, about -3 for a full-scale sine; ``SILENCE_DB`` for digital
    silence, anything quieter and an empty array."""
    rms = math.sqrt(float(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20 * math.log10(rms) if rms > SILENCE_RMS else SILENCE_DB


def peak(samples: np.ndarray) -> float:
    """Largest absolute sample of ``samples``, shape (n,); 0 when empty."""
    return float(np.max(np.abs(samples))) if samples.size else 0.0


def meter_cells(db: float, cells: int, floor_db: float = METER_FLOOR_DB) -> int:
    """How many of a meter's ``cells`` a level of ``db`` dBFS fills: none at ``floor_db``
    or below, all at 0 dBFS or above, linear in dB between (rounded to the nearest cell)."""
    return round(cells * min(1.0, max(0.0, 1 - db / floor_db)))
