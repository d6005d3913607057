"""The live app driven like a person would (Textual Pilot) with a deterministic fake
recognizer: panels, keys, saving, phrase sets, devices, errors, quitting, a UI stall;
and snapshot tests of the main, error and help screens."""

import dataclasses
import json
import os
import time

import numpy as np
import pytest

from livespeech import eventlog
from livespeech.capture import FileSource, InputDevice, NoInputDevice, PortAudioMissing
from livespeech.ui.app import LiveApp, LiveOptions
from livespeech.ui.backend import Backend, PhraseModel
from livespeech.ui.screens import DevicePicker, ErrorScreen, HelpScreen, PhrasePicker
from livespeech.ui.widgets import PhrasePanel, Spectrogram, StatusBar, Transcript
from livespeech.worker import MAX_ERRORS_IN_A_ROW, LiveUpdate, LiveWorker
from tests.livefakes import FailingRecognizer, FakeRecognizer, FakeScorer, ScriptedSource, encode

SIZE = (120, 40)
COMMANDS = ("lights on", "lights off", "stop")
DEVICES = [InputDevice(0, "Built-in Microphone", "ALSA", 2, 48000.0, True), InputDevice(3, "USB Headset", "ALSA", 1, 44100.0)]


class Fixture(LiveApp):
    """The app with recorded notifications and fakes for everything outside."""

    def __init__(self, tmp_path, source=None, open_error=None, phrases="commands", devices=DEVICES, events=None):
        self.initial = source or ScriptedSource()
        self.opened: list[ScriptedSource] = []
        self.notes: list[tuple[str, str]] = []

        def open_source():
            if open_error is not None:
                raise open_error
            return self.initial

        def open_device(device):
            self.opened.append(ScriptedSource(label=device.name))
            return self.opened[-1]

        backend = Backend(open_source=open_source, load_phrases=self.load_phrases, list_devices=lambda: devices,
                          open_device=open_device, phrase_sets=lambda: ["commands", "digits"])
        options = LiveOptions(save_dir=tmp_path, model_name="fake", phrases=self.load_phrases(phrases), events=events)
        super().__init__(FakeRecognizer(), backend, options)

    @staticmethod
    def load_phrases(spec):
        if spec == "none":
            return None
        if spec not in ("commands", "digits"):
            raise ValueError(f"{spec}: no such file")
        return PhraseModel(spec, FakeScorer(COMMANDS if spec == "commands" else ("one", "two")))

    def notify(self, message, **kwargs):
        self.notes.append((kwargs.get("severity", "information"), message))
        super().notify(message, **kwargs)


async def until(pilot, predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.05)


def said(*texts) -> np.ndarray:
    """Audio of utterances, each followed by a pause that ends it, padded with silence
    to whole 100 ms chunks (the worker only takes whole chunks)."""
    return whole_chunks(np.concatenate([encode(t) for t in texts]))


def partial(text: str) -> np.ndarray:
    """Audio of ``text`` with no pause after it, padded to whole 100 ms chunks."""
    return whole_chunks(encode(text, pause_steps=0))


def whole_chunks(audio: np.ndarray) -> np.ndarray:
    """Pad to a multiple of 300 ms: whole 100 ms chunks and whole 30 ms steps."""
    return np.concatenate([audio, np.zeros(-len(audio) % 4800, np.float32)])


async def test_transcript_partial_and_phrase_panel(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("lights on"))
        await until(pilot, lambda: len(app.segments) == 1)
        transcript, panel = app.query_one(Transcript), app.query_one(PhrasePanel)
        assert transcript.lines == [" 0:00.0  lights on  \u2192 lights on 90%"]
        assert panel.border_title == "Phrases: commands"
        assert panel.text.startswith("\u2192 lights on  90%") and "lights off" in panel.text
        app.initial.feed(partial("hello"))
        await until(pilot, lambda: transcript.partial == "hello")
        assert str(app.query_one("#partial").render()).strip() == "hello\u2026"
        app.initial.feed(encode("", pause_steps=30))
        await until(pilot, lambda: len(app.segments) == 2)
        assert panel.text.startswith("\u2192 none  80%")
        assert transcript.lines[1].endswith("hello") and transcript.partial == ""


async def test_a_long_partial_wraps_and_the_layout_follows(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        transcript, partial = app.query_one(Transcript), app.query_one("#partial")
        long = "turn the lights on in the kitchen and then turn them off again in the hall"
        app.initial.feed(whole_chunks(encode(long, pause_steps=0)))
        await until(pilot, lambda: transcript.partial == long)
        await pilot.pause(0.1)
        assert partial.size.height == 2 and str(partial.render()).split()[-1] == "hall\u2026"
        app.initial.feed(encode("", pause_steps=30))
        await until(pilot, lambda: transcript.partial == "" and app.segments)
        await pilot.pause(0.1)
        assert partial.size.height == 1


async def test_phrase_events_are_json_lines_for_other_programs(tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text('{"earlier": "session"}\n')  # appended to, never overwritten
    app = Fixture(tmp_path, events=events)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("lights on", "hello"))
        await until(pilot, lambda: len(app.segments) == 2)
        await until(pilot, lambda: len(events.read_text().splitlines()) == 3)
    first, lights, hello = [json.loads(line) for line in events.read_text().splitlines()]
    assert first == {"earlier": "session"}
    assert lights["text"] == "lights on" and lights["phrase"] == "lights on" and lights["confidence"] == 0.9
    assert lights["top"][0] == {"phrase": "lights on", "p": 0.9} and lights["end_s"] > lights["start_s"]
    assert hello["text"] == "hello" and hello["phrase"] is None


async def test_a_pipe_nobody_reads_drops_events_not_audio(tmp_path, monkeypatch):
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)  # nobody opens it: the event writer waits forever
    monkeypatch.setattr(eventlog, "CAPACITY", 2)
    app = Fixture(tmp_path, events=fifo)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("one", "two", "three", "four", "five"))
        await until(pilot, lambda: len(app.segments) == 5)
        status = app.query_one(StatusBar)
        assert [s.text for s in app.segments] == ["one", "two", "three", "four", "five"] and app.worker.alive
        assert status.events_dropped == 3 and "events dropped 3" in status.render().plain
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # let the writer go, so its thread ends
    os.close(reader)


async def test_an_events_file_that_cannot_be_written_is_one_notice(tmp_path):
    app = Fixture(tmp_path, events=tmp_path / "gone" / "events.jsonl")  # its folder vanished after the check
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("one", "two"))
        await until(pilot, lambda: len(app.segments) == 2)
        errors = [n for severity, n in app.notes if severity == "error"]
        assert len(errors) == 1 and errors[0].startswith("Cannot write events: --events ")
        assert app.query_one(StatusBar).events_dropped == 2


async def test_spectrogram_marks_characters_and_utterances(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("hi"))
        spectrogram = app.query_one(Spectrogram)
        await until(pilot, lambda: app.segments and not spectrogram.pending)
        height = spectrogram.size.height
        chars = spectrogram.render_line(height - 2).text
        spans = spectrogram.render_line(height - 1).text
        assert chars.replace(" ", "") == "hi"
        h, i = chars.index("h"), chars.index("i")
        assert i - h == 2  # frames 0 and 6: columns 0 and 2 of three frames each
        assert spans[h] == "\u2523" and spans[h + 2] == "\u252b"  # ┣━┫ under "h i"
        image = spectrogram.render_line(0)
        assert image.cell_length == spectrogram.size.width and "\u2580" in image.text


async def test_space_pauses_commits_and_resumes(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusBar)
        assert status.state == "playing"
        app.initial.feed(partial("ok"))
        await until(pilot, lambda: app.query_one(Transcript).partial == "ok")
        await pilot.press("space")
        assert app.initial.paused and status.state.startswith("paused")
        await until(pilot, lambda: [s.text for s in app.segments] == ["ok"])
        app.initial.feed(encode("lost"))  # a paused source delivers nothing
        await pilot.press("space")
        assert not app.initial.paused and status.state == "playing"
        app.initial.feed(said("go"))
        await until(pilot, lambda: len(app.segments) == 2)
        assert [s.text for s in app.segments] == ["ok", "go"]


async def test_clear_forgets_the_transcript(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("stop"))
        await until(pilot, lambda: app.segments)
        await pilot.press("c")
        assert app.segments == [] and app.query_one(Transcript).lines == []
        assert app.query_one(PhrasePanel).result is None
        app.initial.feed(said("go"))
        await until(pilot, lambda: app.segments)
        assert [s.text for s in app.segments] == ["go"]


async def test_save_writes_txt_and_json_and_never_overwrites(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")
        assert list(tmp_path.iterdir()) == [] and app.notes[-1][0] == "warning"
        app.initial.feed(said("lights on", "hello"))
        await until(pilot, lambda: len(app.segments) == 2)
        await pilot.press("s")
        await pilot.press("s")
        files = sorted(p.name for p in tmp_path.iterdir())
        assert len(files) == 4 and all(f.startswith("livespeech-") for f in files)
        texts = [p.read_text() for p in sorted(tmp_path.glob("*.txt"))]
        assert texts == ["lights on\nhello\n"] * 2
        doc = json.loads(sorted(tmp_path.glob("*.json"))[0].read_text())
        assert doc["model"] == "fake" and doc["source"].startswith("scripted")
        assert [u["phrase"] for u in doc["utterances"]] == [{"phrase": "lights on", "confidence": 0.9},
                                                            {"phrase": None, "confidence": 0.8}]
        assert "Saved" in app.notes[-1][1]


async def test_phrase_picker_switches_hides_and_reports_bad_sets(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(PhrasePanel)
        await pilot.press("p")
        assert isinstance(app.screen, PhrasePicker)
        await pilot.press("down", "down", "enter")  # commands, digits, none
        assert not panel.display and app.worker.scorer is None and app.phrase_model is None
        await pilot.press("p", "tab", *"mine.txt", "enter")
        assert app.notes[-1] == ("error", "Phrase set 'mine.txt': mine.txt: no such file")
        assert not panel.display
        await pilot.press("p", "down", "enter")
        assert panel.display and panel.border_title == "Phrases: digits"
        assert app.worker.scorer is app.phrase_model.scorer
        app.initial.feed(said("two"))
        await until(pilot, lambda: app.segments)
        assert app.segments[0].phrase.phrase == "two"


async def test_device_picker_switches_the_source_and_time_continues(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("one"))
        await until(pilot, lambda: app.segments)
        before = app.worker.position
        await pilot.press("d")
        assert isinstance(app.screen, DevicePicker)
        await pilot.press("down", "enter")
        assert app.initial.stopped and app.opened[0].started and app.source is app.opened[0]
        assert app.query_one(StatusBar).source.startswith("USB Headset")
        app.opened[0].feed(said("two"))
        await until(pilot, lambda: len(app.segments) == 2)
        assert app.segments[1].start_s >= before.seconds


async def test_help_screen_opens_and_closes(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_quit_stops_everything_within_a_second(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(partial("bye"))
        await until(pilot, lambda: app.query_one(Transcript).partial == "bye")
        worker = app.worker
        t0 = time.perf_counter()
        await pilot.press("q")
    assert time.perf_counter() - t0 < 1.0
    assert not worker.alive and app.initial.stopped and app.source is None


async def test_portaudio_missing_is_shown_on_screen(tmp_path):
    app = Fixture(tmp_path, open_error=PortAudioMissing("the PortAudio library is missing: install it with 'apt-get install libportaudio2'"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen)
        assert "libportaudio2" in app.screen.message and not app.screen.offer_device
        assert app.query_one(StatusBar).source == "no input" and app.worker is None
        await pilot.press("escape")
        await pilot.press("space")  # nothing to pause: a bell, no crash
        assert app.worker is None


async def test_no_input_device_offers_the_device_picker(tmp_path):
    app = Fixture(tmp_path, open_error=NoInputDevice("no audio input device found (connect a microphone, or use --input FILE)"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ErrorScreen) and app.screen.offer_device
        await pilot.press("d")
        assert isinstance(app.screen, DevicePicker)
        await pilot.press("enter")
        assert app.opened[0].started and app.worker is not None


async def test_device_lost_mid_stream_keeps_the_transcript(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("keep me"))
        app.initial.feed(partial("and"))
        await until(pilot, lambda: app.query_one(Transcript).partial == "and")
        app.initial.fail("the input device 'USB' stopped (disconnected?)")
        await until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "stopped (disconnected?)" in app.screen.message and "transcript so far is kept" in app.screen.message
        assert [s.text for s in app.segments] == ["keep me", "and"]  # the partial was committed
        assert app.query_one(StatusBar).state == "input lost" and app.worker is None
        await pilot.press("escape")
        assert len(app.query_one(Transcript).lines) == 2
        await pilot.press("d", "enter")
        assert app.source is app.opened[0]


async def test_a_recognizer_that_keeps_failing_stops_with_an_error_screen(tmp_path):
    app = Fixture(tmp_path)
    app.recognizer = FailingRecognizer(failing=range(1, 10_000), message="out of memory")
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(np.zeros(1600 * (MAX_ERRORS_IN_A_ROW + 5), np.float32))
        await until(pilot, lambda: isinstance(app.screen, ErrorScreen))
        assert "the recognizer stopped: RuntimeError: out of memory" in app.screen.message
        assert not app.screen.offer_device
        assert app.notes.count(("error", "Recognition error (its chunk of audio is skipped): RuntimeError: out of memory")) == 1


async def test_a_recognizer_error_is_a_notice_and_listening_goes_on(tmp_path):
    app = Fixture(tmp_path)
    app.recognizer = FailingRecognizer(failing={2}, message="out of memory")
    app.options = dataclasses.replace(app.options, chunk_ms=90)  # 3 steps of the fake recognizer
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(said("stop", "lights on"))  # the 2nd chunk holds steps 3-5: "o" of s-t-o-p
        await until(pilot, lambda: len(app.segments) == 2)
        assert [s.text for s in app.segments] == ["p", "lights on"]  # "st" in progress was lost
        assert app.notes == [("error", "Recognition error (its chunk of audio is skipped): RuntimeError: out of memory")]
        assert not isinstance(app.screen, ErrorScreen) and app.worker.alive
        assert app.query_one(StatusBar).state == "playing"


async def test_status_bar_level_clipping_latency_rtf(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        status = app.query_one(StatusBar)
        loud = np.tile(np.array([1.0, -1.0], np.float32), 8000)  # mean 0 (blank) but clipping
        app.initial.feed(loud)
        await until(pilot, lambda: status.latency_ms is not None and status.rtf is not None)
        text = status.render().plain
        assert "CLIP" in text and status.level_db == pytest.approx(0.0, abs=0.01)
        assert 0 < status.latency_ms < 2000 and "overruns 0" in text


async def test_end_of_input_keeps_the_results(tmp_path):
    app = Fixture(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        app.initial.feed(partial("last"))
        app.initial.finish()
        await until(pilot, lambda: app.query_one(StatusBar).state.startswith("end of input"))
        assert [s.text for s in app.segments] == ["last"]
        assert any("End of the input file" in n for _, n in app.notes)
        await pilot.press("space")  # nothing to resume
        assert [s.text for s in app.segments] == ["last"]


async def test_a_two_second_ui_stall_loses_no_audio(tmp_path, write_audio):
    audio = said("lights on", "stop", "lights off", "stop")
    path = write_audio("cmds.wav", audio, 16000, subtype="FLOAT")
    source = FileSource(path, speed=1.0)
    app = Fixture(tmp_path, source=source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.5)
        app.call_later(lambda: time.sleep(2.0))  # the event loop is blocked for 2 s
        await until(pilot, lambda: app.query_one(StatusBar).state.startswith("end of input"), timeout=30)
        assert source.overruns == 0 and app.query_one(StatusBar).overruns == 0
        assert [s.text for s in app.segments] == ["lights on", "stop", "lights off", "stop"]
        assert app.worker.position.seconds == pytest.approx(len(audio) / 16000)  # every sample recognised
        spectrogram = app.query_one(Spectrogram)
        await until(pilot, lambda: not spectrogram.pending)
        assert spectrogram._shown == app.worker.position.frames


def count_images(spectrogram: Spectrogram) -> list[int]:
    """A one-item list counting the screen's redraws of ``spectrogram``, through
    Textual's ``render_line``: a redraw renders its changed lines top down within a
    moment; redraws are a frame (1/60 s or more) apart."""
    count, render_line, last = [0], spectrogram.render_line, [-1, 0.0]

    def counting(y: int):
        now = time.perf_counter()
        if y <= last[0] or now - last[1] > 0.008:
            count[0] += 1
        last[:] = [y, now]
        return render_line(y)

    spectrogram.render_line = counting
    return count


async def test_spectrogram_scrolls_at_least_20_times_a_second(tmp_path, write_audio):
    path = write_audio("long.wav", said(*["lights on"] * 6), 16000, subtype="FLOAT")
    app = Fixture(tmp_path, source=FileSource(path, speed=1.0))
    async with app.run_test(size=SIZE) as pilot:
        images = count_images(app.query_one(Spectrogram))
        await pilot.pause(0.5)
        before, t0 = images[0], time.monotonic()
        await pilot.pause(2.0)
        rate = (images[0] - before) / (time.monotonic() - t0)
    assert rate >= 20


# ----------------------------------------------------------------------------- snapshots


def recorded_updates() -> list[LiveUpdate]:
    """Updates of two utterances and a partial, with fixed level and timing fields."""
    from tests.test_live import Collector

    source, sink = ScriptedSource(), Collector()
    worker = LiveWorker(source, FakeRecognizer(), sink, scorer=FakeScorer(COMMANDS))
    worker.start()
    source.feed(np.concatenate([said("lights on", "what a day"), encode("stop", pause_steps=3)]))
    sink.wait(lambda s: any(u.partial == "stop" for u in s.updates))
    worker.stop()
    updates = sink.updates
    end = next(i for i, u in enumerate(updates) if u.partial == "stop")  # leave "stop" in progress
    level_db = np.linspace(-40, -12, end + 1)
    return [dataclasses.replace(u, arrival=None, rtf=0.021, level_db=float(db)) for u, db in zip(updates[: end + 1], level_db)]


def snapshot_app(tmp_path, updates=(), **kwargs):
    """The app and a ``run_before`` that posts ``updates`` and lets the spectrogram catch up."""
    app = Fixture(tmp_path, **kwargs)

    async def run_before(pilot):
        for update in updates:
            app.post_message(update)
        committed = sum(len(u.committed) for u in updates)
        await until(pilot, lambda: len(app.segments) == committed and not app.query_one(Spectrogram).pending)
        await pilot.pause(0.2)

    return app, run_before


def test_main_screen_snapshot(snap_compare, tmp_path):
    app, run_before = snapshot_app(tmp_path, recorded_updates())
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_error_screen_snapshot(snap_compare, tmp_path):
    app, run_before = snapshot_app(tmp_path, open_error=NoInputDevice("no audio input device found (connect a microphone, or use --input FILE)"))
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen_snapshot(snap_compare, tmp_path):
    app, run_before = snapshot_app(tmp_path, phrases="digits")

    async def with_help(pilot):
        await run_before(pilot)
        await pilot.press("question_mark")
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=with_help)
