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

Importing this module is light (no torch): ``livespeech models`` and the command
line's usage checks read configs without it; :func:`load_bundle` imports torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from livespeech.atomic import atomic_path, write_text_atomic
from livespeech.lm import LanguageModelError, LanguageModelFiles, language_model_files
from livespeech.text import Vocabulary

if TYPE_CHECKING:
    from livespeech.features import FeatureConfig
    from livespeech.model import CTCModel

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, CARD_FILE = "config.json", "model.safetensors", "MODEL_CARD.md"
MAX_WEIGHTS_BYTES = 512 * 1024 * 1024  # refuse absurd files before reading them
DELAY_KEY = "emission_delay_s"  # config.json: how late the model emits what it hears, seconds
# Word times from emission steps are late: measured by bench/word_delay.py on 300 FSDD
# digits (padded with silence; speech span by energy, 30 dB below the loudest frame),
# words start 0.13 s after the speech onset and end 0.04 s before its offset (median;
# 0.10 and 0.01 s at 20 dB, 0.13 and 0.06 s at 40 dB); the mid-point is late by
# 0.045 s for base, 0.05 s for digits, 0.0575 s for commands (0.045-0.055 s at 20-40 dB).
DEFAULT_EMISSION_DELAY_S = 0.05  # seconds taken off word times, for models whose config gives none
MAX_EMISSION_DELAY_S = 1.0  # larger config values are refused as nonsense
BLANK_PENALTY_KEY = "blank_penalty"  # config.json: taken off blank's log-probability in greedy decoding
MAX_BLANK_PENALTY = 10.0  # larger config values are refused as nonsense
# config.json: seconds the recognizer may carry the model's state across endpoints, for a
# model trained on utterances joined by pauses (training.data.TrainingSet, --join-fraction)
STATE_RESET_KEY = "state_reset_s"
MAX_STATE_RESET_S = 3600.0  # larger config values are refused as nonsense
# the per-model decoding settings read_config checks: key, largest value, what it must be
_DECODING_SETTINGS = (
    (DELAY_KEY, MAX_EMISSION_DELAY_S, "a number of seconds"),
    (BLANK_PENALTY_KEY, MAX_BLANK_PENALTY, "a number"),
    (STATE_RESET_KEY, MAX_STATE_RESET_S, "a number of seconds"),
)


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

    @property
    def emission_delay_s(self) -> float:
        """Seconds by which the model emits a word's characters after the word is heard
        (taken off word times): the config's ``emission_delay_s``, else
        ``DEFAULT_EMISSION_DELAY_S``."""
        return float(self.config.get(DELAY_KEY, DEFAULT_EMISSION_DELAY_S))

    @property
    def blank_penalty(self) -> float:
        """What greedy decoding takes off blank's log-probability at each step
        (:func:`livespeech.decoding.best_tokens`): the config's ``blank_penalty``, tuned
        on a dev set by ``bench/blank_penalty.py``, else 0."""
        return float(self.config.get(BLANK_PENALTY_KEY, 0.0))

    @property
    def state_reset_s(self) -> float:
        """How long the recognizer carries the model's state across endpoints, seconds
        (:class:`livespeech.recognizer.EndpointConfig`): the config's ``state_reset_s``,
        set for a model trained on joined utterances and measured by
        ``bench/state_reset.py``, else 0 (a fresh state at every endpoint)."""
        return float(self.config.get(STATE_RESET_KEY, 0.0))


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
    for key, highest, what in _DECODING_SETTINGS:
        value = config.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= highest:
            raise ModelError(f"{path}: '{key}' must be {what} in [0, {highest}], got {value!r}")
    return config


def load_bundle(folder: Path) -> Bundle:
    """Load and validate a model folder.

    Raises:
        ModelError: anything wrong with the folder, config or weights.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from livespeech.features import FeatureConfig
    from livespeech.model import CTCModel, ModelDims

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
    _check_size(dims)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{weights}: missing")
    if weights.stat().st_size > MAX_WEIGHTS_BYTES:
        raise ModelError(f"{weights}: larger than {MAX_WEIGHTS_BYTES} bytes")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise ModelError(f"{weights}: not a valid safetensors file ({error})") from None
    # Built for real (a few ms) rather than on the "meta" device, whose first use costs
    # ~0.8 s of imports; _check_size has bounded its size by arithmetic already.
    model = CTCModel(dims)
    expected = model.state_dict()
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
    model.load_state_dict(state)
    model.eval()
    language_model, problem = None, None
    try:
        language_model = language_model_files(folder, config)
    except LanguageModelError as error:
        problem = str(error)
    return Bundle(config.get("name", folder.name), folder, model, features, vocabulary, config, language_model, problem)


def _check_size(dims) -> None:
    """Refuse dims whose weights would exceed ``MAX_WEIGHTS_BYTES``, by arithmetic,
    before anything is built (a config.json is untrusted input).

    Raises:
        ModelError: the dims imply weights larger than MAX_WEIGHTS_BYTES.
    """
    size = 4 * dims.parameter_count()  # float32
    if size > MAX_WEIGHTS_BYTES:
        raise ModelError(f"config.json: dims imply {size} bytes of weights, more than {MAX_WEIGHTS_BYTES}")


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
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, str(tmp))
    for name, text in ((CONFIG_FILE, json.dumps(config, indent=2) + "\n"), (CARD_FILE, card)):
        write_text_atomic(folder / name, text)
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
