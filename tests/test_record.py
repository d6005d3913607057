"""``livespeech record``: takes cut by level from a source's ring buffer (a file, or
any rate), saved in the folder-per-phrase layout the phrase trainer reads."""

import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from livespeech import capture
from livespeech.audio import StreamResampler
from livespeech.capture import CaptureError, FileSource
from livespeech.phrases import PhraseSet
from livespeech.levels import level_db
from livespeech.record import PlainDisplay, Segmenter, SegmenterConfig, next_take_path, phrase_folder, record_phrases
from tests.conftest import ROOT
from tests.livefakes import ScriptedSource
from training.data import read_phrase_folders

RATE = 16000


def burst(seconds: float, freq: float = 300.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def quiet(seconds: float, seed: int = 0) -> np.ndarray:
    """Background noise at about -60 dBFS."""
    return (0.001 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def session(bursts: list[float], gap: float = 1.0) -> np.ndarray:
    """Background noise with speech-like bursts of the given lengths, ``gap`` apart."""
    parts = [quiet(0.5)]
    for i, seconds in enumerate(bursts):
        parts += [burst(seconds, 250 + 50 * i) + quiet(seconds, i + 1), quiet(gap, i + 10)]
    return np.concatenate(parts)


def test_segmenter_cuts_each_burst_with_padding():
    segmenter = Segmenter(SegmenterConfig(pad_s=0.2, pause_s=0.5))
    audio = session([0.4, 0.7, 0.5])
    takes = []
    for start in range(0, len(audio), 1234):  # odd block sizes
        takes += segmenter.accept(audio[start : start + 1234])
    last = segmenter.flush()
    takes += [last] if last is not None else []
    assert len(takes) == 3
    for take, seconds in zip(takes, (0.4, 0.7, 0.5)):
        assert seconds + 0.3 <= len(take) / RATE <= seconds + 0.45  # 0.2 s before, 0.2 s after (to 10 ms frames)
        assert level_db(take[: int(0.15 * RATE)]) < -50  # the padding is background, not speech


def test_segmenter_ignores_clicks_and_cuts_long_takes():
    segmenter = Segmenter(SegmenterConfig(min_speech_s=0.12, max_seconds=1.0))
    click = np.concatenate([quiet(0.5), burst(0.05), quiet(1.0)])
    assert segmenter.accept(click) == [] and segmenter.flush() is None
    long = np.concatenate([quiet(0.5), burst(2.5), quiet(1.0)])
    takes = Segmenter(SegmenterConfig(max_seconds=1.0)).accept(long)
    assert len(takes) >= 2 and all(len(t) <= RATE for t in takes)


def test_take_numbering_continues(tmp_path):
    assert next_take_path(tmp_path).name == "take_001.wav"
    (tmp_path / "take_007.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert next_take_path(tmp_path).name == "take_008.wav"
    assert phrase_folder("What's  the TIME?") == "what's_the_time"


def test_record_from_a_file_into_phrase_folders(tmp_path, monkeypatch):
    def no_microphone():
        raise AssertionError("record must not touch the microphone")

    monkeypatch.setattr(capture, "load_sounddevice", no_microphone)
    path = tmp_path / "session.wav"
    sf.write(path, session([0.5, 0.6, 0.4, 0.5]), RATE)
    phrases = PhraseSet("mine", ("Lights on", "next slide"))
    out = tmp_path / "recordings"
    source = FileSource(path, speed=None)  # the live view's file source, as fast as it is read
    saved = record_phrases(phrases, out, takes=2, source=source, display=PlainDisplay())
    assert [p.relative_to(out).as_posix() for p in saved] == [
        "lights_on/take_001.wav", "lights_on/take_002.wav", "next_slide/take_001.wav", "next_slide/take_002.wav"]
    for p in saved:
        info = sf.info(p)
        assert info.samplerate == RATE and info.channels == 1 and info.subtype == "PCM_16"
    assert sorted({u.text for u in read_phrase_folders(out)}) == ["lights on", "next slide"]
    assert not source._thread.is_alive()  # stopped at the end
    again = record_phrases(PhraseSet("mine", ("lights on",)), out, takes=1, source=FileSource(path, speed=None),
                           display=PlainDisplay())
    assert again[0].name == "take_003.wav"  # never overwrites
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_record_reads_any_source_at_its_rate(tmp_path):
    audio = session([0.5, 0.6])
    resampler = StreamResampler(RATE, 48000)
    source = ScriptedSource(sample_rate=48000)  # a 48 kHz microphone, say
    source.feed(np.concatenate([resampler.accept(audio), resampler.flush()]))
    source.finish()
    saved = record_phrases(PhraseSet("mine", ("yes", "no")), tmp_path, takes=1, source=source, display=PlainDisplay())
    assert [p.parent.name for p in saved] == ["yes", "no"] and source.started and source.stopped
    for p, seconds in zip(saved, (0.5, 0.6)):
        assert seconds + 0.3 <= sf.info(p).duration <= seconds + 0.6


def test_a_failing_source_is_a_capture_error(tmp_path):
    source = ScriptedSource()
    source.feed(quiet(0.5))
    source.fail("the input device 'USB' stopped (disconnected?)")
    with pytest.raises(CaptureError, match="USB' stopped"):
        record_phrases(PhraseSet("mine", ("yes",)), tmp_path, takes=1, source=source, display=PlainDisplay())
    assert source.stopped


def _record_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "livespeech", "record", *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_record_command(tmp_path):
    (tmp_path / "set.txt").write_text("yes\nno\n")
    source = tmp_path / "session.wav"
    sf.write(source, session([0.4, 0.5, 0.4]), RATE)
    p = _record_cli(tmp_path / "set.txt", "--takes", "1", "--input", source, "--out", tmp_path / "rec")
    assert p.returncode == 0, p.stderr
    assert "2 takes saved" in p.stdout and 'Say: "yes"' in p.stderr
    assert sorted(x.name for x in (tmp_path / "rec").iterdir()) == ["no", "yes"]
    p = _record_cli(tmp_path / "set.txt", "--takes", "2", "--input", source, "--out", tmp_path / "short")
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1] == f"livespeech: error: {source}: the input ended after 3 of 4 takes"


@pytest.mark.parametrize("args, status, message", [
    (["digits", "--input", "missing.wav"], 1, "missing.wav: no such file"),
    (["nosuch"], 2, "no phrase set named 'nosuch'"),
    (["digits", "--takes", "0"], 2, "must be positive"),
    (["digits", "--device", "no-such-device-xyz"], 1, ""),  # no such input device (or no PortAudio): one line
])
def test_record_errors_are_one_line(tmp_path, args, status, message):
    p = _record_cli(*args, "--out", tmp_path / "rec")
    lines = p.stderr.strip().splitlines()
    assert p.returncode == status and len(lines) == 1, p.stderr  # no prompt before a source that cannot open
    assert lines[0].startswith("livespeech: error:") and message in lines[0]
