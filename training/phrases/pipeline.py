"""The whole phrase-model pipeline: synthesise, fine-tune, calibrate, evaluate,
install (see :mod:`training.phrases`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from livespeech.atomic import write_text_atomic
from livespeech.bundle import Bundle, ModelError, load_bundle
from livespeech.phrases import PhraseScorer, load_phrase_set
from training.data import read_corpus
from training.phrases.calibrate import calibrate
from training.phrases.card import annotate, card_section
from training.phrases.config import PhraseTrainConfig
from training.phrases.corpora import check_corpora, split_recordings, synthesize_corpora, write_manifest
from training.phrases.install import install
from training.phrases.scoring import evaluate_scorer, scored_corpus


def fine_tune(config: PhraseTrainConfig, base: Bundle, train: list[str], log=print) -> Path:
    """Fine-tune ``base`` on the corpora ``train`` (``KIND:PATH*N`` specs) as
    :meth:`PhraseTrainConfig.train_config` says; returns the run folder (resumes
    from its last checkpoint)."""
    from training.train import fit

    return fit(config.train_config(base.model.dims, base.path, train), log=log)


def train_phrase_model(config: PhraseTrainConfig, log=print) -> dict:
    """Synthesise, fine-tune, calibrate, evaluate and install a phrase model.

    Returns:
        a report: ``{"model": installed folder, "scorer": options, "metrics": {set: ...},
        "training": {...}, "config": ...}`` (also written to ``WORK_DIR/report.json``).
    Raises:
        ValueError: bad phrase set, base model, corpora or options.
        FileExistsError: the model is installed and ``force`` is False.
        FileNotFoundError: a synthesiser is missing.
    """
    from livespeech.registry import find_model, user_models_dir
    from training.export import export

    t0 = time.time()
    phrase_set = load_phrase_set(config.phrases)
    destination = Path(config.install_dir or user_models_dir()) / config.name
    if destination.exists() and not config.force:
        raise FileExistsError(f"{destination} exists (use --force to replace it)")
    try:
        base = load_bundle(find_model(config.base))
    except ModelError as error:
        raise ValueError(f"base model: {error}") from None
    check_corpora(config.corpora + config.eval)
    config.work.mkdir(parents=True, exist_ok=True)
    corpora = synthesize_corpora(config, phrase_set, log)
    rec_train, rec_dev = split_recordings(config.recordings)
    train = [str(corpora["train"]), *config.corpora]
    if rec_train:
        train.append(f"{write_manifest(config.work / 'recordings-train.jsonl', rec_train)}*{config.recordings_repeat}")
    steps = config.fine_tuning.max_steps
    log(f"fine-tuning {base.name} for {steps} steps on {train}")
    run_dir = fine_tune(config, base, train, log)
    staging = config.work / "model"
    if staging.exists():
        shutil.rmtree(staging)
    export(run_dir, staging, name=config.name)
    bundle = load_bundle(staging)

    scorer = PhraseScorer(phrase_set, bundle.vocabulary)
    calibration_sets = [scored_corpus("calibration", bundle, read_corpus(str(corpora["calibration"])), scorer)]
    dev = [scored_corpus("recordings (held out)", bundle, rec_dev, scorer)] if rec_dev else []
    options = calibrate(calibration_sets + dev, config.max_false_reject)
    calibrated = PhraseScorer(phrase_set, bundle.vocabulary, **options.to_dict())
    log(f"calibrated scorer: {options}")

    evaluation = [scored_corpus("held-out voice slt", bundle, read_corpus(str(corpora["evaluation"])), scorer), *dev]
    evaluation += [scored_corpus(spec, bundle, read_corpus(spec), scorer) for spec in config.eval]
    metrics = {s.name: evaluate_scorer(calibrated, s) for s in evaluation}
    training = {"base": base.name, "seconds": round(time.time() - t0, 1), "steps": steps,
                "synthetic_takes_per_phrase": config.takes, "distractors": config.distractors,
                "recordings": len(rec_train), "corpora": config.corpora}
    entry = {"name": phrase_set.name, "phrases": list(phrase_set.phrases), "scorer": options.to_dict(),
             "metrics": metrics, "training": training}
    description = f"phrase model for '{phrase_set.name}' ({len(phrase_set.phrases)} phrases), fine-tuned from {base.name}"
    annotate(staging, entry, card_section(phrase_set, options, metrics, training), description)
    installed = install(staging, destination, config.force)
    report = {"model": str(installed), "scorer": options.to_dict(), "metrics": metrics, "training": training,
              "config": asdict(config)}
    write_text_atomic(config.work / "report.json", json.dumps(report, indent=2) + "\n")
    return report
