"""Fuzzing the audio reader: whatever bytes a file holds, the result is audio or one
AudioError, never another exception or a hang."""

import io
import struct

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livespeech.audio import AudioError, read_audio


def _valid_wav(seconds=0.05, rate=16000, channels=1, subtype="PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros((int(seconds * rate), channels), np.float32), rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def _read(tmp_path, data: bytes):
    path = tmp_path / "fuzz.wav"
    path.write_bytes(data)
    try:
        out = read_audio(path)
    except AudioError as error:
        assert str(error)
        return None
    assert out.dtype == np.float32 and out.ndim == 1 and np.isfinite(out).all()
    return out


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes(tmp_path, data):
    _read(tmp_path, data)


@SETTINGS
@given(st.integers(0, 200))
def test_truncated_headers(tmp_path, cut):
    _read(tmp_path, _valid_wav()[:cut])


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_wrong_sizes_in_header(tmp_path, riff_size, data_size):
    wav = bytearray(_valid_wav())
    wav[4:8] = struct.pack("<I", riff_size)
    at = wav.index(b"data") + 4
    wav[at : at + 4] = struct.pack("<I", data_size)
    _read(tmp_path, bytes(wav))


@SETTINGS
@given(st.sampled_from([8000, 11025, 16000, 22050, 44100, 48000, 96000]), st.integers(1, 8),
       st.sampled_from(["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"]))
def test_rates_channels_and_sample_formats(tmp_path, rate, channels, subtype):
    out = _read(tmp_path, _valid_wav(0.05, rate, channels, subtype))
    assert out is not None and abs(len(out) - 800) <= 1


def test_full_scale_clipping_and_nonfinite(tmp_path):
    x = np.ones(1600, np.float32) * 4.0
    x[::7] = -np.inf
    x[::11] = np.nan
    buffer = io.BytesIO()
    sf.write(buffer, x, 16000, format="WAV", subtype="FLOAT")
    out = _read(tmp_path, buffer.getvalue())
    assert out is not None and np.isfinite(out).all()
