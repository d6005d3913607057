"""Log-mel features, computed the same way offline and in a stream.

Frame ``i`` of a signal covers samples ``[i * hop_length, i * hop_length + n_fft)``.
There is no padding on the left; at the end of a stream the signal is padded with
``n_fft - hop_length`` zeros, so a signal of ``N`` samples gives exactly
``N // hop_length`` frames.  :class:`StreamingLogMel` keeps the samples of the
frames it cannot finish yet, so any split of the input into chunks gives the
frames of :func:`log_mel` on the whole signal.

Shape legend: N samples, T frames, F = n_mels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from livespeech.audio import SAMPLE_RATE  # 16 kHz, the models' rate: defined there, where importing it loads no torch

N_FFT = 400  # 25 ms window at 16 kHz
HOP_LENGTH = 160  # 10 ms hop at 16 kHz
N_MELS = 80
LOG_FLOOR = 1e-6  # added to the mel power before the log, so silence stays finite


def exact_div(x: int, y: int) -> int:
    """Return ``x // y``, raising ``ValueError`` when ``y`` does not divide ``x``."""
    if x % y:
        raise ValueError(f"{x} is not divisible by {y}")
    return x // y


FRAMES_PER_SECOND = exact_div(SAMPLE_RATE, HOP_LENGTH)  # 100 frames/s


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of the log-mel front end; stored in every model's config.json.

    Args:
        sample_rate: input sample rate in Hz (default 16000).
        n_fft: window and FFT length in samples (default 400, 25 ms).
        hop_length: hop between frames in samples (default 160, 10 ms).
        n_mels: number of mel bands (default 80).
        f_min: lowest band edge in Hz (default 0).
        f_max: highest band edge in Hz (default sample_rate / 2).
    """

    sample_rate: int = SAMPLE_RATE
    n_fft: int = N_FFT
    hop_length: int = HOP_LENGTH
    n_mels: int = N_MELS
    f_min: float = 0.0
    f_max: float | None = None

    # Bounds of a sane front end (a config.json is untrusted input): 8-96 kHz audio,
    # windows up to 0.25 s at 96 kHz, up to 512 bands.
    LIMITS = {"sample_rate": (8_000, 96_000), "n_fft": (16, 24_000), "hop_length": (1, 24_000), "n_mels": (1, 512)}

    def __post_init__(self) -> None:
        for name, (low, high) in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
        if not self.hop_length <= self.n_fft:
            raise ValueError(f"need hop_length <= n_fft, got {self.hop_length}, {self.n_fft}")
        nyquist = self.sample_rate / 2
        f_max = nyquist if self.f_max is None else self.f_max
        for name, value in (("f_min", self.f_min), ("f_max", f_max)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= nyquist:
                raise ValueError(f"{name} must be a number of Hz in [0, {nyquist:g}], got {value!r}")
        if not self.f_min < f_max:
            raise ValueError(f"need f_min < f_max, got {self.f_min!r}, {f_max!r}")

    @property
    def frame_seconds(self) -> float:
        """Hop between frames in seconds."""
        return self.hop_length / self.sample_rate

    def to_dict(self) -> dict:
        return asdict(self)


class LogMel(torch.nn.Module):
    """Natural-log mel power spectrogram of complete frames.

    The Hann window and the mel filterbank (HTK mel scale, as computed by
    ``torchaudio.functional.melscale_fbanks``) are buffers, so ``.to(device)`` moves them.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig()):
        super().__init__()
        import torchaudio  # deferred: importing torchaudio costs start-up time

        self.config = config
        n_freqs = config.n_fft // 2 + 1
        fbanks = torchaudio.functional.melscale_fbanks(
            n_freqs,
            f_min=config.f_min,
            f_max=config.f_max if config.f_max is not None else config.sample_rate / 2,
            n_mels=config.n_mels,
            sample_rate=config.sample_rate,
        )
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)
        self.register_buffer("fbanks", fbanks, persistent=False)  # (n_freqs, n_mels)

    def frames(self, samples: torch.Tensor) -> torch.Tensor:
        """Log-mel of every complete frame of ``samples``.

        Args:
            samples: float32 audio, shape (N,).
        Returns:
            log-mel, shape (T, n_mels) with ``T = 1 + (N - n_fft) // hop_length``
            (0 when N < n_fft).
        """
        n_fft, hop = self.config.n_fft, self.config.hop_length
        if samples.shape[-1] < n_fft:
            return samples.new_zeros((0, self.config.n_mels))
        framed = samples.unfold(-1, n_fft, hop) * self.window  # (T, n_fft)
        power = torch.fft.rfft(framed).abs().square()  # (T, n_freqs)
        return torch.log(power @ self.fbanks + LOG_FLOOR)  # (T, n_mels)


def log_mel(samples: torch.Tensor, config: FeatureConfig = FeatureConfig(), module: LogMel | None = None) -> torch.Tensor:
    """Offline log-mel of a whole signal, end padding included.

    Args:
        samples: float32 audio at ``config.sample_rate``, shape (N,).
        config: front-end parameters.
        module: a :class:`LogMel` to reuse (built from ``config`` when None).
    Returns:
        log-mel, shape (N // hop_length, n_mels).
    """
    module = module or LogMel(config)
    padded = torch.nn.functional.pad(samples, (0, config.n_fft - config.hop_length))
    return module.frames(padded)


class StreamingLogMel:
    """Chunk-by-chunk log-mel front end equal to :func:`log_mel` on the whole signal.

    Call :meth:`accept` with each chunk of samples and :meth:`flush` at the end of the
    stream; :meth:`reset` starts a new stream.
    """

    def __init__(self, config: FeatureConfig = FeatureConfig(), module: LogMel | None = None):
        self.config = config
        self.module = module or LogMel(config)
        self._pending = torch.zeros(0)  # samples of frames not yet complete

    def reset(self) -> None:
        """Forget buffered samples; the next chunk starts a new signal."""
        self._pending = torch.zeros(0)

    def accept(self, chunk: torch.Tensor) -> torch.Tensor:
        """Add samples and return the frames they complete.

        Args:
            chunk: float32 audio, shape (n,), any n >= 0.
        Returns:
            log-mel of the newly complete frames, shape (t, n_mels).
        """
        buffer = torch.cat([self._pending, chunk.to(torch.float32)])
        out = self.module.frames(buffer)
        self._pending = buffer[out.shape[0] * self.config.hop_length :]
        return out

    def flush(self) -> torch.Tensor:
        """Pad the end of the stream and return its last frames, shape (t, n_mels); then reset."""
        tail = torch.zeros(self.config.n_fft - self.config.hop_length)
        out = self.accept(tail)
        self.reset()
        return out
