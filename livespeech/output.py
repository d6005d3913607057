"""Transcript formats (txt, json, srt, vtt) and safe writing of output files.

Files are written to a temporary name in the target folder and renamed, so an
interrupted run never leaves a half-written transcript, and an existing file is
never replaced unless ``force`` is given.
"""

from __future__ import annotations

import json
import time
from itertools import count
from pathlib import Path
from typing import TYPE_CHECKING

from livespeech.atomic import write_text_atomic

if TYPE_CHECKING:  # the formats need no torch: importing this module stays light
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
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename
    (:func:`livespeech.atomic.write_text_atomic`): an interrupted write leaves no
    partial file, and the file gets the mode a plain write would (an existing file
    keeps its own).

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False (nothing is changed).
        OSError: the folder cannot be written.
    """
    path = Path(path)
    try:
        write_text_atomic(path, text, overwrite=force)
    except FileExistsError:
        if force:
            raise
        raise FileExistsError(f"{path} exists (use --force to overwrite)") from None


def format_clock(seconds: float) -> str:
    """Session time as ``m:ss.s`` (``h:mm:ss`` from an hour on)."""
    if seconds >= 3600:
        h, rest = divmod(int(seconds), 3600)
        return f"{h}:{rest // 60:02d}:{rest % 60:02d}"
    m, s = divmod(max(0.0, seconds), 60)
    return f"{int(m)}:{s:04.1f}"


def save_transcript(segments: list, directory: Path, info: dict, stamp: str | None = None) -> tuple[Path, Path]:
    """Write the live view's ``livespeech-STAMP.txt`` (one utterance a line) and
    ``.json`` (``info`` plus text and utterances with times, words and phrases) into
    ``directory``, each atomically; an existing file is never replaced: ``-2``,
    ``-3``... are tried instead.

    Args:
        segments: the committed utterances (:class:`~livespeech.worker.Segment`), oldest first.
        directory: an existing folder.
        info: extra JSON fields (source, model...).
        stamp: name part (default: local time, YYYYmmdd-HHMMSS).
    Returns:
        the txt and json paths.
    Raises:
        OSError: the folder cannot be written.
    """
    from livespeech.atomic import write_text_atomic

    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    text = "".join(f"{s.text}\n" for s in segments)
    document = {**info, "text": " ".join(s.text for s in segments), "utterances": [s.to_dict() for s in segments]}
    body = json.dumps(document, indent=1) + "\n"
    for n in count(1):
        stem = f"livespeech-{stamp}" + (f"-{n}" if n > 1 else "")
        txt, jsn = directory / f"{stem}.txt", directory / f"{stem}.json"
        if txt.exists() or jsn.exists():
            continue
        try:
            write_text_atomic(txt, text, overwrite=False)
        except FileExistsError:
            continue
        try:
            write_text_atomic(jsn, body, overwrite=False)
        except FileExistsError:
            txt.unlink()
            continue
        return txt, jsn
    raise AssertionError("unreachable")
