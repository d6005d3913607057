"""The command-line contract of DESIGN.md, run in a subprocess like a user would."""

import json
import os
import subprocess
import sys
import wave

import pytest

from tests.conftest import ROOT, speechlike


def livespeech(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "livespeech", *map(str, args)], capture_output=True, text=True, env=env, timeout=300, **kwargs)


def test_help():
    p = livespeech("--help")
    assert p.returncode == 0 and "transcribe" in p.stdout


@pytest.mark.parametrize("args", [["transcribe", "--format", "nonsense", "x.wav"], ["transcribe"], ["frobnicate"],
                                  ["transcribe", "--chunk-ms", "0", "x.wav"]])
def test_usage_errors_exit_2_with_one_line(args):
    p = livespeech(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livespeech: error:")


def test_transcribe_json_with_bad_files(tmp_path, tiny_model_dir, write_audio):
    good = write_audio("good.wav", speechlike(0.6), 16000)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio\n" * 40)
    (tmp_path / "trunc.wav").write_bytes(good.read_bytes()[:30])
    with wave.open(str(tmp_path / "zero.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"")
    bad = ["empty.wav", "text.wav", "trunc.wav", "missing.wav", "zero.wav"]
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "json", good, *[tmp_path / b for b in bad])
    assert p.returncode == 1
    errors = p.stderr.strip().splitlines()
    assert len(errors) == len(bad) and all(e.startswith("livespeech: error:") for e in errors)
    assert "Traceback" not in p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["audio"] == str(good)
    assert rows[0]["duration_s"] == pytest.approx(0.6)


def test_output_dir_never_overwrites(tmp_path, tiny_model_dir, write_audio):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.srt").write_text("precious")
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "srt", "--output-dir", out, audio)
    assert p.returncode == 1 and "exists" in p.stderr
    assert (out / "clip.srt").read_text() == "precious"
    p = livespeech("transcribe", "--model", tiny_model_dir, "--format", "srt", "--output-dir", out, "--force", audio)
    assert p.returncode == 0 and (out / "clip.srt").read_text() != "precious"


def test_bad_model_is_one_line(tmp_path, write_audio):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    for model in (tmp_path / "broken", "no-such-model"):
        p = livespeech("transcribe", "--model", model, audio)
        assert p.returncode != 0
        assert p.stderr.startswith("livespeech: error:") and len(p.stderr.strip().splitlines()) == 1


def test_models_lists_bundled_default():
    p = livespeech("models")
    assert p.returncode == 0 and "base" in p.stdout
