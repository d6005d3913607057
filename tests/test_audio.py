import os

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from livespeech.audio import AudioError, StreamResampler, audio_info, read_audio, read_blocks
from tests.conftest import speechlike


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_stream_resampler_equals_whole_signal(rate):
    rng = np.random.default_rng(rate)
    x = rng.standard_normal(rate + 77).astype(np.float32) * 0.1
    ref = torchaudio.functional.resample(torch.from_numpy(x), rate, 16000).numpy()
    r, outs, i = StreamResampler(rate), [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        outs.append(r.accept(x[i : i + n]))
        i += n
    outs.append(r.flush())
    y = np.concatenate(outs)
    assert len(y) == len(ref)
    np.testing.assert_allclose(y, ref, atol=2e-5)


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "PCM_U8"])
@pytest.mark.parametrize("channels", [1, 2, 6])
def test_reads_int_float_and_multichannel_wav(write_audio, subtype, channels):
    mono = speechlike(0.5, 22050)
    data = np.stack([mono] * channels, axis=1) if channels > 1 else mono
    path = write_audio(f"x{channels}{subtype}.wav", data, 22050, subtype)
    out = read_audio(path)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 8000) <= 1
    ref = read_audio(write_audio("ref.wav", mono, 22050, "FLOAT"))
    np.testing.assert_allclose(out, ref, atol=0.02)


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_reads_flac_and_ogg(write_audio, fmt):
    path = write_audio(f"x.{fmt}", speechlike(0.4, 16000), 16000)
    assert abs(len(read_audio(path)) - 6400) <= 1


def test_long_file_is_read_in_blocks(write_audio):
    path = write_audio("long.wav", speechlike(25, 8000), 8000)
    blocks = list(read_blocks(path, block_seconds=5))
    assert len(blocks) >= 5
    assert sum(len(b) for b in blocks) == 25 * 16000


@pytest.mark.parametrize("rate, channels", [(16000, 1), pytest.param(44100, 2, marks=pytest.mark.slow)])  # 0.2 s, 3-5 s
def test_reading_a_ten_minute_file_block_by_block_keeps_memory_bounded(tmp_path, rate, channels):
    """Peak memory of reading, as tracemalloc sees it (numpy buffers; not the torch
    tensors of the resampler, which live only within a block), stays far below the
    decoded file, and every sample arrives."""
    import tracemalloc

    minutes, path = 10, tmp_path / "long.wav"
    block = speechlike(10.0, rate)
    with sf.SoundFile(path, "w", rate, channels, "PCM_16") as f:  # written block by block too
        for _ in range(minutes * 6):
            f.write(np.repeat(block[:, None], channels, axis=1))
    decoded_bytes = minutes * 60 * rate * channels * 4  # the whole file as float32
    tracemalloc.start()
    try:
        total = sum(len(b) for b in read_blocks(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == minutes * 60 * 16000
    assert peak < decoded_bytes / 8, f"peak {peak / 1e6:.1f} MB for {decoded_bytes / 1e6:.0f} MB decoded"


def test_nan_and_inf_become_zero(write_audio):
    x = speechlike(0.2)
    x[100:200] = np.nan
    x[300] = np.inf
    out = read_audio(write_audio("nan.wav", x, 16000, "FLOAT"))
    assert np.isfinite(out).all()


def test_info(write_audio):
    info = audio_info(write_audio("i.wav", np.zeros((4410, 2), np.float32), 44100))
    assert (info.sample_rate, info.channels, info.frames) == (44100, 2, 4410)
    assert info.duration_s == pytest.approx(0.1)


def test_bad_files_raise_audio_error(tmp_path, write_audio):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio\n" * 40)
    good = write_audio("good.wav", speechlike(0.3), 16000)
    (tmp_path / "trunc.wav").write_bytes(good.read_bytes()[:30])
    zero = tmp_path / "zero.wav"
    sf.write(zero, np.zeros(0, np.float32), 16000)
    for name, reason in [("empty.wav", "empty"), ("text.wav", "not a readable"), ("trunc.wav", "not a readable|no audio|cannot read"),
                         ("zero.wav", "no audio"), ("missing.wav", "no such file")]:
        with pytest.raises(AudioError, match=reason):
            read_audio(tmp_path / name)
    with pytest.raises(AudioError, match="directory"):
        read_audio(tmp_path)


def test_sample_rate_is_the_models():
    from livespeech import audio, features

    assert audio.SAMPLE_RATE == features.SAMPLE_RATE


def test_named_pipe_is_refused_without_opening_it(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: it must be refused from
    its stat alone (this test would hang otherwise), and not called an empty file."""
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    for read in (audio_info, read_audio):
        with pytest.raises(AudioError, match=r"^not a regular file \(a named pipe\)$"):
            read(fifo)


def test_unreadable_file_is_permission_denied(write_audio, monkeypatch):
    """Not soundfile's "System error". Root reads a chmod 000 file, so the refusal is
    simulated; the real one is tested below for other users."""
    path = write_audio("locked.wav", speechlike(0.2), 16000)
    real_open = os.open

    def refuse(name, flags, *args, **kwargs):
        if os.fspath(name) == str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(name, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(AudioError, match="^permission denied$"):
        audio_info(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads chmod 000 files")
def test_chmod_000_file_is_permission_denied(write_audio):
    path = write_audio("locked.wav", speechlike(0.2), 16000)
    path.chmod(0)
    try:
        with pytest.raises(AudioError, match="^permission denied$"):
            read_audio(path)
    finally:
        path.chmod(0o644)


def test_truncated_wav_reads_what_is_there_and_says_so(write_audio, tmp_path):
    good = write_audio("good.wav", speechlike(1.0), 16000, "PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: 44 + 2 * 8000])  # header + half the data
    info = audio_info(cut)
    assert info.truncated and info.frames == 8000
    assert len(read_audio(cut)) == 8000
    assert not audio_info(good).truncated
