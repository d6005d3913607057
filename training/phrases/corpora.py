"""The corpora of a phrase model: the synthetic training, calibration and
held-out-voice evaluation sets, the user's recordings split into training and
held-out takes, and checks of the extra corpora."""

from __future__ import annotations

import json
import time
from pathlib import Path

from livespeech.atomic import write_text_atomic
from livespeech.phrases import PhraseSet
from training.data import Utterance, read_corpus, read_phrase_folders
from training.phrases.config import PhraseTrainConfig
from training.phrases.texts import distractor_texts, phrase_texts

SLT_VOICE = "flite:slt"  # the held-out evaluation voice (training.synth.HELD_OUT_VOICES)
CORPORA = ("train", "calibration", "evaluation")
RECORDINGS_DEV_EVERY = 5  # every 5th take of a phrase is held out from training ...
RECORDINGS_DEV_MIN_TAKES = 5  # ... when the phrase has at least this many


def installed_engines() -> tuple[str, ...]:
    """The synthesis engines available here (executables on PATH, Piper importable).

    Raises:
        FileNotFoundError: none is.
    """
    from training.synth import DEFAULT_ENGINES, missing

    found = [engine for engine in DEFAULT_ENGINES if missing(engine) is None]
    if not found:
        raise FileNotFoundError("no speech synthesiser is installed (apt-get install espeak-ng flite festival, or pip install piper-tts)")
    return tuple(found)


def synthesize_corpora(config: PhraseTrainConfig, phrase_set: PhraseSet, log=print, which: tuple[str, ...] = CORPORA) -> dict[str, Path]:
    """Synthesise (or resume) the training, calibration and held-out-voice corpora
    (those named in ``which``) in ``config.synth``; returns their manifests by name.

    Training and calibration use random training voices with different seeds and
    training-side text; evaluation uses the held-out voice slt, without channel
    effects, and evaluation-side distractor text.
    """
    from training.synth import build_texts

    engines = tuple(config.engines) or installed_engines()
    seed = config.seed
    plans = {  # name: (texts, seed of voices, voice, text split, augment)
        "train": (lambda: phrase_texts(phrase_set, config.takes) + distractor_texts(phrase_set, config.distractors, seed),
                  seed, None, "train", True),
        "calibration": (lambda: phrase_texts(phrase_set, config.calibration_takes)
                        + distractor_texts(phrase_set, config.calibration_distractors, seed + 1000), seed + 1, None, "train", True),
        "evaluation": (lambda: phrase_texts(phrase_set, config.eval_takes)
                       + distractor_texts(phrase_set, config.eval_distractors, seed + 2000, "eval"), seed + 2, SLT_VOICE, "eval", False),
    }
    manifests = {}
    for name in which:
        make_texts, plan_seed, voice, split, augment = plans[name]
        texts, t0 = make_texts(), time.time()
        manifests[name] = build_texts(config.synth / name, texts, plan_seed, split, voice, augment, config.workers, engines=engines)
        log(f"synthesised {name}: {len(texts)} utterances in {time.time() - t0:.0f} s")
    return manifests


def split_recordings(folders: list[str]) -> tuple[list[Utterance], list[Utterance]]:
    """(training, held-out) takes of folder-per-phrase recordings: every
    ``RECORDINGS_DEV_EVERY``-th take of a phrase with at least
    ``RECORDINGS_DEV_MIN_TAKES`` takes is held out for calibration and evaluation.

    Raises:
        ValueError: a folder does not exist.
    """
    train, held_out = [], []
    for folder in folders:
        if not Path(folder).is_dir():
            raise ValueError(f"recordings folder not found: {folder}")
        by_phrase: dict[str, list[Utterance]] = {}
        for u in read_phrase_folders(Path(folder)):
            by_phrase.setdefault(u.text, []).append(u)
        for takes in by_phrase.values():
            for i, u in enumerate(takes):
                dev = len(takes) >= RECORDINGS_DEV_MIN_TAKES and i % RECORDINGS_DEV_EVERY == RECORDINGS_DEV_EVERY - 1
                (held_out if dev else train).append(u)
    return train, held_out


def write_manifest(path: Path, utterances: list[Utterance]) -> Path:
    """A JSONL manifest of utterances with absolute audio paths, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"audio": str(Path(u.audio).resolve()), "text": u.text, "speaker": u.speaker}) for u in utterances]
    write_text_atomic(path, "".join(r + "\n" for r in rows))
    return path


def check_corpora(specs: list[str]) -> None:
    """Fail early, before synthesis and training, on a corpus that cannot be read.

    Raises:
        ValueError: an unknown kind, a missing path or an empty corpus.
    """
    from training.train import parse_corpus_spec

    for spec in specs:
        path, _ = parse_corpus_spec(spec)
        if not read_corpus(path):
            raise ValueError(f"corpus {spec} holds no utterances")
