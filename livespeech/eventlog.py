"""``livespeech --events FILE``: one JSON line per committed utterance, for programs
that act on voice commands.

Each line is ``{"start_s", "end_s", "text", "phrase" (str or null), "confidence",
"top": [{"phrase", "p"}]}``; phrase fields are null without an active phrase set.
The file is appended to, never truncated, and each line is flushed at once.

The lines are written by a thread of the log's own: :meth:`EventLog.put` only queues
a line and never blocks, so a named pipe whose reader stalls (or that nobody opens
yet: opening a pipe waits for its reader) cannot hold up recognition.  When the
queue is full, new lines are dropped and counted in :attr:`EventLog.dropped`.
"""

from __future__ import annotations

import json
import queue
import threading
from pathlib import Path

CAPACITY = 256  # lines waiting for a slow reader before new ones are dropped


def event_line(segment) -> str:
    """The JSON line (with its newline) of a committed utterance (a :class:`~livespeech.worker.Segment`)."""
    result = segment.phrase
    row = {"start_s": round(segment.start_s, 3), "end_s": round(segment.end_s, 3), "text": segment.text,
           "phrase": result.phrase if result is not None else None,
           "confidence": round(result.confidence, 4) if result is not None else None,
           "top": [{"phrase": p, "p": round(q, 4)} for p, q in result.top] if result is not None else []}
    return json.dumps(row) + "\n"


class EventLog:
    """Appends event lines to a file or named pipe from a writer thread.

    Args:
        path: the file or pipe; opened by the writer thread.
        capacity: lines queued at most (default CAPACITY).

    Attributes:
        dropped: lines lost so far: the queue was full, or the file could not be written.
        written: lines written so far.
        error: why the file cannot be written (one line for the user), None while it can.
    """

    def __init__(self, path: Path, capacity: int | None = None):
        self.path = Path(path)
        self.dropped = 0
        self.written = 0
        self.error: str | None = None
        self._lock = threading.Lock()  # guards dropped: counted by the worker and the writer
        self._queue: queue.Queue[str | None] = queue.Queue(maxsize=capacity or CAPACITY)
        self._thread = threading.Thread(target=self._run, name="livespeech-events", daemon=True)
        self._thread.start()

    def put(self, segment) -> None:
        """Queue the line of a committed utterance; never blocks (a full queue drops it)."""
        if self.error is not None:
            self._drop()
            return
        try:
            self._queue.put_nowait(event_line(segment))
        except queue.Full:
            self._drop()

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def close(self, timeout: float = 0.2) -> None:
        """Write what is queued and close the file, waiting at most ``timeout`` seconds
        (a stalled reader's lines are given up; the thread is a daemon)."""
        while True:
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:  # the writer is stuck: make room for the end mark
                try:
                    if self._queue.get_nowait() is not None:
                        self._drop()
                except queue.Empty:
                    pass
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as file:  # a named pipe waits here for a reader
                while (line := self._queue.get()) is not None:
                    file.write(line)
                    file.flush()
                    self.written += 1
        except OSError as error:  # no permission, a reader that went away (EPIPE)...
            self.error = f"--events {self.path}: {error.strerror or error}"
            while True:  # count what was waiting; later lines are counted by put()
                try:
                    if self._queue.get_nowait() is not None:
                        self._drop()
                except queue.Empty:
                    break
