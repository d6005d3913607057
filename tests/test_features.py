import numpy as np
import pytest
import torch

from livespeech.features import FRAMES_PER_SECOND, FeatureConfig, LogMel, StreamingLogMel, exact_div, log_mel
from tests.conftest import speechlike


def test_constants_derive():
    assert FRAMES_PER_SECOND == 100
    with pytest.raises(ValueError):
        exact_div(10, 3)


@pytest.mark.parametrize("n", [0, 1, 159, 160, 399, 400, 401, 16000, 16123])
def test_offline_frame_count(n):
    assert log_mel(torch.zeros(n)).shape == (n // 160, 80)


@pytest.mark.parametrize("seed", range(6))
def test_streaming_equals_offline_for_random_chunkings(seed):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(speechlike(1.37, seed=seed))
    offline = log_mel(x)
    stream = StreamingLogMel()
    parts, i = [], 0
    while i < len(x):
        n = int(rng.choice([1, 7, 160, 333, 1600, 4000]))
        parts.append(stream.accept(x[i : i + n]))
        i += n
    parts.append(stream.flush())
    streamed = torch.cat(parts)
    assert streamed.shape == offline.shape
    torch.testing.assert_close(streamed, offline, atol=1e-4, rtol=1e-5)


def test_flush_resets_for_a_new_stream():
    x = torch.from_numpy(speechlike(0.5))
    stream = StreamingLogMel()
    first = torch.cat([stream.accept(x), stream.flush()])
    second = torch.cat([stream.accept(x), stream.flush()])
    torch.testing.assert_close(first, second)


def test_log_mel_peaks_at_tone_band():
    t = torch.arange(16000) / 16000
    feats = log_mel(torch.sin(2 * torch.pi * 1000 * t))
    low = log_mel(torch.sin(2 * torch.pi * 200 * t))
    assert feats.mean(0).argmax() > low.mean(0).argmax()


def test_silence_is_finite():
    assert torch.isfinite(log_mel(torch.zeros(1600))).all()


def test_bad_config():
    with pytest.raises(ValueError):
        FeatureConfig(hop_length=500, n_fft=400)


def test_module_buffers_move_with_to():
    m = LogMel()
    assert {n for n, _ in m.named_buffers()} == {"window", "fbanks"}
