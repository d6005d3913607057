"""Audio sources for the live view: a microphone through PortAudio and a file played
in real time (or faster), both filling a :class:`~livespeech.ringbuffer.RingBuffer`.

The recognizer worker does not know its source: it reads the ring buffer at the
source's :attr:`Source.sample_rate` and resamples to the model's rate itself.

    source = open_source(None, "USB")           # or open_source("talk.wav", None)
    source.start()
    chunk = source.ring.read(...)               # in the worker; or: for block in read_source(source)
    source.stop()

The PortAudio callback only copies the samples (channel 0) into the preallocated
ring buffer and counts status flags: no allocation, logging, torch or long-held locks.
The microphone is opened at 16 kHz when the device supports it, otherwise at its
default rate or another common rate it accepts, so a device that cannot do 16 kHz
never fails with "Invalid sample rate".

``sounddevice`` is imported lazily (it needs the PortAudio library), so offline
commands work without it; a missing library raises :class:`PortAudioMissing`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livespeech.audio import SAMPLE_RATE, AudioError, StreamResampler, audio_info, read_blocks
from livespeech.ringbuffer import RingBuffer

BUFFER_S = 5.0  # ring buffer length, seconds: rides out a stalled consumer
MIC_BLOCK_S = 0.02  # PortAudio block, seconds (20 ms)
FILE_BLOCK_S = 0.01  # file source block, seconds (10 ms, like a small audio callback)
READ_WAIT_S = 0.05  # read_source's longest wait for audio before checking the source, seconds
SILENT_DEVICE_S = 2.0  # no callback for this long while running: the device is gone
FALLBACK_RATES = (48_000, 44_100, 32_000, 22_050, 96_000, 24_000, 8_000)  # Hz, tried after 16 kHz and the default
INSTALL_HINT = "install it with 'apt-get install libportaudio2' (or your system's portaudio package)"


class CaptureError(Exception):
    """Audio capture cannot start or stopped; the message is for the user."""


class PortAudioMissing(CaptureError):
    """The PortAudio library (needed by sounddevice) is not installed."""


class NoInputDevice(CaptureError):
    """The system has no audio input device."""


class DeviceNotFound(CaptureError):
    """``--device`` names no input device (a usage error)."""


@dataclass(frozen=True)
class InputDevice:
    """An audio input as PortAudio reports it.

    Attributes:
        index: PortAudio device index.
        name: device name.
        hostapi: host API name (ALSA, PulseAudio, Core Audio, WASAPI...).
        channels: maximum input channels.
        default_rate: default sample rate, Hz.
        is_default: whether it is the system's default input.
    """

    index: int
    name: str
    hostapi: str
    channels: int
    default_rate: float
    is_default: bool = False


def load_sounddevice():
    """The ``sounddevice`` module.

    Raises:
        PortAudioMissing: sounddevice or the PortAudio library is not installed.
    """
    try:
        import sounddevice
    except ImportError:
        raise PortAudioMissing("the Python package sounddevice is not installed (pip install sounddevice)") from None
    except OSError:  # sounddevice raises OSError when it cannot load libportaudio
        raise PortAudioMissing(f"the PortAudio library is missing: {INSTALL_HINT}") from None
    return sounddevice


def list_input_devices(sd=None) -> list[InputDevice]:
    """Every device with input channels, in PortAudio's order.

    Args:
        sd: the sounddevice module (imported when None; tests pass a fake).
    Raises:
        PortAudioMissing: see :func:`load_sounddevice`.
    """
    sd = sd or load_sounddevice()
    hostapis = [api["name"] for api in sd.query_hostapis()]
    default = _default_input_index(sd)
    return [InputDevice(i, d["name"], hostapis[d["hostapi"]] if d["hostapi"] < len(hostapis) else "?",
                        int(d["max_input_channels"]), float(d["default_samplerate"]), i == default)
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


def _default_input_index(sd) -> int | None:
    try:
        index = sd.default.device[0]
    except (TypeError, IndexError, AttributeError):
        return None
    return index if isinstance(index, int) and index >= 0 else None


def resolve_device(spec: str | int | None, sd=None) -> InputDevice:
    """The input device given by index or name (the default input when None).

    A name matches exactly (case-insensitive) or, failing that, as a unique substring.

    Raises:
        PortAudioMissing: see :func:`load_sounddevice`.
        NoInputDevice: the system has no input device at all.
        DeviceNotFound: ``spec`` matches no input device, or several.
    """
    devices = list_input_devices(sd)
    if not devices:
        raise NoInputDevice("no audio input device found (connect a microphone, or use --input FILE)")
    if spec is None or spec == "":
        return next((d for d in devices if d.is_default), devices[0])
    text = str(spec).strip()
    if text.isdigit():
        match = [d for d in devices if d.index == int(text)]
        if match:
            return match[0]
        raise DeviceNotFound(f"no input device with index {text} ({_known(devices)})")
    exact = [d for d in devices if d.name.lower() == text.lower()]
    partial = exact or [d for d in devices if text.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(f"{d.index}: {d.name}" for d in partial)
        raise DeviceNotFound(f"--device {text!r} matches several input devices ({names}); give the index")
    raise DeviceNotFound(f"no input device named {text!r} ({_known(devices)})")


def _known(devices: list[InputDevice]) -> str:
    return "inputs: " + ", ".join(f"{d.index}: {d.name}" for d in devices) + "; see 'livespeech devices'"


def choose_settings(device: InputDevice, sd) -> tuple[int, int]:
    """A (sample rate in Hz, channels) pair the device accepts: 16 kHz if it can, else
    its default rate, else a common rate; one channel, else two (channel 0 is used).

    Raises:
        CaptureError: the device accepts none of them.
    """
    rates = [r for r in dict.fromkeys([SAMPLE_RATE, int(round(device.default_rate)), *FALLBACK_RATES]) if r > 0]
    for channels in dict.fromkeys([1, max(1, min(2, device.channels))]):
        for rate in rates:
            try:
                sd.check_input_settings(device=device.index, channels=channels, dtype="float32", samplerate=rate)
            except Exception:  # noqa: BLE001 - PortAudioError or ValueError: refused, try the next
                continue
            return rate, channels
    raise CaptureError(f"input device {device.name!r} accepts none of the sample rates {sorted(rates)} Hz")


class Source:
    """What the worker reads from: a ring buffer at :attr:`sample_rate`, plus state.

    Attributes:
        ring: the buffer the source fills.
        sample_rate: rate of the samples in ``ring``, Hz.
        label: short description for the status bar ("USB mic (ALSA)", "talk.wav").
        ended: True when no more audio will come (a file source at its end).
        error: why the source stopped unexpectedly, for the user; None while healthy.
    """

    def __init__(self, sample_rate: int, label: str, buffer_s: float = BUFFER_S):
        self.sample_rate = int(sample_rate)
        self.label = label
        self.ring = RingBuffer(max(1, int(buffer_s * self.sample_rate)))
        self.ended = False
        self.error: str | None = None
        self._paused = threading.Event()

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def pause(self) -> None:
        """Stop delivering audio until :meth:`resume` (what arrives meanwhile is discarded)."""
        self._paused.set()

    def resume(self) -> None:
        self._paused.clear()

    @property
    def overruns(self) -> int:
        """Times audio was lost because the consumer fell behind."""
        return self.ring.overruns

    def start(self) -> None:
        """Start delivering audio. Raises CaptureError or AudioError on failure."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop delivering audio and release the device or file; idempotent."""
        raise NotImplementedError

    def check(self) -> None:
        """Look for a failure the source cannot report by itself (sets :attr:`error`)."""


class MicSource(Source):
    """A PortAudio input stream filling the ring buffer from its callback.

    Args:
        device: the input device (see :func:`resolve_device`).
        buffer_s: ring buffer length, seconds (default 5).
        block_s: PortAudio block length, seconds (default 0.02).
        sd: the sounddevice module (imported when None; tests pass a fake).
    Raises:
        PortAudioMissing: see :func:`load_sounddevice`.
        CaptureError: the device accepts no usable sample rate.
    """

    def __init__(self, device: InputDevice, buffer_s: float = BUFFER_S, block_s: float = MIC_BLOCK_S, sd=None):
        self._sd = sd or load_sounddevice()
        self.device = device
        rate, self.channels = choose_settings(device, self._sd)
        super().__init__(rate, f"{device.name} ({device.hostapi})", buffer_s)
        self.block = max(1, int(round(block_s * rate)))
        self.status_flags = 0  # callbacks that reported any PortAudio status flag
        self.input_overflows = 0  # of those, input overflows (PortAudio dropped audio)
        self._stream = None
        self._stopping = False
        self._last_callback = 0.0

    @property
    def overruns(self) -> int:
        return self.ring.overruns + self.input_overflows

    def _callback(self, indata, frames, time_info, status) -> None:
        """PortAudio's thread: count flags, copy channel 0 into the ring. Nothing else."""
        if status:
            self.status_flags += 1
            if status.input_overflow:
                self.input_overflows += 1
        self._last_callback = time.monotonic()
        if not self._paused.is_set():
            self.ring.write(indata[:, 0])

    def _finished(self) -> None:
        if not self._stopping:
            self.error = f"the input device {self.device.name!r} stopped (disconnected?)"
            self.ring.wake()

    def start(self) -> None:
        """Open and start the input stream.

        Raises:
            CaptureError: PortAudio refused to open or start it.
        """
        try:
            self._stream = self._sd.InputStream(
                device=self.device.index, channels=self.channels, samplerate=self.sample_rate, dtype="float32",
                blocksize=self.block, latency="low", callback=self._callback, finished_callback=self._finished)
            self._last_callback = time.monotonic()
            self._stream.start()
        except Exception as error:  # noqa: BLE001 - sd.PortAudioError and friends: one line for the user
            self._close()
            raise CaptureError(f"cannot open input device {self.device.name!r}: {error}") from None

    def check(self) -> None:
        """Notice a device that vanished: the stream went inactive, or no callback
        came for SILENT_DEVICE_S seconds (sets :attr:`error`)."""
        stream = self._stream  # stop() may close it meanwhile, from another thread
        if self.error or stream is None or self._stopping:
            return
        try:
            active = stream.active
        except Exception:  # noqa: BLE001 - PortAudioError on a stream closed meanwhile
            active = False
        if not active:
            self._finished()
        elif time.monotonic() - self._last_callback > SILENT_DEVICE_S:
            self.error = f"no audio from {self.device.name!r} for {SILENT_DEVICE_S:.0f} s (disconnected?)"
            self.ring.wake()

    def stop(self) -> None:
        self._stopping = True
        self._close()

    def _close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()  # discard buffers: faster than stop() on ALSA
            stream.close()
        except Exception:  # noqa: BLE001 - the device may be gone already; closing is best effort
            pass


class FileSource(Source):
    """A file delivered into the ring buffer at ``speed`` times real time, by a thread.

    Args:
        path: any audio file :func:`~livespeech.audio.read_blocks` reads (delivered at 16 kHz mono).
        speed: 1.0 for real time, 2.0 for twice as fast...; None for as fast as the
            consumer reads (waits for free space, never drops).
        loops: how many times to play the file (for long tests and benchmarks).
        buffer_s: ring buffer length, seconds (default 5).
        block_s: samples are delivered in blocks of this length, seconds (default 0.01).
    Raises:
        AudioError: the file cannot be read as audio.
        ValueError: speed or loops not positive.
    """

    def __init__(self, path: str | Path, speed: float | None = 1.0, loops: int = 1,
                 buffer_s: float = BUFFER_S, block_s: float = FILE_BLOCK_S):
        if speed is not None and speed <= 0 or loops <= 0:
            raise ValueError(f"speed and loops must be positive, got {speed}, {loops}")
        self.path = Path(path)
        self.duration_s = audio_info(self.path).duration_s  # raises AudioError early
        super().__init__(SAMPLE_RATE, self.path.name, buffer_s)
        self.speed, self.loops = speed, loops
        self.block = max(1, int(round(block_s * SAMPLE_RATE)))
        self.delivered = 0  # samples handed to the ring (dropped ones included)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="livespeech-file", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._paused.clear()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        try:
            clock = _Pacer(self.speed, self.sample_rate)
            for _ in range(self.loops):
                for block in read_blocks(self.path, block_seconds=0.5):
                    for start in range(0, len(block), self.block):
                        if not self._deliver(block[start : start + self.block], clock):
                            return
            self.ended = True
        except AudioError as error:
            self.error = f"{self.path.name}: {error}"
        finally:
            self.ring.wake()

    def _deliver(self, piece: np.ndarray, pacer: _Pacer) -> bool:
        """Write one block when it is due; False when stopped."""
        if self._paused.is_set():
            while self._paused.is_set() and not self._stop.wait(0.02):
                pass
            pacer.restart()
        if self.speed is None:
            while self.ring.free < len(piece):
                if self._stop.wait(0.005):
                    return False
        elif self._stop.wait(max(0.0, pacer.due(len(piece)))):
            return False
        if self._stop.is_set():
            return False
        self.ring.write(piece)
        self.delivered += len(piece)
        return True


def open_source(input_path: str | Path | None, device: str | None, speed: float | None = 1.0) -> Source:
    """The session's source: ``input_path`` played at ``speed`` times real time (None:
    as fast as it is read), or the microphone ``device`` (index or name; the default
    input when None). Not started.

    Raises:
        AudioError: the input file cannot be read (the message names the file).
        CaptureError: PortAudio missing, no input device, device not found or refused.
    """
    if input_path is not None:
        try:
            return FileSource(input_path, speed=speed)
        except AudioError as error:
            raise AudioError(f"{input_path}: {error}") from None
    return MicSource(resolve_device(device))


def read_source(source: Source, block_s: float = 0.05, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """The audio of a started source, as it comes, in blocks of about ``block_s``
    resampled to ``sample_rate``: mono float32, shape (n,); what is left once the
    source ends comes last.

    Raises:
        CaptureError: the source failed (its message).
    """
    resampler = StreamResampler(source.sample_rate, sample_rate)
    block = max(1, round(block_s * source.sample_rate))
    ring = source.ring
    while True:
        if ring.wait(block, READ_WAIT_S):
            out = resampler.accept(ring.read(block))
        else:
            source.check()
            if source.error:
                raise CaptureError(source.error)
            if not source.ended:
                continue
            yield np.concatenate([resampler.accept(ring.read(ring.available)), resampler.flush()])
            return
        if out.size:
            yield out


class _Pacer:
    """Wall-clock schedule of a stream: a block is due when its last sample would
    have been recorded, at ``speed`` times real time."""

    def __init__(self, speed: float | None, sample_rate: int):
        self.speed, self.sample_rate = speed, sample_rate
        self.restart()

    def restart(self) -> None:
        """Count from now (after a pause)."""
        self._t0, self._samples = time.perf_counter(), 0

    def due(self, n: int) -> float:
        """Seconds until a block of ``n`` more samples is due (<= 0: now); counts it."""
        self._samples += n
        return self._t0 + self._samples / (self.sample_rate * self.speed) - time.perf_counter()
