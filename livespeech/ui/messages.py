"""Textual messages that carry the worker's events into the app.

The worker thread calls :func:`to_message` on each event from
:mod:`livespeech.live` and posts the result with ``App.post_message``, which is
thread-safe and never blocks.  None of these may replace a pending one
(``can_replace`` stays False): every update carries frames and characters that
are not repeated later.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from livespeech.live import LiveUpdate, RecognizerError, SourceEnded, SourceFailed, WorkerFailed


@dataclass
class Recognized(Message):
    """A chunk was recognised."""

    update: LiveUpdate


@dataclass
class InputEnded(Message):
    """The input file has ended; the results stay on screen."""

    audio_s: float


@dataclass
class RecognitionError(Message):
    """Recognising a chunk failed; it was skipped and listening goes on (``in_a_row``:
    failed chunks in a row)."""

    message: str
    in_a_row: int = 1


@dataclass
class InputFailed(Message):
    """The audio source stopped unexpectedly (``device``: a device the user may replace)."""

    message: str
    device: bool = True


def to_message(event: object) -> Message:
    """The message for a worker event.

    Raises:
        TypeError: not an event of :mod:`livespeech.live`.
    """
    if isinstance(event, LiveUpdate):
        return Recognized(event)
    if isinstance(event, SourceEnded):
        return InputEnded(event.audio_s)
    if isinstance(event, SourceFailed):
        return InputFailed(event.message)
    if isinstance(event, RecognizerError):
        return RecognitionError(event.message, event.in_a_row)
    if isinstance(event, WorkerFailed):
        return InputFailed(f"the recognizer stopped: {event.message}", device=False)
    raise TypeError(f"not a live event: {event!r}")
