"""Reading audio files and resampling streams to the model's 16 kHz.

Files are read with soundfile (libsndfile: WAV, FLAC, OGG and more) in blocks, so a
file of any length uses bounded memory.  Channels are averaged to mono and samples
that are not finite are replaced by zero.

:class:`StreamResampler` resamples a stream block by block with torchaudio's
windowed-sinc resampler and gives the same samples as resampling the whole signal
at once (up to float rounding): every block starts on a multiple of the reduced
input stride and carries enough context on both sides for the filter.

Importing this module loads no torch (only resampling does), so checking a file
stays quick on the command line's usage path.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000  # Hz, the models' rate (livespeech.features.SAMPLE_RATE is this one: that module loads torch)
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1_000, 384_000  # Hz, sanity bounds for headers
_SHORT_CHUNK = re.compile(r"^(data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)  # libsndfile's log of a cut data chunk
_FILE_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


class AudioError(Exception):
    """A file cannot be read as audio; the message is the reason, for the user."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says: sample_rate in Hz, channels, frames (samples per
    channel, as many as the file holds); ``truncated``: the header promises more audio
    data than the file holds (a cut download or copy; the frames there are readable)."""

    sample_rate: int
    channels: int
    frames: int
    truncated: bool = False

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate


def _check_file(path: Path) -> None:
    """Refuse what soundfile would misreport: a missing or special file (a named pipe
    must be refused before it is opened, which would block), a folder, an empty or an
    unreadable file.

    Raises:
        AudioError: the reason, in a few words.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise AudioError("no such file") from None
    except PermissionError:
        raise AudioError("permission denied") from None
    except OSError as error:
        raise AudioError(error.strerror or str(error)) from None
    if stat.S_ISDIR(mode):
        raise AudioError("is a directory")
    for test, kind in _FILE_KINDS:
        if test(mode):
            raise AudioError(f"not a regular file ({kind})")
    try:
        os.close(os.open(path, os.O_RDONLY))
    except PermissionError:
        raise AudioError("permission denied") from None
    except OSError as error:
        raise AudioError(error.strerror or str(error)) from None
    if path.stat().st_size == 0:
        raise AudioError("empty file")


def _open(path: Path):
    import soundfile as sf

    path = Path(path)
    _check_file(path)
    try:
        handle = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as error:
        raise AudioError(f"not a readable audio file ({_reason(error)})") from None
    except OSError as error:
        raise AudioError(error.strerror or str(error)) from None
    if not MIN_SAMPLE_RATE <= handle.samplerate <= MAX_SAMPLE_RATE:
        handle.close()
        raise AudioError(f"unsupported sample rate {handle.samplerate} Hz")
    return handle


def _reason(error: Exception) -> str:
    text = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[-1].rstrip(".")


def _truncated(handle) -> bool:
    """Whether libsndfile found the data chunk shorter than the header says."""
    try:
        log = handle.extra_info
    except Exception:  # noqa: BLE001 - the log is a nicety; no log, no warning
        return False
    return any(int(found) < int(declared) for _, declared, found in _SHORT_CHUNK.findall(log))


def audio_info(path: Path) -> AudioInfo:
    """Sample rate, channels and length of an audio file, and whether it is truncated.

    Raises:
        AudioError: missing, not a regular file, a folder, empty, permission denied,
            or not audio.
    """
    with _open(path) as f:
        return AudioInfo(f.samplerate, f.channels, f.frames, _truncated(f))


def read_blocks(path: Path, block_seconds: float = 10.0, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Mono float32 audio at ``sample_rate``, in blocks of about ``block_seconds``.

    A WAV whose header promises more data than it holds gives the frames it holds
    (:func:`audio_info` tells; the command line warns).

    Raises:
        AudioError: missing, special, empty, unreadable or zero-length file, or audio
            data that cannot be decoded (raised before the first block for header
            problems, during iteration for data errors).
    """
    import soundfile as sf

    handle = _open(path)
    with handle:
        if handle.frames == 0:
            raise AudioError("no audio samples")
        resampler = StreamResampler(handle.samplerate, sample_rate)
        block = max(1, int(block_seconds * handle.samplerate))
        got_any = False
        while True:
            try:
                data = handle.read(block, dtype="float32", always_2d=True)  # (n, channels)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(f"cannot read audio data ({_reason(error)})") from None
            if data.shape[0] == 0:
                break
            got_any = True
            mono = np.nan_to_num(data.mean(axis=1), nan=0.0, posinf=0.0, neginf=0.0)
            out = resampler.accept(mono)
            if out.size:
                yield out
        if not got_any:
            raise AudioError("no audio samples (truncated file?)")
        tail = resampler.flush()
        if tail.size:
            yield tail


def read_audio(path: Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A whole file as mono float32 at ``sample_rate``, shape (N,).

    Raises:
        AudioError: see :func:`read_blocks`.
    """
    blocks = list(read_blocks(path, sample_rate=sample_rate))
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)


class StreamResampler:
    """Resample a stream from ``orig_rate`` to ``new_rate`` Hz chunk by chunk.

    Uses ``torchaudio.transforms.Resample`` (windowed sinc, Hann window, 6 zero
    crossings). Output of :meth:`accept` is delayed by a few milliseconds of context;
    :meth:`flush` returns the rest at the end of the stream.  The total output has
    ``ceil(N * new_rate / orig_rate)`` samples for N input samples.
    """

    def __init__(self, orig_rate: int, new_rate: int = SAMPLE_RATE):
        if orig_rate <= 0 or new_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_rate}, {new_rate}")
        self.orig_rate, self.new_rate = int(orig_rate), int(new_rate)
        g = math.gcd(self.orig_rate, self.new_rate)
        self._a, self._b = self.orig_rate // g, self.new_rate // g  # input and output stride
        self._transform = None
        if self._a != self._b:
            import torchaudio

            self._transform = torchaudio.transforms.Resample(self._a, self._b)
            width = math.ceil(6 * self._a / (min(self._a, self._b) * 0.99))  # torchaudio's kernel half-width
            self._context = self._a * (math.ceil(width / self._a) + 2)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._buffer = np.zeros(self._context if self._transform else 0, np.float32)  # left zero padding

    def _resample(self, segment: np.ndarray, trim_left: int, count: int) -> np.ndarray:
        import torch  # loaded by torchaudio already

        with torch.inference_mode():
            out = self._transform(torch.from_numpy(np.ascontiguousarray(segment)))
        return out[trim_left : trim_left + count].numpy()

    def accept(self, samples: np.ndarray) -> np.ndarray:
        """Add input samples, shape (n,); return the output samples now complete, shape (m,)."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._transform is None:
            return samples.copy()
        self._buffer = np.concatenate([self._buffer, samples])
        C = self._context
        ready = (len(self._buffer) - 2 * C) // self._a * self._a  # input samples with full context
        if ready <= 0:
            return np.zeros(0, np.float32)
        out = self._resample(self._buffer[: ready + 2 * C], C // self._a * self._b, ready // self._a * self._b)
        self._buffer = self._buffer[ready:]
        return out

    def flush(self) -> np.ndarray:
        """Resample what is left at the end of the stream, shape (m,); then reset."""
        if self._transform is None:
            return np.zeros(0, np.float32)
        C = self._context
        rest = len(self._buffer) - C
        count = math.ceil(rest * self._b / self._a)
        pad = (-(len(self._buffer) + C)) % self._a + C
        segment = np.concatenate([self._buffer, np.zeros(pad, np.float32)])
        out = self._resample(segment, C // self._a * self._b, count) if count > 0 else np.zeros(0, np.float32)
        self.reset()
        return out
