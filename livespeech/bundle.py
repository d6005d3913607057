"""Model folders: ``models/NAME/`` with ``config.json``, ``model.safetensors`` and
``MODEL_CARD.md``, and optionally a word language model and its lexicon, listed in
``config.json`` (:mod:`livespeech.lm`).

Only JSON and safetensors are read, never pickles.  Loading checks the config's
format version and fields, and every tensor's name, shape and dtype against the
model the config describes before any weight is used.  The language model files are
checked for presence and size; they are read only when a beam search is built
(:func:`livespeech.beam.word_decoder_for`), and a problem with them is kept in
:attr:`Bundle.language_model_problem` rather than raised, since greedy decoding
does not need them.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch

from livespeech.features import FeatureConfig
from livespeech.lm import LanguageModelError, LanguageModelFiles, language_model_files
from livespeech.model import CTCModel, ModelDims
from livespeech.text import Vocabulary

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "MODEL_CARD.md"
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024  # refuse absurd files before reading them


class ModelError(Exception):
    """A model folder is missing, incomplete or corrupt; the message says why."""


@dataclass
class Bundle:
    """A loaded model: the network in eval mode, its front-end parameters, vocabulary
    and the rest of its config (name, metrics, training data, license); its language
    model files when it has checked ones, else None and, when they are broken, why."""

    name: str
    path: Path
    model: CTCModel
    features: FeatureConfig
    vocabulary: Vocabulary
    config: dict
    language_model: LanguageModelFiles | None = None
    language_model_problem: str | None = None

    @property
    def seconds_per_step(self) -> float:
        """Duration of one output step in seconds."""
        return self.features.frame_seconds * self.model.dims.stack


def _dataclass_from(cls, data, what: str):
    if not isinstance(data, dict):
        raise ModelError(f"config.json: '{what}' must be an object")
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ModelError(f"config.json: unknown {what} field(s) {sorted(unknown)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as error:
        raise ModelError(f"config.json: bad {what}: {error}") from None


def read_config(folder: Path) -> dict:
    """The parsed and checked ``config.json`` of a model folder.

    Raises:
        ModelError: missing folder or file, invalid JSON, wrong format version or fields.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"no model folder at {folder}")
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: must be a JSON object")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: unsupported format_version {config.get('format_version')!r} (this livespeech reads {FORMAT_VERSION})")
    for key in ("features", "dims", "vocabulary", "normalization"):
        if key not in config:
            raise ModelError(f"{path}: missing '{key}'")
    return config


def load_bundle(folder: Path) -> Bundle:
    """Load and validate a model folder.

    Raises:
        ModelError: anything wrong with the folder, config or weights.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    features = _dataclass_from(FeatureConfig, config["features"], "features")
    dims = _dataclass_from(ModelDims, config["dims"], "dims")
    try:
        vocabulary = Vocabulary(config["vocabulary"])
    except (TypeError, ValueError) as error:
        raise ModelError(f"config.json: bad vocabulary: {error}") from None
    if len(vocabulary) != dims.vocab_size:
        raise ModelError(f"config.json: vocabulary has {len(vocabulary)} tokens but dims.vocab_size is {dims.vocab_size}")
    if features.n_mels != dims.n_mels:
        raise ModelError(f"config.json: features.n_mels {features.n_mels} != dims.n_mels {dims.n_mels}")
    expected = _expected_tensors(dims)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: missing")
    if weights.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ModelError(f"{weights}: larger than {MAX_WEIGHTS_BYTES} bytes")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelError(f"{weights}: not a valid safetensors file ({error})") from None
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ModelError(f"{weights}: tensors do not match config (missing {missing[:3]}, unexpected {extra[:3]})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape or tensor.dtype != expected[key].dtype:
            raise ModelError(f"{weights}: tensor {key} has shape {tuple(tensor.shape)} {tensor.dtype}, config needs {tuple(expected[key].shape)} {expected[key].dtype}")
        if not torch.isfinite(tensor).all():
            raise ModelError(f"{weights}: tensor {key} has NaN or infinite values")
    normalization = config["normalization"]
    try:
        mean = torch.tensor(normalization["mean"], dtype=torch.float32)
        std = torch.tensor(normalization["std"], dtype=torch.float32)
    except (KeyError, TypeError, ValueError):
        raise ModelError("config.json: normalization needs 'mean' and 'std' lists") from None
    if mean.shape != (dims.n_mels,) or std.shape != (dims.n_mels,) or not (std > 0).all():
        raise ModelError(f"config.json: normalization mean/std must be {dims.n_mels} values, std positive")
    if not torch.equal(mean, state["feature_mean"]) or not torch.equal(std, state["feature_std"]):
        raise ModelError("config.json: normalization statistics differ from the weights")
    model = CTCModel(dims)  # built only now that its size is known to be sane
    model.load_state_dict(state)
    model.eval()
    language_model, problem = None, None
    try:
        language_model = language_model_files(folder, config)
    except LanguageModelError as error:
        problem = str(error)
    return Bundle(config.get("name", folder.name), folder, model, features, vocabulary, config, language_model, problem)


def _expected_tensors(dims: ModelDims) -> dict[str, torch.Tensor]:
    """The state dict a model of ``dims`` has, as storage-free "meta" tensors (shape
    and dtype only), so absurd dims in an untrusted config cost no memory.

    Raises:
        ModelError: the dims imply weights larger than MAX_WEIGHTS_BYTES (checked by
            arithmetic before anything is built).
    """
    size = 4 * dims.parameter_count()  # float32
    if size > MAX_WEIGHTS_BYTES:
        raise ModelError(f"config.json: dims imply {size} bytes of weights, more than {MAX_WEIGHTS_BYTES}")
    with torch.device("meta"):
        return CTCModel(dims).state_dict()


def save_bundle(folder: Path, model: CTCModel, features: FeatureConfig, vocabulary: Vocabulary, info: dict, card: str) -> Path:
    """Write a model folder (config.json, model.safetensors, MODEL_CARD.md).

    Each file is written to a temporary name and renamed, so an interrupted export
    never leaves a half-written model.

    Args:
        info: extra config entries (name, description, training data, metrics, license).
        card: the model card's markdown.
    Raises:
        FileExistsError: the folder already holds a model.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    if (folder / CONFIG_FILE).exists() or (folder / WEIGHTS_FILE).exists():
        raise FileExistsError(f"{folder} already holds a model")
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format_version": FORMAT_VERSION,
        **info,
        "features": features.to_dict(),
        "dims": model.dims.to_dict(),
        "vocabulary": list(vocabulary.tokens),
        "normalization": {"mean": state["feature_mean"].tolist(), "std": state["feature_std"].tolist()},
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    _check_finite(config)
    save_file(state, str(folder / (WEIGHTS_FILE + ".tmp")))
    os.replace(folder / (WEIGHTS_FILE + ".tmp"), folder / WEIGHTS_FILE)
    for name, text in ((CONFIG_FILE, json.dumps(config, indent=2) + "\n"), (CARD_FILE, card)):
        tmp = folder / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
    return folder


def _check_finite(value) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("config values must be finite")
    if isinstance(value, dict):
        for v in value.values():
            _check_finite(v)
    elif isinstance(value, list):
        for v in value:
            _check_finite(v)
