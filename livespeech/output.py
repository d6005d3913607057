"""Transcript formats (txt, json, srt, vtt) and safe writing of output files.

Files are written to a temporary name in the target folder and renamed, so an
interrupted run never leaves a half-written transcript, and an existing file is
never replaced unless ``force`` is given.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from livespeech.recognizer import Transcript

FORMATS = ("txt", "json", "srt", "vtt")
MAX_CUE_WORDS = 12  # words per subtitle cue


def to_json(audio: str, transcript: Transcript) -> dict:
    """The JSON object of DESIGN.md: audio, text, duration_s, processing_s, words."""
    return {
        "audio": audio,
        "text": transcript.text,
        "duration_s": round(transcript.audio_s, 3),
        "processing_s": round(transcript.processing_s, 4),
        "words": [w.to_dict() for w in transcript.words],
    }


def _timestamp(seconds: float, separator: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{separator}{ms:03d}"


def _cues(transcript: Transcript) -> list[tuple[float, float, str]]:
    """Subtitle cues: one per utterance, long utterances split every MAX_CUE_WORDS words."""
    cues = []
    for utterance in transcript.utterances:
        words = list(utterance.words)
        for i in range(0, len(words), MAX_CUE_WORDS):
            part = words[i : i + MAX_CUE_WORDS]
            cues.append((part[0].start_s, part[-1].end_s, " ".join(w.word for w in part)))
    return cues


def render(audio: str, transcript: Transcript, fmt: str) -> str:
    """The transcript in format ``fmt`` (txt, json, srt or vtt).

    Raises:
        ValueError: unknown format.
    """
    if fmt == "txt":
        return transcript.text + "\n"
    if fmt == "json":
        return json.dumps(to_json(audio, transcript)) + "\n"
    if fmt == "srt":
        return "".join(f"{i}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n\n" for i, (a, b, text) in enumerate(_cues(transcript), 1))
    if fmt == "vtt":
        return "WEBVTT\n\n" + "".join(f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n\n" for a, b, text in _cues(transcript))
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def write_atomic(path: Path, text: str, force: bool = False) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
    """
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path appeared meanwhile: never overwrite
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
