"""Shared fixtures: a small random-weight model folder and audio file writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from livespeech.bundle import load_bundle, save_bundle
from livespeech.features import FeatureConfig
from livespeech.model import CTCModel, ModelDims
from livespeech.text import Vocabulary

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


def make_model(seed: int = 0, **dims) -> CTCModel:
    torch.manual_seed(seed)
    model = CTCModel(ModelDims(**{"hidden": 32, "layers": 2, **dims}))
    model.feature_mean.uniform_(-8, -4)
    model.feature_std.uniform_(2, 4)
    return model.eval()


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A valid model folder with a small random model."""
    return save_bundle(tmp_path / "tiny", make_model(), FeatureConfig(), Vocabulary(), {"name": "tiny", "description": "test"}, "# tiny\n")


@pytest.fixture
def tiny_bundle(tiny_model_dir):
    return load_bundle(tiny_model_dir)


@pytest.fixture
def tiny_conv_bundle(tmp_path):
    """A small random model with the conv front end (40 ms steps), loaded from its folder."""
    model = make_model(stack=4, frontend="conv", channels=8)
    return load_bundle(save_bundle(tmp_path / "tiny-conv", model, FeatureConfig(), Vocabulary(), {"name": "tiny-conv", "description": "test"}, "# tiny\n"))


def speechlike(seconds: float, sample_rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Noise bursts and pauses: enough structure to exercise features and models."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    envelope = (np.sin(np.arange(n) / sample_rate * 2 * np.pi * 1.3) > 0).astype(np.float32)
    tone = np.sin(np.arange(n) / sample_rate * 2 * np.pi * 220).astype(np.float32)
    return (0.3 * envelope * (tone + 0.3 * rng.standard_normal(n))).astype(np.float32)


@pytest.fixture
def write_audio(tmp_path):
    def write(name: str, data: np.ndarray, sample_rate: int = 16000, subtype: str | None = None) -> Path:
        path = tmp_path / name
        sf.write(path, data, sample_rate, subtype=subtype)
        return path

    return write
