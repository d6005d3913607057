"""The recognizer worker between a :class:`~livespeech.capture.Source` and the UI, and
the events it sends.

    source --ring buffer--> LiveWorker (thread: resample, Recognizer, PhraseScorer) --sink(event)--> UI

:class:`LiveWorker` pulls fixed chunks (100 ms by default) from the source's ring
buffer, resamples them to the model's rate, runs the :class:`Recognizer` and calls
``sink`` with one :class:`LiveUpdate` per chunk; ``sink`` must be thread-safe and
must not block (the app passes a wrapper of its ``post_message``).  When the source pauses, ends
or fails, the worker processes what is left, flushes the recognizer (the utterance
in progress is committed) and, for an end or a failure, sends :class:`SourceEnded`
or :class:`SourceFailed`.

When recognising a chunk raises, the worker sends :class:`RecognizerError`, drops
that chunk, resets the recognizer (a new utterance begins after the chunk) and goes
on; after ``MAX_ERRORS_IN_A_ROW`` failed chunks in a row it gives up with
:class:`WorkerFailed`.

Each event is declared once, as a Textual message: the app handles it with
``@on(LiveUpdate)``; other consumers (tests, the end-to-end probe) just collect the
objects.  None may replace a pending one (``can_replace`` stays False): every update
carries frames and characters that are not repeated later.

Times are session times: seconds of audio listened since the session began,
continuing across pauses and device changes (pass the previous worker's
:attr:`LiveWorker.position` as ``origin``).  Spectrogram frames are numbered the
same way (10 ms each).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from textual.message import Message

from livespeech.audio import StreamResampler
from livespeech.capture import Source
from livespeech.decoding import Word
from livespeech.levels import level_db, peak

CHUNK_MS = 100  # worker chunk, milliseconds
WAIT_S = 0.05  # longest wait for audio before checking the source's state, seconds
CLIP_LEVEL = 0.999  # |sample| at or above this counts as clipping
MAX_ERRORS_IN_A_ROW = 50  # failed chunks in a row (5 s at 100 ms) before the worker gives up


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class CharMark:
    """A character the decoder emitted at spectrogram frame ``frame``."""

    frame: int
    char: str


@dataclass(frozen=True)
class Segment:
    """A committed utterance.

    Attributes:
        text: its text.
        start_s, end_s: speech span in session seconds (first word's start to last
            word's end).
        start_frame, end_frame: the same span in spectrogram frames.
        words: words with session times.
        phrase: the phrase scorer's result (a ``PhraseResult``), None without a scorer.
    """

    text: str
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int
    words: tuple[Word, ...]
    phrase: Any = None

    def to_dict(self) -> dict:
        """Text, times (ms precision), words and phrase, for saved transcripts."""
        phrase = None
        if self.phrase is not None:
            phrase = {"phrase": self.phrase.phrase, "confidence": round(float(self.phrase.confidence), 4)}
        return {"text": self.text, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "words": [w.to_dict() for w in self.words], "phrase": phrase}


@dataclass(frozen=True)
class Position:
    """Where a session stands: seconds listened and spectrogram frames produced."""

    seconds: float = 0.0
    frames: int = 0


# ----------------------------------------------------------------------------- events


@dataclass(eq=False)  # eq=False: equal only to itself (it holds an array)
class LiveUpdate(Message):
    """What one chunk of audio produced, ready to draw (treat it as read-only).

    Attributes:
        frames: log-mel frames completed by the chunk, shape (t, n_mels), read-only.
        first_frame: session index of ``frames[0]``.
        chars: characters emitted in the chunk.
        partial: text of the utterance in progress ("" when none).
        partial_frame: frame of the in-progress utterance's first character, or None.
        committed: utterances that ended in the chunk.
        audio_s: session seconds listened after this chunk.
        level_db: RMS level of the chunk, dBFS (``livespeech.levels.SILENCE_DB`` for silence).
        peak: largest absolute sample of the chunk (>= CLIP_LEVEL: clipping).
        rtf: processing time / chunk duration, None for a short final chunk.
        arrival: ``time.perf_counter()`` when the chunk's first sample arrived, None when unknown.
        overruns: the source's overrun count so far (lost audio).
    """

    frames: np.ndarray
    first_frame: int
    chars: tuple[CharMark, ...]
    partial: str
    partial_frame: int | None
    committed: tuple[Segment, ...]
    audio_s: float
    level_db: float
    peak: float
    rtf: float | None
    arrival: float | None
    overruns: int


@dataclass
class SourceEnded(Message):
    """The source has no more audio (end of an ``--input`` file); the results stay."""

    audio_s: float


@dataclass
class SourceFailed(Message):
    """The source stopped unexpectedly (device unplugged, unreadable file)."""

    message: str


@dataclass
class RecognizerError(Message):
    """Recognising a chunk raised: the chunk was dropped and the stream goes on with a
    new utterance. ``in_a_row``: failed chunks in a row, this one included."""

    message: str
    in_a_row: int = 1


@dataclass
class WorkerFailed(Message):
    """The worker stopped: the recognizer raised on MAX_ERRORS_IN_A_ROW chunks in a
    row, or something else failed; the message names the error."""

    message: str


# ----------------------------------------------------------------------------- worker


class LiveWorker:
    """A thread that turns a source's audio into :class:`LiveUpdate` events.

    Args:
        source: where audio comes from (started by the caller).
        recognizer: a :class:`~livespeech.recognizer.Recognizer` (or an object with its
            ``sample_rate``, ``stack``, ``seconds_per_step``, ``accept``, ``flush``,
            ``reset``); the worker owns it while running.
        sink: called from the worker thread with each event; thread-safe, non-blocking.
        chunk_ms: chunk length, milliseconds (default 100).
        scorer: phrase scorer for committed utterances (a ``PhraseScorer``: ``score(log_probs)``
            gives a ``PhraseResult``), or None; see :attr:`scorer`.
        origin: session position to continue from (default: the start).
    """

    def __init__(self, source: Source, recognizer, sink: Callable[[Message], Any], chunk_ms: int = CHUNK_MS,
                 scorer=None, origin: Position = Position()):
        self.source, self.recognizer, self.sink = source, recognizer, sink
        self.scorer = scorer  # swapped by the UI thread at any time; read once per utterance
        self.chunk = max(1, round(source.sample_rate * chunk_ms / 1000))  # source samples
        self.chunk_s = self.chunk / source.sample_rate
        self._resampler = StreamResampler(source.sample_rate, recognizer.sample_rate)
        self._frame_s = recognizer.seconds_per_step / recognizer.stack
        self._base = origin  # session position where the recognizer's current stream began
        self._frames = 0  # frames of the current stream
        self._stream_s = 0.0  # audio seconds of the current stream
        self._commit_frame = origin.frames  # end of the last committed utterance
        self._partial_frame: int | None = None
        self._dirty = False  # the recognizer holds audio not yet flushed
        self._errors = 0  # chunks in a row whose recognition raised
        self._stop = threading.Event()
        self._flush_on_stop = True
        self._thread = threading.Thread(target=self._run, name="livespeech-recognizer", daemon=True)

    @property
    def position(self) -> Position:
        """Session position after the audio processed so far."""
        return Position(self._base.seconds + self._stream_s, self._base.frames + self._frames)

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 1.0, flush: bool = True) -> bool:
        """Ask the thread to finish and wait up to ``timeout`` seconds.

        Args:
            timeout: longest wait, seconds.
            flush: commit the utterance in progress first (False when quitting).
        Returns:
            True when the thread has finished.
        """
        self._flush_on_stop = flush
        self._stop.set()
        self.source.ring.wake()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # the thread ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._listen()
            if self._flush_on_stop or not self._stop.is_set():
                self._flush()
            if self.source.error:
                self.sink(SourceFailed(self.source.error))
            elif self.source.ended:
                self.sink(SourceEnded(self.position.seconds))
        except Exception as error:  # noqa: BLE001 - shown on screen instead of dying silently
            in_a_row = f" ({self._errors} chunks in a row)" if self._errors >= MAX_ERRORS_IN_A_ROW else ""
            self.sink(WorkerFailed(f"{type(error).__name__}: {error}{in_a_row}"))

    def _listen(self) -> None:
        """Process full chunks until stopped, or the source ends or fails."""
        ring = self.source.ring
        while not self._stop.is_set():
            if ring.wait(self.chunk, WAIT_S):
                self._process(final=False)
                continue
            self.source.check()
            if self.source.error or self.source.ended:
                return
            if self.source.paused and self._dirty:
                self._flush()

    def _flush(self) -> None:
        """Process the samples left in the ring and end the recognizer's stream."""
        if self._dirty or self.source.ring.available:
            self._process(final=True)

    def _process(self, final: bool) -> None:
        """Recognise the next chunk (``final``: all that is left, then end the
        recognizer's stream) and send the update, or drop the chunk if that raises.

        Raises:
            Exception: the recognizer's error on the MAX_ERRORS_IN_A_ROW-th failed chunk in a row.
        """
        ring = self.source.ring
        arrival = ring.arrival_time(ring.consumed)
        samples = ring.read(self.chunk if not final else ring.available)
        try:
            update = self._recognize(samples, arrival, final)
        except Exception as error:  # noqa: BLE001 - one bad chunk must not end the session
            self._errors += 1
            if self._errors >= MAX_ERRORS_IN_A_ROW:
                raise
            self._skip(len(samples) / self.source.sample_rate)
            self.sink(RecognizerError(f"{type(error).__name__}: {error}", self._errors))
            return
        self._errors = 0
        self.sink(update)

    def _recognize(self, samples: np.ndarray, arrival: float | None, final: bool) -> LiveUpdate:
        """The update for one chunk of source samples, shape (n,)."""
        t0 = time.perf_counter()
        audio = self._resampler.accept(samples)
        if final:
            audio = np.concatenate([audio, self._resampler.flush()])
        results = [self.recognizer.accept(audio)]
        if final:
            results.append(self.recognizer.flush())
        return self._update(results, samples, arrival, t0, final)

    def _skip(self, seconds: float) -> None:
        """After a failed chunk of ``seconds``: start a new recognizer stream where that
        chunk ends (the utterance in progress is lost; session times go on counting the
        dropped audio, spectrogram frames just leave it out)."""
        self.recognizer.reset()
        self._resampler.reset()
        position = self.position
        self._base, self._frames, self._stream_s = Position(position.seconds + seconds, position.frames), 0, 0.0
        self._partial_frame, self._dirty = None, False

    def _update(self, results: list, samples: np.ndarray, arrival: float | None, t0: float, final: bool) -> LiveUpdate:
        base, stack = self._base, self.recognizer.stack
        frames = np.concatenate([r.features.numpy() for r in results])  # (t, n_mels)
        frames.setflags(write=False)
        first_frame = base.frames + self._frames
        chars = tuple(CharMark(base.frames + e.step * stack, e.char) for r in results for e in r.emissions)
        committed = tuple(self._segment(u) for r in results for u in r.committed)
        self._frames += frames.shape[0]
        self._stream_s = results[-1].audio_s
        self._track_partial(chars, committed, results[-1].partial)
        audio_s = self.position.seconds
        if final:  # the recognizer has reset: the next stream starts here
            self._base, self._frames, self._stream_s = self.position, 0, 0.0
        self._dirty = not final
        elapsed = time.perf_counter() - t0
        rtf = elapsed / self.chunk_s if len(samples) == self.chunk else None
        return LiveUpdate(frames, first_frame, chars, results[-1].partial, self._partial_frame, committed,
                          audio_s, level_db(samples), peak(samples), rtf, arrival, self.source.overruns)

    def _segment(self, utterance) -> Segment:
        """A committed utterance in session time, scored when a scorer is active."""
        offset = self._base.seconds
        words = tuple(Word(w.word, w.start_s + offset, w.end_s + offset) for w in utterance.words)
        start = words[0].start_s if words else utterance.start_s + offset
        end = words[-1].end_s if words else utterance.end_s + offset
        scorer = self.scorer
        phrase = scorer.score(utterance.log_probs) if scorer is not None else None
        return Segment(utterance.text, start, end, self._frame_at(start), self._frame_at(end), words, phrase)

    def _frame_at(self, seconds: float) -> int:
        """Spectrogram frame of a session time in the current stream."""
        return self._base.frames + round((seconds - self._base.seconds) / self._frame_s)

    def _track_partial(self, chars: tuple[CharMark, ...], committed: tuple[Segment, ...], partial: str) -> None:
        """Remember where the utterance in progress began (its first character)."""
        if committed:
            self._commit_frame, self._partial_frame = committed[-1].end_frame, None
        if not partial:
            self._partial_frame = None
        elif self._partial_frame is None:
            later = [c.frame for c in chars if c.frame >= self._commit_frame and c.char != " "]
            self._partial_frame = min(later, default=None)
