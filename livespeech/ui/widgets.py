"""Widgets of the live view: spectrogram, transcript, phrase panel and status bar.

They only draw what :class:`~livespeech.live.LiveUpdate` events bring; none of them
touches audio or the recognizer.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import numpy as np
from rich.color import Color
from rich.segment import Segment as RichSegment
from rich.style import Style
from rich.text import Text
from textual.containers import Vertical
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import RichLog, Static

from livespeech.live import CLIP_LEVEL, LiveUpdate, Segment, format_clock

# Colour map anchors (inferno-like): dark for quiet, yellow for loud.
COLORMAP = ((0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
            (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164))
LEVELS = 32  # colour steps
UPPER_HALF = "\u2580"  # ▀: foreground paints the upper pixel, background the lower


def _palette(levels: int = LEVELS) -> list[Color]:
    """``levels`` colours interpolated along COLORMAP."""
    anchors = np.array(COLORMAP, np.float64)
    x = np.linspace(0, len(anchors) - 1, levels)
    rgb = np.stack([np.interp(x, np.arange(len(anchors)), anchors[:, c]) for c in range(3)], axis=1)
    return [Color.from_rgb(*map(int, np.round(c))) for c in rgb]


class Spectrogram(Widget):
    """Scrolling colour log-mel spectrogram, newest frames on the right.

    Each cell shows two pixels with a half block; each column is
    ``frames_per_column`` feature frames (one model step by default), and the mel
    bands are averaged down to twice the image height (low frequencies at the
    bottom).  Under the image, one row shows the emitted characters at their frames
    and one row marks utterances (committed ones solid, the one in progress light).

    Frames arrive ten at a time (one 100 ms chunk) and are played out over the next
    ``PLAYOUT_S`` seconds at ``TICK_S`` intervals, so the image scrolls smoothly at
    more than 20 updates a second.

    Args:
        n_mels: bands per frame.
        frames_per_column: frames per screen column.
        floor_db, ceiling_db: log-mel values (natural log of mel power) drawn as the
            darkest and brightest colours.
    """

    DEFAULT_CSS = """
    Spectrogram { height: 16; }
    Spectrogram > .spectrogram--char { color: $text; text-style: bold; }
    Spectrogram > .spectrogram--utterance { color: $success; }
    Spectrogram > .spectrogram--partial { color: $warning; }
    """
    COMPONENT_CLASSES = {"spectrogram--char", "spectrogram--utterance", "spectrogram--partial"}
    TICK_S = 1 / 30  # playout timer interval, seconds
    PLAYOUT_S = 0.1  # a chunk's frames are spread over this long, seconds
    HISTORY_COLUMNS = 400  # columns kept (wider terminals show blank history)
    MARK_ROWS = 2
    DONE_GLYPHS = "\u2501\u2523\u252b"  # ━┣┫ a committed utterance
    PARTIAL_GLYPHS = "\u2500\u2576\u2500"  # ─╶─ the utterance in progress

    def __init__(self, n_mels: int = 80, frames_per_column: int = 3, floor_db: float = -11.0, ceiling_db: float = 4.0,
                 *, id: str | None = None):
        super().__init__(id=id)
        self.n_mels, self.frames_per_column = n_mels, frames_per_column
        self.floor, self.ceiling = floor_db, ceiling_db
        capacity = self.HISTORY_COLUMNS * frames_per_column
        self._store = np.full((capacity, n_mels), floor_db, np.float32)  # frame f in row f % capacity
        self._shown = 0  # session index of the next frame to show
        self._pending: deque[np.ndarray] = deque()  # frames not yet shown, oldest first
        self._pending_count = 0
        self._chars: deque = deque(maxlen=capacity)
        self._spans: deque[tuple[int, int]] = deque(maxlen=256)
        self._partial_frame: int | None = None
        cells = [RichSegment(UPPER_HALF, Style(color=top, bgcolor=bottom)) for top in _palette() for bottom in _palette()]
        self._cells = cells  # index top * LEVELS + bottom
        self._strips: list[Strip] | None = None
        self._weights: tuple[int, np.ndarray] | None = None
        self.updates = 0  # image changes so far (for the >= 20 per second check)

    def on_mount(self) -> None:
        self.set_interval(self.TICK_S, self._tick)

    def on_resize(self) -> None:
        self._strips = None

    # feeding -----------------------------------------------------------------------

    def push(self, update: LiveUpdate) -> None:
        """Queue an update's frames and marks for playout."""
        if update.frames.shape[0]:
            if not self._pending_count and update.first_frame != self._shown:
                self._shown = update.first_frame  # a gap: continue from the new position
            self._pending.append(update.frames)
            self._pending_count += update.frames.shape[0]
        self._chars.extend(c for c in update.chars if c.char != " ")
        self._spans.extend((s.start_frame, s.end_frame) for s in update.committed)
        changed_marks = bool(update.committed) or update.partial_frame != self._partial_frame
        self._partial_frame = update.partial_frame
        if changed_marks and not update.frames.shape[0]:
            self._invalidate()  # otherwise the next playout tick redraws

    def clear_marks(self) -> None:
        """Forget characters and utterance marks (the image keeps scrolling)."""
        self._chars.clear()
        self._spans.clear()
        self._partial_frame = None
        self._invalidate()

    @property
    def pending(self) -> int:
        """Frames received but not yet shown."""
        return self._pending_count

    def _tick(self) -> None:
        if self._pending_count:
            columns = self._shown // self.frames_per_column
            self._take(math.ceil(self._pending_count * self.TICK_S / self.PLAYOUT_S))
            if self._shown // self.frames_per_column != columns:
                self.updates += 1
                self._invalidate()

    def _take(self, n: int) -> None:
        """Move ``n`` frames from the queue into the image."""
        while n > 0 and self._pending:
            block = self._pending[0]
            take = min(n, block.shape[0])
            rows = (self._shown + np.arange(take)) % self._store.shape[0]
            self._store[rows] = block[:take]
            self._shown += take
            self._pending_count -= take
            n -= take
            if take == block.shape[0]:
                self._pending.popleft()
            else:
                self._pending[0] = block[take:]

    def _invalidate(self) -> None:
        self._strips = None
        self.refresh()

    # drawing -----------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        if self._strips is None:
            self._strips = self._render_strips(self.size.width, self.size.height)
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)

    def _render_strips(self, width: int, height: int) -> list[Strip]:
        rows = max(0, height - self.MARK_ROWS)
        if width <= 0 or height <= 0:
            return []
        first_column = self._shown // self.frames_per_column - width
        strips = self._image_strips(first_column, width, rows)
        return (strips + self._mark_strips(first_column, width))[:height]

    def _image_strips(self, first_column: int, width: int, rows: int) -> list[Strip]:
        if rows == 0:
            return []
        levels = self._levels(first_column, width, 2 * rows)  # (2 * rows, width), row 0 = highest band
        index = (levels[0::2] * LEVELS + levels[1::2]).tolist()
        cells = self._cells
        return [Strip([cells[i] for i in line], width).simplify() for line in index]

    def _levels(self, first_column: int, width: int, pixels: int) -> np.ndarray:
        """Colour level of each pixel, shape (pixels, width), integers in [0, LEVELS)."""
        fpc, capacity = self.frames_per_column, self._store.shape[0]
        frames = first_column * fpc + np.arange(width * fpc)
        known = (frames >= 0) & (frames > self._shown - capacity) & (frames < self._shown)
        values = np.where(known[:, None], self._store[frames % capacity], self.floor)  # (width * fpc, n_mels)
        columns = values.reshape(width, fpc, self.n_mels).mean(axis=1)  # (width, n_mels)
        image = columns @ self._band_weights(pixels).T  # (width, pixels), low bands first
        scaled = (image[:, ::-1].T - self.floor) / (self.ceiling - self.floor)
        return np.clip(scaled * LEVELS, 0, LEVELS - 1).astype(np.int64)

    def _band_weights(self, pixels: int) -> np.ndarray:
        """Averaging matrix from mel bands to pixel rows, shape (pixels, n_mels)."""
        if self._weights is None or self._weights[0] != pixels:
            weights = np.zeros((pixels, self.n_mels), np.float32)
            for p in range(pixels):
                lo = p * self.n_mels // pixels
                hi = max(lo + 1, (p + 1) * self.n_mels // pixels)
                weights[p, lo:hi] = 1.0 / (hi - lo)
            self._weights = (pixels, weights)
        return self._weights[1]

    def _mark_strips(self, first_column: int, width: int) -> list[Strip]:
        char_style = self.get_component_rich_style("spectrogram--char")
        done_style = self.get_component_rich_style("spectrogram--utterance")
        partial_style = self.get_component_rich_style("spectrogram--partial")
        visible = range(first_column, first_column + width)
        chars = [" "] * width
        for mark in self._chars:
            column = mark.frame // self.frames_per_column
            if column in visible and mark.frame < self._shown:
                chars[column - first_column] = mark.char
        spans = [(" ", char_style)] * width
        for start, end in self._spans:
            self._draw_span(spans, start, end, first_column, self.DONE_GLYPHS, done_style)
        if self._partial_frame is not None:
            self._draw_span(spans, self._partial_frame, self._shown, first_column, self.PARTIAL_GLYPHS, partial_style)
        return [Strip([RichSegment("".join(chars), char_style)], width),
                Strip([RichSegment(c, s) for c, s in spans], width).simplify()]

    def _draw_span(self, cells: list, start: int, end: int, first_column: int, glyphs: str, style: Style) -> None:
        """Mark frames [start, end) (only those shown) in ``cells`` with (body, left, right) ``glyphs``."""
        body, left, right = glyphs
        a = start // self.frames_per_column - first_column
        b = (min(end, self._shown) - 1) // self.frames_per_column - first_column
        for x in range(max(0, a), min(len(cells) - 1, b) + 1):
            cells[x] = (left if x == a else right if x == b else body, style)


class Transcript(Vertical):
    """Committed utterances with their times (scrolling, newest at the bottom) and,
    under them, the utterance in progress in a different style."""

    DEFAULT_CSS = """
    Transcript > RichLog { height: 1fr; background: transparent; overflow-y: auto; scrollbar-size-vertical: 1; }
    Transcript > #partial { height: auto; min-height: 1; color: $text-muted; text-style: italic; }
    """
    MAX_LINES = 2000  # lines kept on screen (saving uses every utterance)

    def compose(self):
        log = RichLog(id="lines", max_lines=self.MAX_LINES, wrap=True, min_width=20, auto_scroll=True)
        log.can_focus = False
        yield log
        yield Static("", id="partial", markup=False)

    def add(self, segment: Segment) -> None:
        """Append a committed utterance: ``m:ss.s  text  → phrase``."""
        line = Text.assemble((f"{format_clock(segment.start_s):>7}  ", "dim"), segment.text)
        phrase = segment.phrase
        if phrase is not None and phrase.phrase is not None:
            line.append(f"  \u2192 {phrase.phrase} {phrase.confidence:.0%}", "bold")
        self.query_one(RichLog).write(line)

    partial = ""  # the text in progress, as shown

    def set_partial(self, text: str) -> None:
        if text != self.partial:
            self.partial = text
            self.query_one("#partial", Static).update(f"{'':>7}  {text}\u2026" if text else "")

    def clear(self) -> None:
        self.query_one(RichLog).clear()
        self.set_partial("")

    @property
    def lines(self) -> list[str]:
        """The committed lines as shown (for tests and debugging)."""
        return [strip.text.rstrip() for strip in self.query_one(RichLog).lines]


class PhrasePanel(Static):
    """The last utterance's top phrases with confidence bars, or "none", under the
    active phrase set's name (the border title)."""

    DEFAULT_CSS = """
    PhrasePanel { width: 44; height: 100%; padding: 0 1; }
    """
    TOP = 5  # phrases listed
    BLOCKS = " \u258f\u258e\u258d\u258c\u258b\u258a\u2589\u2588"  # eighths of a cell

    def __init__(self, *, id: str | None = None):
        super().__init__("", id=id)
        self.result = None  # the PhraseResult shown, or None before the first utterance
        self.text = ""  # what the panel shows, as plain text

    def set_phrase_set(self, name: str | None) -> None:
        """Show the panel for phrase set ``name`` (empty); hide it for None."""
        self.display = name is not None
        self.border_title = f"Phrases: {name}" if name else "Phrases"
        self.show(None)

    def show(self, result) -> None:
        """Draw a ``PhraseResult`` (None: waiting for an utterance)."""
        self.result = result
        content = self._render_result(result)
        self.text = content.plain
        self.update(content)

    def on_resize(self) -> None:
        self.show(self.result)

    def _render_result(self, result) -> Text:
        if result is None:
            return Text("say a phrase\u2026", style="dim")
        best = result.phrase if result.phrase is not None else "none"
        text = Text.assemble(("\u2192 ", "bold"), (best, "bold"), (f"  {result.confidence:.0%}\n\n", "dim"))
        width = max(4, self.content_size.width - 24) if self.content_size.width else 16
        for phrase, p in result.top[: self.TOP]:
            name = phrase if phrase is not None else "none"
            text.append(f"{name[:16]:<16} ", "bold" if name == best else "")
            text.append(self._bar(p, width), "green" if name == best else "blue")
            text.append(f" {p:4.0%}\n")
        return text

    @classmethod
    def _bar(cls, fraction: float, width: int) -> str:
        """A bar of ``width`` cells filled to ``fraction`` in eighths of a cell."""
        eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
        full, rest = divmod(eighths, 8)
        return (cls.BLOCKS[-1] * full + (cls.BLOCKS[rest] if rest else "")).ljust(width)


class StatusBar(Widget):
    """One line: source and rate, state, input level with clipping warning,
    latency, real-time factor and overruns."""

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """
    METER_CELLS = 10
    METER_FLOOR_DB = -60.0
    CLIP_HOLD = 10  # updates the clipping warning stays up (1 s of 100 ms chunks)
    RECENT = 50  # latencies in the displayed median

    source = reactive("no input")
    state = reactive("starting")
    level_db = reactive(-120.0)
    clip_hold = reactive(0)  # updates left to show the clipping warning
    latency_ms = reactive(None)
    rtf = reactive(None)
    overruns = reactive(0)

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.latencies: deque[float] = deque(maxlen=4096)  # seconds, newest last

    def show(self, update: LiveUpdate) -> None:
        """Take level, real-time factor and overruns from an update."""
        self.level_db = update.level_db
        self.clip_hold = self.CLIP_HOLD if update.peak >= CLIP_LEVEL else max(0, self.clip_hold - 1)
        if update.rtf is not None:
            self.rtf = update.rtf if self.rtf is None else 0.9 * self.rtf + 0.1 * update.rtf
        self.overruns = update.overruns

    def add_latency(self, seconds: float) -> None:
        """Record one arrival-to-screen latency; the bar shows the recent median."""
        self.latencies.append(seconds)
        recent = list(self.latencies)[-self.RECENT :]
        self.latency_ms = 1000 * statistics.median(recent)

    def render(self) -> Text:
        filled = round(self.METER_CELLS * min(1.0, max(0.0, 1 - self.level_db / self.METER_FLOOR_DB)))
        meter = "\u2588" * filled + "\u2591" * (self.METER_CELLS - filled)
        parts = [(self.source, "bold"), ("  \u2502  ", "dim"), (self.state, "italic"), ("  \u2502  level ", "dim"),
                 (meter, "green" if not self.clip_hold else "red"),
                 (f" {max(self.level_db, -99):4.0f} dB", ""),
                 (" CLIP" if self.clip_hold else "", "bold red"),
                 ("  \u2502  latency ", "dim"), ("\u2013" if self.latency_ms is None else f"{self.latency_ms:.0f} ms", ""),
                 ("  \u2502  RTF ", "dim"), ("\u2013" if self.rtf is None else f"{self.rtf:.3f}", ""),
                 ("  \u2502  overruns ", "dim"), (str(self.overruns), "bold red" if self.overruns else "")]
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
