"""Benchmarks that write into a model folder."""

import json
import sys
from pathlib import Path

import soundfile as sf

from tests.conftest import speechlike

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_state_reset_bench_measures_and_writes_the_models_value(tiny_model_dir, tmp_path, monkeypatch):
    from livespeech.bundle import load_bundle

    monkeypatch.syspath_prepend(str(BENCH))
    sys.modules.pop("state_reset", None)
    import state_reset

    rows = []
    for i in range(2):
        sf.write(tmp_path / f"{i}.wav", speechlike(1.0, seed=i), 16000)
        rows.append(json.dumps({"audio": f"{i}.wav", "text": "yes", "speaker": "s"}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    report = state_reset.main(["--model", str(tiny_model_dir), "--corpus", str(tmp_path / "m.jsonl"),
                               "--state-reset-s", "0", "5", "--no-long", "--write", "5"])
    assert set(report["per_speaker"]) == {"0.0", "5.0"} and report["speakers"] == 1
    assert load_bundle(tiny_model_dir).state_reset_s == 5.0
