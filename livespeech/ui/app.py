"""The live view: ``livespeech [--model M] [--phrases P] [--device ID|NAME] [--input FILE]``.

    Spectrogram   (scrolling log-mel, characters and utterances marked under it)
    Transcript    (committed utterances, partial text)  |  Phrases (top phrases, bars)
    Status bar    (input, state, level, latency, RTF, overruns)
    Footer        (keys)

The app only draws: audio comes from a :class:`~livespeech.capture.Source`, a
:class:`~livespeech.worker.LiveWorker` thread recognises it and posts its events
(Textual messages) with ``post_message``.  Everything the app needs from outside
(sources, devices, phrase sets) comes through a :class:`~livespeech.ui.backend.Backend`,
so tests run it with fakes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial, wraps
from pathlib import Path
from typing import Callable

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Footer

from livespeech.audio import AudioError
from livespeech.capture import CaptureError, InputDevice, MicSource, PortAudioMissing, Source, open_source
from livespeech.eventlog import EventLog
from livespeech.features import SAMPLE_RATE
from livespeech.output import save_transcript
from livespeech.ui.backend import Backend, PhraseModel, load_phrase_model
from livespeech.ui.screens import DevicePicker, ErrorScreen, HelpScreen, PhrasePicker
from livespeech.ui.widgets import PhrasePanel, Spectrogram, StatusBar, Transcript
from livespeech.worker import (CHUNK_MS, LiveUpdate, LiveWorker, Position, RecognizerError, Segment, SourceEnded,
                               SourceFailed, WorkerFailed)


def _while_running(handler: Callable) -> Callable:
    """Skip a worker event (or its follow-up) that arrives once the app has begun
    shutting down: its screen and widgets are gone; the worker is stopped at unmount."""

    @wraps(handler)
    def guarded(app: App, arg) -> None:
        if app.is_running:
            handler(app, arg)

    return guarded


@dataclass(frozen=True)
class LiveOptions:
    """Settings of a live session.

    Attributes:
        chunk_ms: worker chunk, milliseconds.
        save_dir: where ``s`` writes transcripts.
        model_name: shown in saved transcripts.
        n_mels: mel bands per frame (spectrogram height in data).
        phrases: the phrase set active at start, or None.
        events: a file or pipe that gets one JSON line per utterance, or None.
    """

    chunk_ms: int = CHUNK_MS
    save_dir: Path = field(default_factory=Path.cwd)
    model_name: str = ""
    n_mels: int = 80
    phrases: PhraseModel | None = None
    events: Path | None = None


class LiveApp(App):
    """Live speech recognition in the terminal.

    Args:
        recognizer: a :class:`~livespeech.recognizer.Recognizer` (or a stand-in with its interface).
        backend: sources, devices and phrase sets.
        options: session settings.
    """

    CSS_PATH = Path(__file__).with_name("livespeech.tcss")  # absolute: subclasses live elsewhere
    TITLE = "livespeech"
    BINDINGS = [
        Binding("space", "pause", "Pause/resume"),
        Binding("c", "clear", "Clear"),
        Binding("s", "save", "Save"),
        Binding("p", "phrases", "Phrases"),
        Binding("d", "device", "Device"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, recognizer, backend: Backend, options: LiveOptions = LiveOptions()):
        super().__init__()
        self.recognizer, self.backend, self.options = recognizer, backend, options
        self.phrase_model = options.phrases
        self.source: Source | None = None
        self.worker: LiveWorker | None = None
        self.segments: list[Segment] = []  # every committed utterance since the last clear
        self._events = EventLog(options.events) if options.events else None
        self._events_error_shown = False
        self._position = Position()

    def compose(self) -> ComposeResult:
        yield Spectrogram(self.options.n_mels, self.recognizer.stack, id="spectrogram")
        with Horizontal(id="main"):
            yield Transcript(id="transcript")
            yield PhrasePanel(id="phrases")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(Spectrogram).border_title = "log-mel spectrogram"
        self.query_one(Transcript).border_title = "Transcript"
        self.query_one(PhrasePanel).set_phrase_set(self.phrase_model.name if self.phrase_model else None)
        self._start(self.backend.open_source)

    def on_unmount(self) -> None:
        self._stop_audio(flush=False)
        if self._events is not None:
            self._events.close()

    # audio -------------------------------------------------------------------------

    def _start(self, open_source: Callable[[], Source]) -> None:
        """Stop the current source and worker, then open and start a new pair."""
        origin = self._stop_audio()
        status = self.query_one(StatusBar)
        try:
            source = open_source()
            source.start()
        except (CaptureError, AudioError) as error:
            status.source, status.state = "no input", "stopped"
            self._show_error("No audio input", str(error), offer_device=not isinstance(error, (PortAudioMissing, AudioError)))
            return
        scorer = self.phrase_model.scorer if self.phrase_model else None
        self.source = source
        self.worker = LiveWorker(source, self.recognizer, self._post_event, self.options.chunk_ms, scorer, origin)
        self.worker.start()
        resampled = f" \u2192 {SAMPLE_RATE // 1000} kHz" if source.sample_rate != SAMPLE_RATE else ""
        status.source = f"{source.label} \u00b7 {source.sample_rate} Hz{resampled}"
        status.state = self._running_state()

    def _running_state(self) -> str:
        return "listening" if isinstance(self.source, MicSource) else "playing"

    def _post_event(self, event: Message) -> None:
        """The worker's sink (its thread): queue committed utterances for the event log
        (never blocking), hand the event to the app's queue."""
        if self._events is not None and isinstance(event, LiveUpdate):
            for segment in event.committed:
                self._events.put(segment)
        self.post_message(event)

    def _stop_audio(self, flush: bool = True) -> Position:
        """Stop source and worker (bounded time); returns the session position reached.
        With ``flush`` the utterance in progress is committed first."""
        source, worker, self.source, self.worker = self.source, self.worker, None, None
        if worker is not None:  # first: it must not see the source stop and report a failure
            worker.stop(timeout=0.8, flush=flush)
            self._position = worker.position
        if source is not None:
            source.stop()
        return self._position

    # worker events -----------------------------------------------------------------

    @on(LiveUpdate)
    @_while_running
    def _recognized(self, update: LiveUpdate) -> None:
        self.query_one(Spectrogram).push(update)
        transcript = self.query_one(Transcript)
        for segment in update.committed:
            self.segments.append(segment)
            transcript.add(segment)
            if segment.phrase is not None:
                self.query_one(PhrasePanel).show(segment.phrase)
        transcript.set_partial(update.partial)
        status = self.query_one(StatusBar)
        status.show(update)
        if self._events is not None:
            self._events_state(status)
        if update.arrival is not None:
            self.call_after_refresh(self._on_screen, update.arrival)

    def _events_state(self, status: StatusBar) -> None:
        """Show the --events lines dropped so far, and once why the file cannot be written."""
        status.events_dropped = self._events.dropped
        if self._events.error is not None and not self._events_error_shown:
            self._events_error_shown = True
            self.notify(f"Cannot write events: {self._events.error}", severity="error", timeout=8)

    @_while_running
    def _on_screen(self, arrival: float) -> None:
        self.query_one(StatusBar).add_latency(time.perf_counter() - arrival)

    @on(SourceEnded)
    @_while_running
    def _ended(self, message: SourceEnded) -> None:
        self.query_one(StatusBar).state = "end of input (q quits)"
        self.notify("End of the input file: the results stay on screen until you quit.", timeout=6)

    @on(RecognizerError)
    @_while_running
    def _recognition_error(self, message: RecognizerError) -> None:
        """A chunk could not be recognised: say so once per run of failures; the
        utterance in progress is gone and listening goes on."""
        self.query_one(Transcript).set_partial("")
        if message.in_a_row == 1:
            self.notify(f"Recognition error (its chunk of audio is skipped): {message.message}", severity="error", timeout=8)

    @on(SourceFailed)
    @_while_running
    def _source_failed(self, message: SourceFailed) -> None:
        """The input stopped: the user may choose another device."""
        self._stopped("input lost", "Audio input stopped", message.message, offer_device=True)

    @on(WorkerFailed)
    @_while_running
    def _worker_failed(self, message: WorkerFailed) -> None:
        self._stopped("stopped", "Recognition stopped", f"the recognizer stopped: {message.message}", offer_device=False)

    def _stopped(self, state: str, title: str, message: str, offer_device: bool) -> None:
        self._stop_audio()
        self.query_one(StatusBar).state = state
        self._show_error(title, f"{message}\nThe transcript so far is kept.", offer_device)

    def _show_error(self, title: str, message: str, offer_device: bool) -> None:
        self.push_screen(ErrorScreen(title, message, offer_device), self._error_closed)

    def _error_closed(self, choice: str | None) -> None:
        if choice == "device":
            self.action_device()
        elif choice == "quit":
            self._quit()

    # keys --------------------------------------------------------------------------

    def action_pause(self) -> None:
        """Pause or resume listening (a pause commits the utterance in progress)."""
        if self.source is None or self.source.ended:
            self.bell()
            return
        status = self.query_one(StatusBar)
        if self.source.paused:
            self.source.resume()
            status.state = self._running_state()
        else:
            self.source.pause()
            status.state = "paused (space resumes)"

    def action_clear(self) -> None:
        """Forget the transcript and the phrase result (audio keeps flowing)."""
        self.segments.clear()
        self.query_one(Transcript).clear()
        self.query_one(PhrasePanel).show(None)
        self.query_one(Spectrogram).clear_marks()

    def action_save(self) -> None:
        """Write the committed transcript as txt and json into the save folder."""
        if not self.segments:
            self.notify("Nothing to save yet: no utterance has ended.", severity="warning")
            return
        info = {"source": self.query_one(StatusBar).source, "model": self.options.model_name,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            txt, jsn = save_transcript(self.segments, self.options.save_dir, info)
        except OSError as error:
            self.notify(f"Cannot save the transcript: {error}", severity="error")
            return
        self.notify(f"Saved {txt} and {jsn.name}")

    def action_phrases(self) -> None:
        """Choose the phrase set."""
        current = self.phrase_model.name if self.phrase_model else None
        self.push_screen(PhrasePicker(self.backend.phrase_sets(), current), self._phrases_chosen)

    def _phrases_chosen(self, spec: str | None) -> None:
        if spec is None:
            return
        try:
            model = self.backend.load_phrases(spec)
        except ValueError as error:  # PhraseSetError: unknown set, unreadable file
            self.notify(f"Phrase set {spec!r}: {error}", severity="error")
            return
        self.phrase_model = model
        if self.worker is not None:
            self.worker.scorer = model.scorer if model else None
        self.query_one(PhrasePanel).set_phrase_set(model.name if model else None)

    def action_device(self) -> None:
        """Choose the input device."""
        try:
            devices = self.backend.list_devices()
        except CaptureError as error:
            self._show_error("No audio input", str(error), offer_device=False)
            return
        if not devices:
            self.notify("No audio input device found.", severity="error")
            return
        current = self.source.device.index if isinstance(self.source, MicSource) else None
        self.push_screen(DevicePicker(devices, current), self._device_chosen)

    def _device_chosen(self, device: InputDevice | None) -> None:
        if device is not None:
            self._start(partial(self.backend.open_device, device))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    async def action_quit(self) -> None:
        """Stop the stream and the worker, then leave (well within a second)."""
        self._quit()

    def _quit(self) -> None:
        self._stop_audio(flush=False)
        self.exit()


def build_app(bundle, phrases: str | None, open_first: Callable[[], Source], chunk_ms: int = CHUNK_MS,
              endpoint_s: float = 0.6, save_dir: Path | None = None, events: Path | None = None,
              word_decoder=None) -> LiveApp:
    """The live app for a loaded model (not running yet).

    Args:
        bundle: the loaded model.
        phrases: phrase-set spec for the phrase panel ("none" hides it).
        open_first: opens the first source (see :attr:`Backend.open_source`).
        chunk_ms: recognition chunk, milliseconds.
        endpoint_s: pause that ends an utterance, seconds.
        save_dir: where ``s`` saves transcripts (default: the current folder).
        events: file or pipe for one JSON line per utterance (``--events``).
        word_decoder: beam search over words for the transcript panel (None: the
            greedy characters; the spectrogram shows those either way).
    Raises:
        PhraseSetError (a ValueError): a bad phrase set, or one the model cannot spell.
    """
    from livespeech.recognizer import EndpointConfig, Recognizer

    load = partial(load_phrase_model, vocabulary=bundle.vocabulary, model_config=bundle.config)
    backend = Backend(open_source=open_first, load_phrases=load)
    options = LiveOptions(chunk_ms, save_dir or Path.cwd(), bundle.name, bundle.features.n_mels, load(phrases), events)
    return LiveApp(Recognizer(bundle, EndpointConfig(endpoint_s=endpoint_s), word_decoder), backend, options)


def run_live(bundle, phrases: str | None, device: str | None, input_path: str | None,
             chunk_ms: int = CHUNK_MS, endpoint_s: float = 0.6, events: Path | None = None, word_decoder=None) -> int:
    """Run the live view in the terminal until the user quits; returns the exit status.

    Args:
        bundle: the loaded model.
        phrases: phrase-set spec for the phrase panel ("none" hides it).
        device: input device index or name (None: the default input).
        input_path: a file to play in real time instead of the microphone.
        chunk_ms: recognition chunk, milliseconds.
        endpoint_s: pause that ends an utterance, seconds.
        events: file or pipe for one JSON line per utterance (``--events``).
        word_decoder: beam search over words for the transcript (None: greedy characters).
    Raises:
        PhraseSetError (a ValueError): a bad phrase set (checked before the screen opens).
    """
    app = build_app(bundle, phrases, partial(open_source, input_path, device), chunk_ms, endpoint_s, events=events,
                    word_decoder=word_decoder)
    app.run()
    return app.return_code or 0
