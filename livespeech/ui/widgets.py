"""Widgets of the live view: spectrogram, transcript, phrase panel and status bar.

They only draw what :class:`~livespeech.worker.LiveUpdate` events bring; none of them
touches audio or the recognizer.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from functools import lru_cache

import numpy as np
from rich.color import Color
from rich.segment import Segment as RichSegment
from rich.style import Style
from rich.text import Text
from textual.containers import Vertical
from textual.filter import ANSIToTruecolor, LineFilter
from textual.reactive import reactive
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import RichLog, Static

from livespeech.levels import SILENCE_DB, meter_cells
from livespeech.output import format_clock
from livespeech.worker import CLIP_LEVEL, LiveUpdate, Segment

# Colour map anchors (inferno-like): dark for quiet, yellow for loud.
COLORMAP = ((0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
            (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164))
LEVELS = 32  # colour steps
UPPER_HALF = "\u2580"  # ▀: foreground paints the upper pixel, background the lower
RUN_KEY = 1 << 16  # run keys: cell style * RUN_KEY + run length (lengths stay far below)
MAX_RUNS = 65_536  # run segments kept for reuse (about as many as a wide, busy image needs)


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
        self._styles = _cell_styles()  # index top * LEVELS + bottom
        self._runs: dict[int, RichSegment] = {}  # style * RUN_KEY + length: segment (see _add_runs)
        self._strips: list[Strip] | None = None
        self._weights: tuple[int, np.ndarray] | None = None
        self._styles_of_marks: tuple[Style, Style, Style] | None = None

    def on_mount(self) -> None:
        self.set_interval(self.TICK_S, self._tick)

    def on_resize(self) -> None:
        self._strips = None

    def get_line_filters(self) -> list[LineFilter]:
        """The app's line filters less ANSI-to-truecolor: every colour drawn here is
        truecolor already (and none is dim), so that filter would only copy each of the
        image's segments on every frame."""
        return [f for f in super().get_line_filters() if not isinstance(f, ANSIToTruecolor)]

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
        """Redraw the content; the border and its title stay as they are."""
        self._strips = None
        self.refresh(self.size.region)

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
        """One strip per cell row with a segment per run of equal cells (what
        ``simplify`` would leave), the runs found with numpy and their segments reused
        from frame to frame, so a frame costs little more than a list lookup per run."""
        if rows == 0:
            return []
        levels = self._levels(first_column, width, 2 * rows)  # (2 * rows, width), row 0 = highest band
        index = levels[0::2] * LEVELS + levels[1::2]  # (rows, width): cell style
        starts = np.ones(index.shape, bool)
        starts[:, 1:] = index[:, 1:] != index[:, :-1]
        at = np.flatnonzero(starts)  # run starts in the flattened image; every row starts one
        lengths = np.diff(at, append=index.size)
        keys = (index.ravel()[at] * RUN_KEY + lengths).tolist()
        ends = np.cumsum(np.count_nonzero(starts, axis=1)).tolist()  # runs up to the end of each row
        runs = self._runs
        try:
            segments = [runs[key] for key in keys]
        except KeyError:  # runs not seen before: make them once
            self._add_runs(keys)
            segments = [runs[key] for key in keys]
        return [Strip(segments[a:b], width) for a, b in zip([0, *ends], ends)]

    def _add_runs(self, keys: list[int]) -> None:
        """Make the missing run segments: style ``key // RUN_KEY`` repeated ``key % RUN_KEY`` times."""
        if len(self._runs) + len(keys) > MAX_RUNS:
            self._runs.clear()
        for key in keys:
            if key not in self._runs:
                style, length = divmod(key, RUN_KEY)
                self._runs[key] = RichSegment(UPPER_HALF * length, self._styles[style])

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
        """The characters row and the utterances row. Marks are kept oldest first, so
        they are read newest first down to the first one out of view; where two share
        a cell, the newer one shows."""
        char_style, done_style, partial_style = self._mark_styles()
        fpc, first_frame = self.frames_per_column, first_column * self.frames_per_column
        chars = [" "] * width
        for mark in reversed(self._chars):
            if mark.frame < first_frame:
                break
            x = mark.frame // fpc - first_column
            if mark.frame < self._shown and x < width and chars[x] == " ":
                chars[x] = mark.char
        spans = [" "] * width
        styles: list[Style | None] = [None] * width
        if self._partial_frame is not None:
            self._draw_span(spans, styles, self._partial_frame, self._shown, first_column, self.PARTIAL_GLYPHS, partial_style)
        for start, end in reversed(self._spans):
            if end <= first_frame:
                break
            self._draw_span(spans, styles, start, end, first_column, self.DONE_GLYPHS, done_style)
        return [Strip([RichSegment("".join(chars), char_style)], width), _styled_cells(spans, styles, char_style, width)]

    def _mark_styles(self) -> tuple[Style, Style, Style]:
        """The character, utterance and partial styles (kept until the styles change)."""
        if self._styles_of_marks is None:
            self._styles_of_marks = tuple(self.get_component_rich_style(name) for name in
                                          ("spectrogram--char", "spectrogram--utterance", "spectrogram--partial"))
        return self._styles_of_marks

    def notify_style_update(self) -> None:
        """The CSS or theme changed: forget the mark styles and redraw."""
        self._styles_of_marks = None
        self._strips = None
        super().notify_style_update()

    def _draw_span(self, cells: list[str], styles: list, start: int, end: int, first_column: int, glyphs: str,
                   style: Style) -> None:
        """Mark frames [start, end) (only those shown) with (body, left, right) ``glyphs``
        in the ``cells`` not marked yet (style None)."""
        body, left, right = glyphs
        a = start // self.frames_per_column - first_column
        b = (min(end, self._shown) - 1) // self.frames_per_column - first_column
        for x in range(max(0, a), min(len(cells) - 1, b) + 1):
            if styles[x] is None:
                cells[x], styles[x] = (left if x == a else right if x == b else body), style


@lru_cache(maxsize=1)
def _cell_styles() -> list[Style]:
    """The style of each spectrogram cell, indexed ``top * LEVELS + bottom``: the
    upper pixel's colour on the lower pixel's."""
    palette = _palette()
    return [Style(color=top, bgcolor=bottom) for top in palette for bottom in palette]


def _styled_cells(cells: list[str], styles: list, default: Style, width: int) -> Strip:
    """A strip of one-cell texts with their styles (None: ``default``), a segment per run of one style."""
    segments, start = [], 0
    for x in range(1, width + 1):
        if x == width or styles[x] is not styles[start]:
            segments.append(RichSegment("".join(cells[start:x]), styles[start] or default))
            start = x
    return Strip(segments, width)


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
        """Show the utterance in progress (the screen's layout is redone only when it
        wraps onto more or fewer lines)."""
        if text == self.partial:
            return
        self.partial = text
        partial = self.query_one("#partial", Static)
        partial.update(f"{'':>7}  {text}\u2026" if text else "", layout=False)
        width = partial.content_size.width
        height = max(1, partial.get_content_height(self.size, self.app.size, width)) if width else 0  # min-height: 1
        if height != partial.content_size.height:
            partial.refresh(layout=True)

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
        self.update(content, layout=False)  # its size is set by the CSS

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
    latency, real-time factor, overruns and, when there are any, dropped ``--events``
    lines.

    The per-chunk values (level, clipping, latency, RTF, overruns) come with
    :meth:`show`, which redraws the bar only when what it shows has changed.
    """

    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $text; padding: 0 1; }
    """
    METER_CELLS = 10
    CLIP_HOLD = 10  # updates the clipping warning stays up (1 s of 100 ms chunks)
    RECENT = 50  # latencies in the displayed median

    source = reactive("no input")
    state = reactive("starting")
    events_dropped = reactive(0)  # --events lines lost to a stalled reader

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.level_db = SILENCE_DB
        self.clip_hold = 0  # updates left to show the clipping warning
        self.latency_ms: float | None = None  # median of the recent latencies
        self.rtf: float | None = None  # smoothed real-time factor
        self.overruns = 0
        self._latencies: deque[float] = deque(maxlen=self.RECENT)  # seconds, newest last
        self._drawn: tuple = ()  # the per-chunk fields as drawn

    def show(self, update: LiveUpdate) -> None:
        """Take level, real-time factor and overruns from an update (and show the
        latencies recorded since the last one)."""
        self.level_db = update.level_db
        self.clip_hold = self.CLIP_HOLD if update.peak >= CLIP_LEVEL else max(0, self.clip_hold - 1)
        if update.rtf is not None:
            self.rtf = update.rtf if self.rtf is None else 0.9 * self.rtf + 0.1 * update.rtf
        self.overruns = update.overruns
        if self._chunk_fields() != self._drawn:
            self.refresh()

    def add_latency(self, seconds: float) -> None:
        """Record one arrival-to-screen latency: :attr:`latency_ms` becomes the recent
        median, drawn with the next update (no redraw of its own: it comes right
        after one)."""
        self._latencies.append(seconds)
        self.latency_ms = 1000 * statistics.median(self._latencies)

    def _chunk_fields(self) -> tuple:
        """(meter, level, clipping, latency, RTF, overruns) as the bar shows them."""
        filled = meter_cells(self.level_db, self.METER_CELLS)
        return ("\u2588" * filled + "\u2591" * (self.METER_CELLS - filled), f" {max(self.level_db, -99):4.0f} dB",
                bool(self.clip_hold), "\u2013" if self.latency_ms is None else f"{self.latency_ms:.0f} ms",
                "\u2013" if self.rtf is None else f"{self.rtf:.3f}", self.overruns)

    def render(self) -> Text:
        """The bar's line."""
        self._drawn = self._chunk_fields()
        meter, level, clipping, latency, rtf, overruns = self._drawn
        parts = [(self.source, "bold"), ("  \u2502  ", "dim"), (self.state, "italic"), ("  \u2502  level ", "dim"),
                 (meter, "green" if not clipping else "red"), (level, ""), (" CLIP" if clipping else "", "bold red"),
                 ("  \u2502  latency ", "dim"), (latency, ""), ("  \u2502  RTF ", "dim"), (rtf, ""),
                 ("  \u2502  overruns ", "dim"), (str(overruns), "bold red" if overruns else "")]
        if self.events_dropped:
            parts += [("  \u2502  events dropped ", "dim"), (str(self.events_dropped), "bold red")]
        return Text.assemble(*parts, no_wrap=True, overflow="ellipsis")
