"""LiveWorker: chunks to events, endpoints, pause/end/failure flushing, session times
across flushes and workers, phrase scoring, resampling with the real recognizer;
plus level, saving the live transcript and the live command's argument checks."""

import json
import threading
import time

import numpy as np
import pytest
import torch

from livespeech import capture
from livespeech.audio import AudioError, StreamResampler
from livespeech.capture import DeviceNotFound
from livespeech.cli import UsageError, check_live_arguments
from livespeech.features import log_mel
from livespeech.output import format_clock, save_transcript
from livespeech.recognizer import Recognizer, transcribe_blocks
from livespeech.ui.backend import load_phrase_model
from livespeech.worker import (MAX_ERRORS_IN_A_ROW, LiveUpdate, LiveWorker, RecognizerError, SourceEnded, SourceFailed,
                               WorkerFailed)
from tests.conftest import speechlike
from tests.livefakes import FailingRecognizer, FakeRecognizer, FakeScorer, ScriptedSource, encode


class Collector:
    """A thread-safe sink that lets the test wait for events."""

    def __init__(self):
        self.events, self._cond = [], threading.Condition()

    def __call__(self, event):
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, predicate, timeout=20.0):
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self), timeout), f"timed out; events: {self.events[-3:]}"

    @property
    def updates(self) -> list[LiveUpdate]:
        return [e for e in self.events if isinstance(e, LiveUpdate)]

    @property
    def committed(self):
        return [s for u in self.updates for s in u.committed]


def start(source, recognizer=None, **kwargs):
    sink = Collector()
    worker = LiveWorker(source, recognizer or FakeRecognizer(), sink, **kwargs)
    worker.start()
    return worker, sink


def test_chunks_become_updates_with_text_marks_and_times():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(np.concatenate([encode("hi"), encode("yes")]))
    sink.wait(lambda s: len(s.committed) == 2)
    worker.stop()
    hi, yes = sink.committed
    assert (hi.text, yes.text) == ("hi", "yes")
    assert hi.start_s == 0.0 and hi.end_s == pytest.approx(0.09)  # h at step 0, i at step 2, ends a step later
    assert (hi.start_frame, hi.end_frame) == (0, 9)
    assert yes.start_s == pytest.approx(29 * 0.03) and yes.start_frame == 87  # after 4 + 25 steps
    updates = sink.updates
    assert all(u.first_frame == sum(v.frames.shape[0] for v in updates[:i]) for i, u in enumerate(updates))
    chars = [c for u in updates for c in u.chars]
    assert [(c.frame, c.char) for c in chars[:3]] == [(0, "h"), (6, "i"), (87, "y")]
    assert "y" in [u.partial for u in updates]  # partial text before the commit
    full = [u for u in updates if u.rtf is not None]
    assert full and all(u.arrival is not None and not u.frames.flags.writeable for u in full)
    assert all(b.audio_s > a.audio_s for a, b in zip(full, full[1:]))
    assert updates[0].audio_s == pytest.approx(0.1)


def test_the_partial_frame_marks_the_utterance_in_progress():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(encode("ab", pause_steps=0))
    sink.wait(lambda s: any(u.partial == "ab" for u in s.updates))
    worker.stop()
    assert [u.partial_frame for u in sink.updates if u.partial][0] == 0
    assert sink.updates[-1].partial_frame is None  # stopping commits it


def test_pause_commits_the_utterance_in_progress_and_time_continues():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(encode("ok", pause_steps=2))  # no endpoint yet
    sink.wait(lambda s: any(u.partial == "ok" for u in s.updates))
    source.pause()
    sink.wait(lambda s: len(s.committed) == 1)
    paused_at = worker.position
    source.resume()
    source.feed(encode("go"))
    sink.wait(lambda s: len(s.committed) == 2)
    worker.stop()
    ok, go = sink.committed
    assert ok.text == "ok" and go.text == "go"
    assert go.start_s == pytest.approx(paused_at.seconds) and go.start_frame == paused_at.frames
    frames = sink.updates
    assert all(b.first_frame == a.first_frame + a.frames.shape[0] for a, b in zip(frames, frames[1:]))


def test_end_of_input_flushes_then_reports_the_end():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(encode("end", pause_steps=1)[:-7])  # not a whole chunk at the end
    source.finish()
    sink.wait(lambda s: isinstance(s.events[-1], SourceEnded) if s.events else False)
    assert [s.text for s in sink.committed] == ["end"]
    assert sink.events[-1].audio_s == pytest.approx(len(encode("end", pause_steps=1)[:-7]) / 16000)
    worker._thread.join(1.0)
    assert not worker.alive


def test_device_failure_keeps_the_text_and_reports_the_message():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(encode("abc", pause_steps=4))
    sink.wait(lambda s: any(u.partial == "abc" for u in s.updates))
    source.fail("the input device 'USB' stopped (disconnected?)")
    sink.wait(lambda s: isinstance(s.events[-1], SourceFailed))
    assert sink.events[-1].message.startswith("the input device 'USB' stopped")
    assert [s.text for s in sink.committed] == ["abc"]


def test_a_recognizer_that_always_fails_ends_the_worker_after_a_run_of_errors():
    source = ScriptedSource()
    worker, sink = start(source, FailingRecognizer(failing=range(1, 10_000)))
    source.feed(np.zeros(1600 * (MAX_ERRORS_IN_A_ROW + 5), np.float32))
    sink.wait(lambda s: any(isinstance(e, WorkerFailed) for e in s.events))
    errors = sink.events[:-1]
    assert errors == [RecognizerError("RuntimeError: boom", n) for n in range(1, MAX_ERRORS_IN_A_ROW)]
    assert sink.events[-1] == WorkerFailed(f"RuntimeError: boom ({MAX_ERRORS_IN_A_ROW} chunks in a row)")
    worker._thread.join(1.0)
    assert not worker.alive


def test_a_recognizer_error_skips_the_chunk_and_the_stream_goes_on():
    # 90 ms chunks are 3 steps of the fake recognizer; the 11th holds steps 30-32 of
    # "hi" (29 steps) then "abc" (a at step 29, b at 31, c at 33)
    source = ScriptedSource()
    worker, sink = start(source, FailingRecognizer(failing={11}), chunk_ms=90)
    source.feed(np.concatenate([encode("hi"), encode("abc"), encode("yes")]))
    source.finish()
    sink.wait(lambda s: bool(s.events) and isinstance(s.events[-1], SourceEnded))
    assert [e for e in sink.events if isinstance(e, RecognizerError)] == [RecognizerError("RuntimeError: boom", 1)]
    assert not any(isinstance(e, WorkerFailed) for e in sink.events)
    # "a", in progress, is lost with the recognizer's reset; "b" was in the dropped chunk
    assert [s.text for s in sink.committed] == ["hi", "c", "yes"]
    c, yes = sink.committed[1:]
    assert c.start_s == pytest.approx(33 * 0.03) and yes.start_s == pytest.approx(60 * 0.03)  # times stay true
    assert sink.events[-1].audio_s == pytest.approx((29 + 31 + 31) * 0.03)  # the dropped chunk still counts
    updates = sink.updates
    assert all(b.first_frame == a.first_frame + a.frames.shape[0] for a, b in zip(updates, updates[1:]))
    worker._thread.join(1.0)
    assert not worker.alive


def test_phrase_scorer_runs_per_committed_utterance_and_can_be_swapped():
    source = ScriptedSource()
    scorer = FakeScorer(("lights on", "stop"))
    worker, sink = start(source, scorer=scorer)
    source.feed(np.concatenate([encode("lights on"), encode("hello")]))
    sink.wait(lambda s: len(s.committed) == 2)
    worker.scorer = None
    source.feed(encode("stop"))
    sink.wait(lambda s: len(s.committed) == 3)
    worker.stop()
    first, second, third = sink.committed
    assert first.phrase.phrase == "lights on" and first.phrase.confidence == 0.9
    assert second.phrase.phrase is None
    assert third.phrase is None and scorer.calls == 2


def test_a_new_worker_continues_the_session_position():
    source = ScriptedSource()
    worker, sink = start(source)
    source.feed(encode("one"))
    sink.wait(lambda s: len(s.committed) == 1)
    assert worker.stop()
    origin = worker.position
    assert origin.frames == sum(u.frames.shape[0] for u in sink.updates)
    source2 = ScriptedSource()
    worker2, sink2 = start(source2, origin=origin)
    source2.feed(encode("two"))
    sink2.wait(lambda s: len(s.committed) == 1)
    worker2.stop()
    assert sink2.updates[0].first_frame == origin.frames
    assert sink2.committed[0].start_s == pytest.approx(origin.seconds)


def test_stop_returns_quickly_and_is_idempotent():
    source = ScriptedSource()
    worker, sink = start(source)
    t0 = time.monotonic()
    assert worker.stop() and worker.stop()
    assert time.monotonic() - t0 < 0.5


def test_real_recognizer_through_a_48_khz_source_matches_offline(tiny_bundle):
    audio48 = speechlike(4.0, 48000, seed=3)
    source = ScriptedSource(sample_rate=48000)
    recognizer = Recognizer(tiny_bundle)
    worker, sink = start(source, recognizer)
    rng = np.random.default_rng(0)
    i = 0
    while i < len(audio48):  # irregular callback sizes
        n = int(rng.integers(100, 3000))
        source.feed(audio48[i : i + n])
        i += n
    source.finish()
    sink.wait(lambda s: bool(s.events) and isinstance(s.events[-1], SourceEnded))
    resampler = StreamResampler(48000, 16000)
    audio16 = np.concatenate([resampler.accept(audio48), resampler.flush()])
    offline = transcribe_blocks(Recognizer(tiny_bundle), [audio16])
    assert [s.text for s in sink.committed] == [u.text for u in offline.utterances]
    frames = np.concatenate([u.frames for u in sink.updates])
    expected = log_mel(torch.from_numpy(audio16)).numpy()
    assert frames.shape == expected.shape and np.allclose(frames, expected, atol=1e-3)


# ----------------------------------------------------------------------------- helpers


@pytest.mark.parametrize("seconds, text", [(0, "0:00.0"), (65.24, "1:05.2"), (3725, "1:02:05")])
def test_format_clock(seconds, text):
    assert format_clock(seconds) == text


def segments():
    source = ScriptedSource()
    worker, sink = start(source, scorer=FakeScorer(("stop",)))
    source.feed(np.concatenate([encode("stop"), encode("go on")]))
    sink.wait(lambda s: len(s.committed) == 2)
    worker.stop()
    return sink.committed


def test_save_writes_txt_and_json_and_never_overwrites(tmp_path):
    segs = segments()
    txt, jsn = save_transcript(segs, tmp_path, {"source": "mic"}, stamp="20250101-120000")
    assert txt.read_text() == "stop\ngo on\n"
    doc = json.loads(jsn.read_text())
    assert doc["source"] == "mic" and doc["text"] == "stop go on"
    assert doc["utterances"][0]["phrase"] == {"phrase": "stop", "confidence": 0.9}
    assert doc["utterances"][1]["words"][1] == {"word": "on", "start_s": pytest.approx(segs[1].words[1].start_s, abs=1e-3),
                                               "end_s": pytest.approx(segs[1].end_s, abs=1e-3)}
    (tmp_path / "livespeech-20250101-120000-2.json").write_text("precious")
    txt3, jsn3 = save_transcript(segs[:1], tmp_path, {}, stamp="20250101-120000")
    assert (txt3.name, jsn3.name) == ("livespeech-20250101-120000-3.txt", "livespeech-20250101-120000-3.json")
    assert txt.read_text() == "stop\ngo on\n" and (tmp_path / "livespeech-20250101-120000-2.json").read_text() == "precious"


def test_live_arguments_are_checked_before_the_screen(tmp_path, monkeypatch, write_audio):
    with pytest.raises(UsageError, match="exclude each other"):
        check_live_arguments("a.wav", "1")
    with pytest.raises(AudioError, match="no such file") as error:  # not a usage error: exit status 1
        check_live_arguments(str(tmp_path / "missing.wav"), None)
    assert str(error.value).startswith(str(tmp_path / "missing.wav"))
    check_live_arguments(str(write_audio("ok.wav", speechlike(0.2), 16000)), None)
    with pytest.raises(UsageError, match="--events .*: no such folder"):
        check_live_arguments(None, None, events=tmp_path / "nowhere" / "events.jsonl")

    def not_found(spec):
        raise DeviceNotFound(f"no input device named {spec!r}")

    monkeypatch.setattr(capture, "resolve_device", not_found)
    with pytest.raises(UsageError, match="no input device named 'usb'"):
        check_live_arguments(None, "usb")


def test_phrase_model_loading(tiny_bundle):
    assert load_phrase_model("none", tiny_bundle.vocabulary) is None
    model = load_phrase_model("digits", tiny_bundle.vocabulary)
    assert model.name == "digits"
    result = model.scorer.score(torch.log_softmax(torch.randn(40, len(tiny_bundle.vocabulary)), dim=-1))
    assert result.phrase is None or result.phrase in ("zero", "one", "two", "three", "four", "five", "six", "seven",
                                                      "eight", "nine")
    with pytest.raises(ValueError):
        load_phrase_model("no-such-set", tiny_bundle.vocabulary)


# ----------------------------------------------------------------------------- command line


def livespeech(*args):
    """``livespeech ARGS`` in a subprocess without a terminal."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "livespeech", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("args, status, words", [
    ((), 2, "the live view needs a terminal"),
    (("--input", "missing.wav"), 1, "missing.wav: no such file"),
    (("--input", "a.wav", "--device", "1"), 2, "--input and --device exclude each other"),
    (("--endpoint-s", "0"), 2, "--endpoint-s"),
    (("--phrases", "no-such-set"), 2, "--phrases: no phrase set named 'no-such-set'"),
])
def test_live_command_errors_are_one_line(tmp_path, args, status, words):
    p = livespeech(*[str(tmp_path / a) if a.endswith(".wav") else a for a in args])
    assert p.returncode == status
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livespeech: error:") and words in lines[0], p.stderr


def test_help_lists_live_options_and_devices():
    p = livespeech("--help")
    assert p.returncode == 0
    for word in ("--phrases", "--device", "--input", "devices"):
        assert word in p.stdout
