"""Input levels in dBFS and level meters (the live view's status bar, ``livespeech record``)."""

import numpy as np
import pytest

from livespeech.levels import SILENCE_DB, level_db, meter_cells, peak


def test_level_db():
    assert level_db(np.ones(160, np.float32)) == pytest.approx(0.0)
    assert level_db(np.full(160, 0.01, np.float32)) == pytest.approx(-40.0)
    assert level_db(np.zeros(160, np.float32)) == -120.0


def test_level_in_dbfs_and_peak():
    t = np.arange(16000) / 16000
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    db, top = level_db(sine), peak(sine)
    assert db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.01) and top == pytest.approx(0.5, abs=1e-3)
    for silent in (np.zeros(100, np.float32), np.zeros(0, np.float32), np.full(100, 1e-7, np.float32)):
        assert (level_db(silent), peak(silent)) == (SILENCE_DB, pytest.approx(float(silent.max(initial=0.0))))


@pytest.mark.parametrize("db, cells, filled", [(SILENCE_DB, 10, 0), (-60.0, 10, 0), (-30.0, 10, 5), (-40.0, 30, 10),
                                               (-13.0, 10, 8), (0.0, 10, 10), (6.0, 30, 30)])
def test_meter_cells(db, cells, filled):
    assert meter_cells(db, cells) == filled
