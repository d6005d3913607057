"""``livespeech record``: record takes of every phrase of a set for phrase training.

For each phrase and take the user sees a prompt (``Say: "lights on"  take 2/5``) and
a live input level meter; a take starts when the level rises above the background
noise and ends at a pause, and is saved as a 16 kHz 16-bit WAV file in the
folder-per-phrase layout that ``livespeech-train phrases --recordings DIR`` reads:

    DIR/lights_on/take_001.wav, DIR/lights_on/take_002.wav, DIR/next_slide/take_001.wav ...

Existing takes are never overwritten: numbering continues after the last one.
The audio comes from a :class:`~livespeech.capture.Source` through its ring buffer,
as in the live view: the microphone, or with ``--input FILE`` a file read as fast as
the takes are cut (its spoken segments become the takes, in order), for tests and
for cutting a long recording.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livespeech.atomic import atomic_path
from livespeech.capture import Source, read_source
from livespeech.features import FRAMES_PER_SECOND, SAMPLE_RATE
from livespeech.levels import SILENCE_DB, level_db, meter_cells
from livespeech.phrases import PhraseSet
from livespeech.text import normalize

FRAME = SAMPLE_RATE // FRAMES_PER_SECOND  # 160 samples: 10 ms level frames
BLOCK_MS = 50  # audio read size, milliseconds
TAKE_PATTERN = re.compile(r"take_(\d+)\.wav$")


@dataclass(frozen=True)
class SegmenterConfig:
    """How takes are cut from a stream by their level.

    Args:
        margin_db: speech is this many dB above the background level (default 12).
        min_level_db: never speech below this level, dBFS (default -55).
        floor_rise_db_s: how fast the background estimate may rise, dB/s (default 6).
        pause_s: silence that ends a take, seconds (default 0.6).
        min_speech_s: shorter bursts (clicks) are not takes, seconds (default 0.12).
        pad_s: silence kept before and after the speech, seconds (default 0.25).
        max_seconds: longest take; a longer one is cut there (default 6).
    """

    margin_db: float = 12.0
    min_level_db: float = -55.0
    floor_rise_db_s: float = 6.0
    pause_s: float = 0.6
    min_speech_s: float = 0.12
    pad_s: float = 0.25
    max_seconds: float = 6.0


class Segmenter:
    """Cuts a 16 kHz stream into takes: spoken segments padded with ``pad_s`` of context.

    The background level is a minimum follower: it starts at the first frame's level
    (the stream should start before the speech), drops at once to a quieter frame
    and rises at most ``floor_rise_db_s``; a 10 ms frame is speech when it is
    ``margin_db`` above it (and above ``min_level_db``).
    """

    def __init__(self, config: SegmenterConfig = SegmenterConfig()):
        self.config = config
        self.pad = int(config.pad_s * FRAMES_PER_SECOND)
        self.pause = int(config.pause_s * FRAMES_PER_SECOND)
        self.min_speech = max(1, int(config.min_speech_s * FRAMES_PER_SECOND))
        self.max_frames = int(config.max_seconds * FRAMES_PER_SECOND)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (the background estimate too)."""
        self.floor_db: float | None = None  # set by the first frame
        self.level = SILENCE_DB
        self._rest = np.zeros(0, np.float32)
        self._frames: list[np.ndarray] = []  # context before speech, then the take
        self._speech = 0  # speech frames in the take so far (0: not in a take)
        self._silence = 0  # frames since the last speech frame

    @property
    def in_take(self) -> bool:
        return self._speech > 0

    def _is_speech(self, frame: np.ndarray) -> bool:
        c = self.config
        self.level = level_db(frame)
        rising = self.level if self.floor_db is None else self.floor_db + c.floor_rise_db_s / FRAMES_PER_SECOND
        self.floor_db = min(self.level, rising)
        return self.level > max(self.floor_db + c.margin_db, c.min_level_db)

    def accept(self, samples: np.ndarray) -> list[np.ndarray]:
        """Add mono float32 samples at 16 kHz, shape (n,); return the takes completed
        by them, each shape (m,)."""
        data = np.concatenate([self._rest, np.asarray(samples, np.float32)])
        whole = len(data) // FRAME * FRAME
        self._rest = data[whole:]
        takes = []
        for start in range(0, whole, FRAME):
            take = self._frame(data[start : start + FRAME])
            if take is not None:
                takes.append(take)
        return takes

    def _frame(self, frame: np.ndarray) -> np.ndarray | None:
        speech = self._is_speech(frame)
        self._frames.append(frame)
        if not self.in_take:
            if speech:
                self._speech, self._silence = 1, 0
            else:
                del self._frames[: -self.pad or len(self._frames)]  # keep pad_s of context
            return None
        self._speech += speech
        self._silence = 0 if speech else self._silence + 1
        if self._silence >= self.pause or len(self._frames) >= self.max_frames:
            return self._close()
        return None

    def _close(self) -> np.ndarray | None:
        keep = len(self._frames) - max(0, self._silence - self.pad)  # trailing silence down to pad_s
        take = np.concatenate(self._frames[:keep]) if self._speech >= self.min_speech else None
        self._frames, self._speech, self._silence = [], 0, 0
        return take

    def flush(self) -> np.ndarray | None:
        """End of the stream: the take in progress, if any."""
        return self._close() if self.in_take else None


def phrase_folder(phrase: str) -> str:
    """Folder name of a phrase: normalised, spaces as underscores (``lights_on``);
    ``training.data.read_phrase_folders`` reads it back as the phrase."""
    return normalize(phrase).replace(" ", "_")


def next_take_path(folder: Path) -> Path:
    """``folder/take_NNN.wav`` numbered after the highest existing take."""
    numbers = [int(m.group(1)) for p in folder.glob("take_*.wav") if (m := TAKE_PATTERN.search(p.name))]
    return folder / f"take_{max(numbers, default=0) + 1:03d}.wav"


def save_take(folder: Path, samples: np.ndarray) -> Path:
    """Write a take as 16 kHz 16-bit WAV, atomically and never over an existing file;
    returns its path."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    path = next_take_path(folder)
    with atomic_path(path, overwrite=False) as tmp:
        sf.write(tmp, samples, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return path


# --- display: prompts and the level meter --------------------------------------------


class PlainDisplay:
    """Prompts and saved takes as lines on stderr (when it is not a terminal)."""

    def prompt(self, phrase: str, take: int, takes: int) -> None:
        print(f'Say: "{phrase}"  (take {take}/{takes})', file=sys.stderr, flush=True)

    def level(self, db: float, recording: bool) -> None:
        pass

    def saved(self, path: Path, seconds: float) -> None:
        print(f"  saved {path} ({seconds:.1f} s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass


class MeterDisplay(PlainDisplay):
    """The prompt and a live input level meter on a terminal (rich)."""

    CELLS = 30  # width of the meter

    def __init__(self):
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.live = Live(console=self.console, transient=True, refresh_per_second=20)
        self.live.start()
        self.text = ""

    def prompt(self, phrase: str, take: int, takes: int) -> None:
        self.text = f'Say: [bold]"{phrase}"[/bold]  take {take}/{takes}'
        self.level(SILENCE_DB, False)

    def level(self, db: float, recording: bool) -> None:
        filled = meter_cells(db, self.CELLS)
        bar = "[green]" + "#" * filled + "[/green]" + "-" * (self.CELLS - filled)
        state = "[red]recording[/red]" if recording else "listening"
        self.live.update(f"{self.text}\n{bar} {max(db, -99):5.1f} dBFS  {state}")

    def saved(self, path: Path, seconds: float) -> None:
        self.console.print(f"saved {path} ({seconds:.1f} s)")

    def close(self) -> None:
        self.live.stop()


def record_phrases(phrase_set: PhraseSet, out: Path, takes: int, source: Source, max_seconds: float = 6.0,
                   display=None) -> list[Path]:
    """Record ``takes`` takes of every phrase into ``out`` (folder per phrase).

    Args:
        source: where the audio comes from, not started (see
            :func:`~livespeech.capture.open_source`); started here, stopped at the end.
        display: where prompts and the meter go (a terminal meter when stderr is a
            terminal, else plain lines).
    Returns:
        the saved files in order; fewer than ``takes * len(phrases)`` when the source
        ended first.
    Raises:
        CaptureError: the source cannot start, or failed.
    """
    source.start()
    try:
        display = display or (MeterDisplay() if sys.stderr.isatty() else PlainDisplay())
        segmenter = Segmenter(SegmenterConfig(max_seconds=max_seconds))
        stream = _takes(read_source(source, BLOCK_MS / 1000), segmenter, display)
        saved: list[Path] = []
        try:
            for phrase in phrase_set.phrases:
                for take in range(1, takes + 1):
                    display.prompt(phrase, take, takes)
                    samples = next(stream, None)
                    if samples is None:
                        return saved
                    saved.append(save_take(Path(out) / phrase_folder(phrase), samples))
                    display.saved(saved[-1], len(samples) / SAMPLE_RATE)
        finally:
            display.close()
        return saved
    finally:
        source.stop()


def _takes(blocks: Iterable[np.ndarray], segmenter: Segmenter, display) -> Iterator[np.ndarray]:
    """Takes cut from the blocks, updating the meter on every block."""
    for block in blocks:
        done = segmenter.accept(block)
        display.level(segmenter.level, segmenter.in_take)
        yield from done
    last = segmenter.flush()
    if last is not None:
        yield last
