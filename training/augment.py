"""Waveform and feature augmentation.

Waveform functions take and return float32 numpy audio at 16 kHz, shape (N,), and
draw their randomness from the ``numpy.random.Generator`` they are given, so a corpus
is reproducible from its seed.  :class:`NoiseFloor`, :func:`frequency_warp` and
:func:`spec_augment` work on batched log-mel features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from livespeech.features import SAMPLE_RATE


def colored_noise(n: int, rng: np.random.Generator, color: str = "white") -> np.ndarray:
    """Unit-RMS noise of ``n`` samples with a white (flat), pink (1/f) or brown (1/f^2) spectrum."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.shape[0]) + 1.0
    exponent = {"white": 0.0, "pink": 0.5, "brown": 1.0}[color]
    noise = np.fft.irfft(spectrum / freqs**exponent, n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float, noise: np.ndarray | None = None) -> np.ndarray:
    """Add noise at a signal-to-noise ratio of ``snr_db`` dB (speech power over noise power).

    Args:
        x: audio, shape (N,).
        noise: noise to add (tiled or cut to N samples); coloured noise when None.
    """
    if noise is None:
        noise = colored_noise(len(x), rng, str(rng.choice(["white", "pink", "brown"])))
    else:
        noise = np.resize(noise, len(x)).astype(np.float32)
    signal_power = np.mean(x**2) + 1e-10
    noise_power = np.mean(noise**2) + 1e-10
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (x + scale * noise).astype(np.float32)


def room_impulse_response(rng: np.random.Generator, rt60_s: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A synthetic room impulse response: a direct path and exponentially decaying
    noise whose energy falls 60 dB in ``rt60_s`` seconds (Sabine's RT60)."""
    n = int(rt60_s * sample_rate)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s)  # ln(1000) = 6.9078: 60 dB in amplitude
    tail[: int(0.002 * sample_rate)] = 0.0  # 2 ms gap before the first reflections
    rir = tail * rng.uniform(0.1, 0.5)
    rir[0] = 1.0
    return (rir / np.sqrt(np.sum(rir**2))).astype(np.float32)


def reverberate(x: np.ndarray, rng: np.random.Generator, rt60_s: float) -> np.ndarray:
    """Convolve with a synthetic room impulse response; keeps length and peak level."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(x, room_impulse_response(rng, rt60_s))[: len(x)]
    return (wet * (np.max(np.abs(x)) / (np.max(np.abs(wet)) + 1e-9))).astype(np.float32)


def telephone(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Telephone channel: down to 8 kHz (and back), 300-3400 Hz band, sometimes G.711 mu-law."""
    import torchaudio.functional as AF

    y = torch.from_numpy(x)
    y = AF.resample(y, SAMPLE_RATE, 8000)
    if rng.random() < 0.6:
        y = AF.highpass_biquad(y, 8000, 300.0)
        y = AF.lowpass_biquad(y, 8000, 3400.0)
    if rng.random() < 0.5:
        peak = float(y.abs().max()) + 1e-9
        y = AF.mu_law_decoding(AF.mu_law_encoding(y / peak, 256), 256) * peak
    return AF.resample(y, 8000, SAMPLE_RATE).numpy().astype(np.float32)


def set_peak(x: np.ndarray, peak_dbfs: float) -> np.ndarray:
    """Scale so the absolute peak is ``peak_dbfs`` dB relative to full scale."""
    return (x * (10 ** (peak_dbfs / 20) / (np.max(np.abs(x)) + 1e-9))).astype(np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Which waveform augmentations run, and how often (each a probability in [0, 1]).

    Args:
        p_speed: speed perturbation by resampling (Ko et al., 2015), factor in ``speed_range``.
        p_reverb: reverberation with a synthetic room impulse response, RT60 in ``rt60_range`` s.
        p_telephone: telephone channel (8 kHz, 300-3400 Hz, sometimes mu-law).
        p_noise: additive noise at an SNR in ``snr_range`` dB (coloured noise, or a
            random excerpt of the given noise recordings).
        p_gain: random peak level in ``peak_range`` dBFS (otherwise the level is kept).
    """

    p_speed: float = 0.0
    speed_range: tuple[float, float] = (0.9, 1.1)
    p_reverb: float = 0.3
    rt60_range: tuple[float, float] = (0.15, 0.7)
    p_telephone: float = 0.3
    p_noise: float = 0.4
    snr_range: tuple[float, float] = (5.0, 30.0)
    p_gain: float = 1.0
    peak_range: tuple[float, float] = (-30.0, -1.0)


# Channel augmentation of the oversampled real-speech copies (training.data.AugmentedCopy):
# speed is applied apart, every effect more often than the defaults.
HARD_AUGMENT = AugmentConfig(p_speed=0.0, p_reverb=0.4, p_telephone=0.25, p_noise=0.5, p_gain=1.0)


def speed_perturb(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and formants move with it), by resampling."""
    import torchaudio.functional as AF

    new_rate = max(1, round(100 / factor))
    return AF.resample(torch.from_numpy(np.ascontiguousarray(x)), 100, new_rate).numpy().astype(np.float32)


def augment_waveform(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig(),
                     noises: list[np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
    """Apply speed, reverberation, telephone band, noise and gain, each with its probability.

    Args:
        x: audio at 16 kHz, shape (N,).
        noises: noise recordings to draw from (coloured noise when None or empty).
    Returns:
        (audio, effects): the augmented audio, shape (N',) (N' differs from N only
        under speed perturbation), and the names of the effects applied.
    """
    effects = []
    if rng.random() < config.p_speed:
        x = speed_perturb(x, float(rng.uniform(*config.speed_range)))
        effects.append("speed")
    if rng.random() < config.p_reverb:
        x = reverberate(x, rng, rt60_s=float(rng.uniform(*config.rt60_range)))
        effects.append("reverb")
    if rng.random() < config.p_telephone:
        x = telephone(x, rng)
        effects.append("telephone")
    if rng.random() < config.p_noise:
        noise = None
        if noises:
            source = noises[int(rng.integers(len(noises)))]
            start = int(rng.integers(max(1, len(source) - len(x))))
            noise = source[start : start + len(x)]
        x = add_noise(x, rng, float(rng.uniform(*config.snr_range)), noise)
        effects.append("noise")
    if rng.random() < config.p_gain:
        x = set_peak(x, float(rng.uniform(*config.peak_range)))
        effects.append("gain")
    return x, effects


def frequency_warp(features: torch.Tensor, max_warp: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Vocal tract length perturbation in the log-mel domain (after Jaitly & Hinton, 2013).

    Each utterance's bands are resampled along the frequency axis by a factor
    ``alpha`` drawn uniformly from ``[1 - max_warp, 1 + max_warp]``: band ``f`` takes
    the (linearly interpolated) value of band ``f / alpha``, so ``alpha > 1`` moves
    formants up as a shorter vocal tract would. Bands past the top copy the top band.

    Args:
        features: raw (unnormalised) log-mel, shape (B, T, F).
        max_warp: largest relative warp, e.g. 0.15.
    Returns:
        warped features, shape (B, T, F).
    """
    B, T, F = features.shape
    alpha = 1 + (torch.rand(B, generator=generator) * 2 - 1) * max_warp  # (B,)
    source = (torch.arange(F, dtype=torch.float32)[None, :] / alpha[:, None]).clamp(0, F - 1)  # (B, F)
    low = source.floor().long()
    high = (low + 1).clamp(max=F - 1)
    frac = (source - low).to(features.dtype)[:, None, :]  # (B, 1, F)
    gather = lambda index: torch.gather(features, 2, index.to(features.device)[:, None, :].expand(B, T, F))  # noqa: E731
    return gather(low) * (1 - frac.to(features.device)) + gather(high) * frac.to(features.device)


def mix_log_mel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Log-mel of the sum of two signals from their log-mels (any equal shapes): mel
    powers add, up to the cross term of the two signals, whose mean is zero when they
    are independent; the front end's ``LOG_FLOOR`` is counted once."""
    from livespeech.features import LOG_FLOOR

    return torch.log((a.exp() + b.exp() - LOG_FLOOR).clamp_min(LOG_FLOOR))


class NoiseFloor:
    """Put utterances on a bed of low-level noise, with a stretch of that noise alone
    before (lead-in) and after them, in the log-mel domain of cached features.

    Synthetic speech starts at once and rests on digital silence; a microphone never
    gives either.  Without this the model mistakes a few hundred milliseconds of quiet
    hiss before speech for speech: 0.3 s of white noise at -67 dBFS before each of
    slt's sentences nearly doubled the character error rate of the model it was found on.

    The noise is real audio: white, pink and brown noise (:func:`colored_noise`, unit
    RMS, ``pool_s`` seconds of each, drawn once from ``seed``) turned into mel power by
    the model's own front end.  Each utterance takes a random stretch of one colour at a
    random RMS level, mixed in the power domain as :func:`mix_log_mel` does.

    Args:
        features: the front end's :class:`livespeech.features.FeatureConfig`.
        p: probability per utterance.
        level_db: (lowest, highest) noise RMS in dBFS.
        max_lead_s, max_tail_s: longest noise-only stretch before and after the speech, seconds.
        pool_s: seconds of noise of each colour to draw stretches from.
    """

    COLORS = ("white", "pink", "brown")

    def __init__(self, features, p: float, level_db: tuple[float, float] = (-90.0, -45.0),
                 max_lead_s: float = 1.0, max_tail_s: float = 0.3, pool_s: float = 60.0, seed: int = 0):
        from livespeech.features import log_mel

        if not 0 <= p <= 1 or level_db[0] > level_db[1] or min(max_lead_s, max_tail_s) < 0 or pool_s <= 0:
            raise ValueError("noise floor: p must be in [0, 1], the lowest level at most the highest, durations >= 0")
        self.p, self.level_db = p, level_db
        self.max_lead = round(max_lead_s / features.frame_seconds)
        self.max_tail = round(max_tail_s / features.frame_seconds)
        rng = np.random.default_rng(seed)
        n = round(pool_s * features.sample_rate)
        with torch.no_grad():  # mel power of unit-RMS noise, (colours, frames, n_mels)
            self.pool = torch.stack([log_mel(torch.from_numpy(colored_noise(n, rng, c)), features).exp() for c in self.COLORS])

    def __call__(self, features: torch.Tensor, lengths: torch.Tensor,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Args:
            features: raw log-mel, shape (B, T, F), zero past each length.
            lengths: valid frames per utterance, shape (B,).
            generator: torch generator of the draws (the global one when None).
        Returns:
            (features (B, T', F) zero past each new length, new lengths (B,)); utterances
            not drawn are unchanged.
        """
        from livespeech.features import LOG_FLOOR

        B, _, F = features.shape
        chosen = torch.rand(B, generator=generator) < self.p
        if not chosen.any():
            return features, lengths
        lead = torch.randint(0, self.max_lead + 1, (B,), generator=generator) * chosen
        tail = torch.randint(0, self.max_tail + 1, (B,), generator=generator) * chosen
        color = torch.randint(0, len(self.COLORS), (B,), generator=generator)
        low, high = self.level_db
        power = 10 ** ((low + (high - low) * torch.rand(B, generator=generator)) / 10)  # mean square, full scale = 1
        offset = torch.randint(0, self.pool.shape[1], (B,), generator=generator)
        new_lengths = lengths + lead + tail
        out = features.new_zeros(B, int(new_lengths.max()), F)
        for b in range(B):
            length, start, total = int(lengths[b]), int(lead[b]), int(new_lengths[b])
            speech = features[b, :length]
            if chosen[b]:
                frames = (offset[b] + torch.arange(total)) % self.pool.shape[1]  # the pool wraps around for long utterances
                noise = power[b] * (self.pool[color[b], frames] - LOG_FLOOR)  # mel power
                out[b, :total] = torch.log(noise + LOG_FLOOR)
                speech = mix_log_mel(speech, out[b, start : start + length])
            out[b, start : start + length] = speech
        return out, new_lengths


def spec_augment(
    features: torch.Tensor,
    lengths: torch.Tensor,
    freq_masks: int = 2,
    freq_width: int = 15,
    time_masks: int = 2,
    time_fraction: float = 0.05,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment frequency and time masking (Park et al., 2019), masks set to 0
    (the mean of normalised features).

    Args:
        features: normalised log-mel, shape (B, T, F); modified copy returned.
        lengths: valid frames per utterance, shape (B,).
        freq_masks, freq_width: number of frequency masks and their widest width (bands).
        time_masks, time_fraction: number of time masks and their widest width as a
            fraction of the utterance's length.
    Returns:
        masked features, shape (B, T, F).
    """
    out = features.clone()
    B, T, F = out.shape

    def randint(high: int) -> int:
        return int(torch.randint(0, max(high, 1), (1,), generator=generator))

    for b in range(B):
        for _ in range(freq_masks):
            width = randint(freq_width + 1)
            start = randint(F - width + 1)
            out[b, :, start : start + width] = 0.0
        length = int(lengths[b])
        for _ in range(time_masks):
            width = randint(int(time_fraction * length) + 1)
            start = randint(length - width + 1)
            out[b, start : start + width, :] = 0.0
    return out
