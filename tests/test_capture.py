"""Capture: device listing and choice, sample-rate fallback, the PortAudio callback
(with a fake sounddevice module), device loss, PortAudio missing, the file source's
pacing, and ``livespeech devices`` through the real PortAudio with a virtual mic."""

import importlib.abc
import os
import shutil
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from livespeech import capture
from livespeech.audio import AudioError, read_audio
from livespeech.capture import (CaptureError, DeviceNotFound, FileSource, InputDevice, MicSource, NoInputDevice,
                                PortAudioMissing, choose_settings, list_input_devices, load_sounddevice, open_source,
                                read_source, resolve_device)
from tests.conftest import ROOT, speechlike

VIRTUAL_MIC = ROOT.parent / "shared" / "tools" / "virtual-mic"


class Flags:
    """A PortAudio CallbackFlags stand-in."""

    def __init__(self, input_overflow=False, other=False):
        self.input_overflow = input_overflow
        self._any = input_overflow or other

    def __bool__(self):
        return self._any


class FakeStream:
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.active = self.aborted = self.closed = False

    def start(self):
        self.active = True

    def abort(self):
        self.active, self.aborted = False, True

    def close(self):
        self.closed = True

    def push(self, block, status=None):
        block = np.asarray(block, np.float32).reshape(len(block), -1)
        self.kwargs["callback"](block, len(block), None, status or Flags())

    def vanish(self):
        self.active = False
        self.kwargs["finished_callback"]()


class FakeSoundDevice:
    """Enough of the sounddevice module for capture.py."""

    def __init__(self, devices, default=0, rates=None, min_channels=1, open_error=None):
        self.devices, self.rates, self.min_channels, self.open_error = devices, rates, min_channels, open_error
        self.default = type("Default", (), {"device": [default, -1]})()
        self.streams = []

    def query_hostapis(self):
        return [{"name": "ALSA"}, {"name": "PulseAudio"}]

    def query_devices(self):
        return self.devices

    def check_input_settings(self, device, channels, dtype, samplerate):
        if self.rates is not None and samplerate not in self.rates or channels < self.min_channels:
            raise ValueError("Invalid sample rate")

    def InputStream(self, **kwargs):
        if self.open_error:
            raise self.open_error
        self.streams.append(FakeStream(**kwargs))
        return self.streams[-1]


def dev(name, inputs=2, outputs=0, rate=44100.0, hostapi=0):
    return {"name": name, "max_input_channels": inputs, "max_output_channels": outputs,
            "default_samplerate": rate, "hostapi": hostapi}


DEVICES = [dev("HDA Intel PCH: ALC (hw:0,0)"), dev("Speakers", inputs=0, outputs=2), dev("USB Mic", rate=48000.0, hostapi=1),
           dev("USB Mic Array"), dev("default", rate=48000.0)]


def test_lists_only_inputs_with_rate_host_api_and_default():
    devices = list_input_devices(FakeSoundDevice(DEVICES, default=4))
    assert [d.index for d in devices] == [0, 2, 3, 4]
    assert devices[1] == InputDevice(2, "USB Mic", "PulseAudio", 2, 48000.0, False)
    assert [d.is_default for d in devices] == [False, False, False, True]


@pytest.mark.parametrize("spec, index", [(None, 4), ("2", 2), ("usb mic", 2), ("Array", 3), ("alc", 0), (3, 3)])
def test_resolve_device_by_index_exact_name_or_unique_part(spec, index):
    assert resolve_device(spec, FakeSoundDevice(DEVICES, default=4)).index == index


@pytest.mark.parametrize("spec, words", [("1", "no input device with index 1"), ("9", "index 9"),
                                         ("usb", "several"), ("bluetooth", "no input device named")])
def test_resolve_device_errors_say_why_and_list_inputs(spec, words):
    with pytest.raises(DeviceNotFound) as error:
        resolve_device(spec, FakeSoundDevice(DEVICES))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_no_input_device_at_all():
    with pytest.raises(NoInputDevice, match="no audio input device"):
        resolve_device(None, FakeSoundDevice([dev("Speakers", inputs=0, outputs=2)]))


def test_portaudio_missing_is_a_clear_error(monkeypatch):
    class Broken(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    with pytest.raises(PortAudioMissing, match="libportaudio2"):
        load_sounddevice()
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # the package itself missing
    with pytest.raises(PortAudioMissing, match="pip install sounddevice"):
        list_input_devices()


@pytest.mark.parametrize("rates, min_channels, expected", [
    (None, 1, (16000, 1)),  # 16 kHz when the device can
    ({44100, 48000}, 1, (44100, 1)),  # else its default rate
    ({48000, 8000}, 1, (48000, 1)),  # else a common one
    ({22050}, 2, (22050, 2)),  # stereo only: open two channels, use the first
])
def test_sample_rate_and_channels_fall_back_instead_of_failing(rates, min_channels, expected):
    sd = FakeSoundDevice(DEVICES, rates=rates, min_channels=min_channels)
    assert choose_settings(resolve_device("alc", sd), sd) == expected


def test_a_device_refusing_every_rate_is_a_capture_error():
    sd = FakeSoundDevice(DEVICES, rates=set())
    with pytest.raises(CaptureError, match="accepts none of the sample rates"):
        MicSource(resolve_device("alc", sd), sd=sd)


def open_mic(sd=None, **kwargs):
    sd = sd or FakeSoundDevice(DEVICES, rates={44100})
    source = MicSource(resolve_device("alc", sd), sd=sd, **kwargs)
    source.start()
    return source, sd.streams[-1]


def test_mic_source_opens_at_the_chosen_rate_and_copies_the_first_channel():
    source, stream = open_mic()
    assert stream.kwargs["samplerate"] == 44100 and stream.kwargs["device"] == 0
    assert stream.kwargs["blocksize"] == 882  # 20 ms
    assert source.sample_rate == 44100 and source.ring.capacity == 5 * 44100
    stereo = np.stack([np.arange(882), -np.arange(882)], axis=1) / 1000
    stream.push(stereo)
    assert np.allclose(source.ring.read(1000), np.arange(882) / 1000)


def test_callback_counts_status_flags_and_overflows_as_overruns():
    source, stream = open_mic(buffer_s=0.03)  # 1323 samples: the second block does not fit
    stream.push(np.zeros(882), Flags(other=True))
    stream.push(np.zeros(882), Flags(input_overflow=True))
    assert (source.status_flags, source.input_overflows, source.ring.overruns) == (2, 1, 1)
    assert source.overruns == 2


def test_paused_mic_discards_audio():
    source, stream = open_mic()
    source.pause()
    stream.push(np.ones(882))
    assert source.ring.available == 0
    source.resume()
    stream.push(np.ones(882))
    assert source.ring.available == 882


def test_callback_does_not_allocate_sample_memory():
    source, stream = open_mic(buffer_s=1.0)
    block = np.ones((4410, 1), np.float32)  # 17 kB a copy
    status = Flags()
    callback = stream.kwargs["callback"]
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in range(100):
            callback(block, len(block), None, status)
            source.ring.consumed = source.ring.written
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 4096


def test_device_vanishing_sets_an_error_and_wakes_the_consumer():
    source, stream = open_mic()
    stream.vanish()
    assert "stopped (disconnected?)" in source.error
    assert not source.ring.wait(1, timeout=5.0)  # returns at once: woken


def test_check_notices_an_inactive_or_silent_stream(monkeypatch):
    source, stream = open_mic()
    source.check()
    assert source.error is None
    stream.active = False
    source.check()
    assert "stopped" in source.error

    source, stream = open_mic()
    monkeypatch.setattr(capture, "SILENT_DEVICE_S", 0.01)
    time.sleep(0.05)
    source.check()
    assert "no audio from" in source.error


def test_stop_closes_without_an_error():
    source, stream = open_mic()
    source.stop()
    assert stream.aborted and stream.closed and source.error is None
    source.stop()  # idempotent


def test_a_stream_that_cannot_open_is_one_line():
    sd = FakeSoundDevice(DEVICES, open_error=RuntimeError("Device unavailable [PaErrorCode -9985]"))
    source = MicSource(resolve_device("alc", sd), sd=sd)
    with pytest.raises(CaptureError) as error:
        source.start()
    assert "cannot open input device" in str(error.value) and "-9985" in str(error.value)


# ----------------------------------------------------------------------------- file source


def drain(source: FileSource, timeout: float = 30.0) -> np.ndarray:
    """Read everything until the source ends, like the worker does."""
    out, deadline = [], time.monotonic() + timeout
    while not (source.ended and source.ring.available == 0):
        assert time.monotonic() < deadline and source.error is None
        source.ring.wait(1, 0.05)
        out.append(source.ring.read(source.ring.available))
    return np.concatenate(out)


def test_file_source_as_fast_as_possible_delivers_every_sample(write_audio):
    path = write_audio("a.wav", speechlike(3.0, 22050), 22050)
    source = FileSource(path, speed=None, buffer_s=0.2)  # smaller than the file: must wait, not drop
    source.start()
    got = drain(source)
    expected = read_audio(path)
    assert got.shape == expected.shape and np.allclose(got, expected, atol=1e-5)  # same up to float rounding
    assert source.overruns == 0 and source.sample_rate == 16000


def test_file_source_plays_in_real_time(write_audio):
    path = write_audio("a.wav", speechlike(1.0), 16000)
    source = FileSource(path, speed=1.0)
    t0 = time.monotonic()
    source.start()
    time.sleep(0.3)
    early = source.ring.available
    got = drain(source)
    elapsed = time.monotonic() - t0
    assert len(got) == 16000
    assert 0.95 <= elapsed < 3.0
    assert early < 0.5 * 16000  # not delivered ahead of time


def test_file_source_speed_and_loops(write_audio):
    path = write_audio("a.wav", speechlike(1.0), 16000)
    source = FileSource(path, speed=8.0, loops=3)
    t0 = time.monotonic()
    source.start()
    got = drain(source)
    assert len(got) == 3 * 16000 and 0.3 <= time.monotonic() - t0 < 3.0
    assert np.array_equal(got[16000:32000], got[:16000])


def test_file_source_pause_and_stop(write_audio):
    path = write_audio("a.wav", speechlike(2.0), 16000)
    source = FileSource(path, speed=4.0)
    source.start()
    time.sleep(0.1)
    source.pause()
    time.sleep(0.05)
    held = source.delivered
    time.sleep(0.2)
    assert source.delivered == held and not source.ended
    source.resume()
    time.sleep(0.1)
    assert source.delivered > held
    t0 = time.monotonic()
    source.stop()
    assert time.monotonic() - t0 < 1.0 and not source._thread.is_alive()


def test_file_source_rejects_bad_files_and_arguments(tmp_path, write_audio):
    with pytest.raises(AudioError):
        FileSource(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio" * 50)
    with pytest.raises(AudioError):
        FileSource(tmp_path / "text.wav")
    with pytest.raises(ValueError):
        FileSource(write_audio("a.wav", speechlike(0.5), 16000), speed=0)


# ----------------------------------------------------------------------------- opening and reading any source


def test_open_source_gives_a_file_or_the_microphone(monkeypatch, write_audio):
    path = write_audio("a.wav", speechlike(0.5), 16000)
    source = open_source(str(path), None, speed=None)
    assert isinstance(source, FileSource) and source.speed is None
    with pytest.raises(AudioError, match=r"missing\.wav: no such file"):
        open_source(str(path.with_name("missing.wav")), None)
    monkeypatch.setattr(capture, "load_sounddevice", lambda: FakeSoundDevice(DEVICES, default=4, rates={44100, 48000}))
    mic = open_source(None, "usb mic")
    assert isinstance(mic, MicSource) and mic.device.index == 2 and mic.sample_rate == 48000
    with pytest.raises(DeviceNotFound):
        open_source(None, "bluetooth")


def test_read_source_resamples_every_sample_then_stops_at_the_end():
    source, stream = open_mic()  # 44.1 kHz
    audio = speechlike(1.0, 44100)
    for i in range(0, len(audio), 882):
        stream.push(audio[i : i + 882, None])
    source.ring.wake()
    blocks = read_source(source, block_s=0.05)
    first = next(blocks)
    assert 0 < len(first) <= 800  # 50 ms at 16 kHz, less the resampler's delay
    source.ended = True  # what a file source sets at its end
    rest = np.concatenate([first, *blocks])
    assert len(rest) == pytest.approx(16000, abs=2)
    source.error = "the input device 'x' stopped (disconnected?)"
    source.ended = False
    with pytest.raises(CaptureError, match="stopped"):
        next(read_source(source))


# ----------------------------------------------------------------------------- real PortAudio


def virtual_mic_env(wav) -> dict:
    """The environment with ``virtual_mic`` playing ``wav`` (skips when unavailable)."""
    if not (VIRTUAL_MIC.exists() and shutil.which("sox")):
        pytest.skip("virtual-mic or sox not available")
    try:
        load_sounddevice()
    except PortAudioMissing:
        pytest.skip("PortAudio not installed")
    out = subprocess.run([str(VIRTUAL_MIC), str(wav)], capture_output=True, text=True, check=True).stdout
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for line in out.splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def test_devices_command_lists_the_virtual_mic_through_portaudio(write_audio):
    env = virtual_mic_env(write_audio("v.wav", speechlike(0.5), 16000))
    p = subprocess.run([sys.executable, "-m", "livespeech", "devices"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    line = next(line for line in p.stdout.splitlines() if " virtual_mic " in f"{line} ")
    assert "ALSA" in line and "16000 Hz" in line


def test_bad_device_is_a_usage_error_before_the_screen_opens(write_audio):
    env = virtual_mic_env(write_audio("v.wav", speechlike(0.5), 16000))
    p = subprocess.run([sys.executable, "-m", "livespeech", "--device", "no-such-mic"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 2
    assert p.stderr.startswith("livespeech: error: no input device named 'no-such-mic'")
    assert len(p.stderr.strip().splitlines()) == 1
