import json
import os
import stat

import pytest
import torch

from livespeech.decoding import Word
from livespeech.output import render, to_json, write_atomic
from livespeech.recognizer import Transcript, Utterance


def transcript():
    u1 = Utterance("hello world", (Word("hello", 0.1, 0.4), Word("world", 0.5, 0.9)), 0.0, 1.0, torch.zeros(0, 29))
    u2 = Utterance("again", (Word("again", 3601.25, 3601.5),), 3601.0, 3602.0, torch.zeros(0, 29))
    return Transcript("hello world again", (u1, u2), 3602.0, 1.5)


def test_json_contract():
    row = json.loads(render("a.wav", transcript(), "json"))
    assert set(row) == {"audio", "text", "duration_s", "processing_s", "words"}
    assert row["words"][0] == {"word": "hello", "start_s": 0.1, "end_s": 0.4}
    assert to_json("a.wav", transcript())["duration_s"] == 3602.0


def test_srt_and_vtt():
    srt = render("a.wav", transcript(), "srt")
    assert srt.startswith("1\n00:00:00,100 --> 00:00:00,900\nhello world\n\n2\n01:00:01,250 --> 01:00:01,500\nagain\n")
    vtt = render("a.wav", transcript(), "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nhello world\n")


def test_txt():
    assert render("a.wav", transcript(), "txt") == "hello world again\n"
    with pytest.raises(ValueError):
        render("a.wav", transcript(), "doc")


def test_write_atomic_never_overwrites(tmp_path):
    target = tmp_path / "out.txt"
    write_atomic(target, "one")
    with pytest.raises(FileExistsError):
        write_atomic(target, "two")
    assert target.read_text() == "one"
    write_atomic(target, "three", force=True)
    assert target.read_text() == "three"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary files left


def test_write_atomic_gives_the_mode_a_plain_write_would(tmp_path):
    """Transcripts once got 0600 (mkstemp ignores the umask), and --force turned an
    existing 0644 file into 0600."""
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.txt", "new")
        existing = tmp_path / "old.txt"
        existing.write_text("old")
        existing.chmod(0o644)
        os.umask(0o077)  # plays no part for an existing file
        write_atomic(existing, "replaced", force=True)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644
    assert existing.read_text() == "replaced"
