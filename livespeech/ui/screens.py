"""Modal screens of the live view: help, audio errors, device and phrase-set pickers.

Each returns its choice with ``dismiss``; the app decides what to do with it.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from livespeech.capture import InputDevice
from livespeech.phrases import NO_PHRASES

HELP = """\
[b]livespeech[/b]: live speech recognition

[b]Spectrogram[/b]  the last seconds of log-mel energy, newest on the right;
under it the characters as the model emits them, and each utterance
([green]━[/] when committed, [yellow]─[/] while in progress).
[b]Transcript[/b]   committed utterances with their start times; the
utterance in progress below them, in italics. An utterance ends at a pause.
[b]Phrases[/b]      the last utterance's most likely phrases of the active set.
[b]Status[/b]       input, state, level (CLIP when the input clips), latency from
a sample's arrival to its text on screen, real-time factor, lost audio.

[b]space[/b] pause/resume   [b]c[/b] clear   [b]s[/b] save (txt and json)
[b]p[/b] phrase set   [b]d[/b] input device   [b]?[/b] this help   [b]q[/b] quit\
"""


class _Modal(ModalScreen):
    """A centred box; Escape closes it with None."""

    DEFAULT_CSS = """
    _Modal { align: center middle; }
    _Modal > Vertical { width: 80; max-width: 95%; height: auto; max-height: 90%;
                        border: thick $primary; background: $surface; padding: 1 2; }
    _Modal .hint { color: $text-muted; margin-top: 1; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Close")]


class HelpScreen(_Modal):
    """What the panels show and the keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss(None)", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(HELP)
            yield Static("Esc closes this help.", classes="hint")


class ErrorScreen(_Modal):
    """An audio problem: the message, and what the user can do (returns "device",
    "quit" or None to keep reading the transcript)."""

    DEFAULT_CSS = """
    ErrorScreen > Vertical { border: thick $error; }
    ErrorScreen #title { color: $error; text-style: bold; }
    """
    BINDINGS = [Binding("escape", "dismiss(None)", "Close"), Binding("d", "dismiss('device')", "Device"),
                Binding("q", "dismiss('quit')", "Quit")]

    def __init__(self, title: str, message: str, offer_device: bool = True):
        super().__init__()
        self.title_text, self.message, self.offer_device = title, message, offer_device

    def compose(self) -> ComposeResult:
        hint = ("d choose another input device  \u00b7  " if self.offer_device else "") + "Esc keep reading  \u00b7  q quit"
        with Vertical():
            yield Static(self.title_text, id="title", markup=False)
            yield Static(self.message, id="message", markup=False)
            yield Static(hint, classes="hint")


class DevicePicker(_Modal):
    """Choose an input device (returns the :class:`InputDevice`, or None)."""

    def __init__(self, devices: list[InputDevice], current: int | None = None):
        super().__init__()
        self.devices, self.current = devices, current

    def compose(self) -> ComposeResult:
        options = [Option(self._describe(d), id=str(i)) for i, d in enumerate(self.devices)]
        with Vertical():
            yield Static("[b]Input device[/b]")
            yield OptionList(*options, id="devices")
            yield Static("Enter choose  \u00b7  Esc cancel", classes="hint")

    def _describe(self, device: InputDevice) -> str:
        marks = ("  (default)" if device.is_default else "") + ("  \u2190 in use" if device.index == self.current else "")
        return f"{device.index:>3}  {device.name}  [{device.hostapi}, {device.default_rate:.0f} Hz]{marks}"

    @on(OptionList.OptionSelected, "#devices")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.devices[int(event.option.id)])


class PhrasePicker(_Modal):
    """Choose a phrase set: a bundled one, "none", or a typed name or file path
    (returns the spec string, or None)."""

    def __init__(self, names: list[str], current: str | None = None):
        super().__init__()
        self.names, self.current = [*names, NO_PHRASES], current

    def compose(self) -> ComposeResult:
        options = [Option(name + ("  \u2190 active" if name == (self.current or NO_PHRASES) else ""), id=name)
                   for name in self.names]
        with Vertical():
            yield Static("[b]Phrase set[/b]")
            yield OptionList(*options, id="sets")
            yield Input(placeholder="or type a phrase-set name or a file path, then Enter", id="path")
            yield Static("Enter choose  \u00b7  Esc cancel", classes="hint")

    @on(OptionList.OptionSelected, "#sets")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    @on(Input.Submitted, "#path")
    def _typed(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())
