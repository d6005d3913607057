"""Custom phrase models: ``livespeech-train phrases PHRASES --out NAME``.

From a phrase list alone (plus any recordings the user made with ``livespeech
record``), build a model that recognises those phrases and rejects other speech:

1. **Synthesise** each phrase many times with the training voices (espeak-ng, flite,
   festival, Piper; speed, pitch, noise, reverberation, telephone band), and
   out-of-set "distractor" sentences and words that contain none of the phrases, so
   the model keeps hearing other speech and learns to spell it as something else.
2. **Fine-tune** the default model (``init_from``) on the phrases, the distractors,
   the user's recordings (repeated) and any extra corpora (e.g. FSDD for digits).
3. **Calibrate** the phrase scorer's rejection (:class:`livespeech.phrases.ScorerOptions`)
   on a separate synthetic set of phrases and distractors in other voices, plus a
   share of the recordings held out from training.
4. **Evaluate** on the held-out voice slt (phrases and distractor sentences it was
   never trained on), the held-out recordings and any ``--eval`` corpora.
5. **Install** the model folder, its ``config.json`` carrying the phrase set, the
   calibrated scorer options and the measured numbers, to the user's model folder
   (``livespeech models`` lists it; ``--model NAME`` finds it, and ``classify
   --phrases SET`` uses it by itself when NAME is the set's name).

Every step is resumable in the work folder (synthesis per batch, training from its
last checkpoint); rerun the same command after an interruption.

    livespeech-train phrases my_commands.txt --out my_commands --recordings recordings/my_commands
    livespeech-train phrases digits --out digits --corpus "fsdd:../shared/data/fsdd*2" \\
        --eval fsdd-test:../shared/data/fsdd --install-dir models
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from livespeech.bundle import Bundle, ModelError, load_bundle
from livespeech.phrases import CONFIG_KEY, PhraseScorer, PhraseScores, PhraseSet, ScorerOptions, load_phrase_set
from livespeech.text import normalize
from training.data import Utterance, read_corpus, read_phrase_folders

SLT_VOICE = "flite:slt"  # the held-out evaluation voice (training.synth.HELD_OUT_VOICES)
RECORDINGS_DEV_EVERY = 5  # every 5th take of a phrase is held out from training ...
RECORDINGS_DEV_MIN_TAKES = 5  # ... when the phrase has at least this many


@dataclass
class PhraseTrainConfig:
    """Everything ``livespeech-train phrases`` needs.

    Args:
        phrases: phrase set, a bundled name or a file.
        name: the model's name (its folder in ``install_dir``).
        base: model to fine-tune (name or folder; default the bundled ``base``).
        recordings: folder-per-phrase recordings (``livespeech record``).
        corpora: extra training corpora (``KIND:PATH``, optional ``*N`` repeat).
        eval: extra labelled evaluation corpora (an utterance whose text is a phrase
            is in-set, any other text out-of-set).
        work_dir: synthesis, training run, reports (default ``runs/phrases-NAME``).
        synth_dir: synthetic corpora, shareable between runs of the same phrase set
            (default ``WORK_DIR/synth``).
        install_dir: where the model folder goes (default the user's model folder).
        takes: synthetic training utterances per phrase (default 60).
        distractors: synthetic out-of-set training utterances (default 400).
        calibration_takes, calibration_distractors: the calibration set (defaults 12, 200).
        eval_takes, eval_distractors: the held-out-voice evaluation set (defaults 10, 150).
        recordings_repeat: times the recordings are repeated in training (default 5).
        steps, lr, warmup_steps, batch_frames: fine-tuning (defaults 800, 5e-4, 50, 6000).
        freq_warp: vocal tract length perturbation of the fine-tuning features, the
            largest warp of the mel axis (default 0.15, i.e. +-15 %; 0 turns it off).
        augment: on-the-fly waveform augmentation in fine-tuning (speed, noise,
            reverberation, telephone band, gain; default False: it makes fine-tuning
            about 2.3x slower, and VTLP alone gives most of its gain on unseen
            speakers, see models/digits/MODEL_CARD.md).
        max_false_reject: in-set calibration utterances the threshold may reject (default 0.01).
        engines: synthesis engines for random voices (default: every one installed).
        workers: synthesis processes (default 2).
        threads: CPU threads for training (0: torch's default).
        seed: seed of texts, voices and training (default 1).
        force: replace an installed model of the same name.
    """

    phrases: str
    name: str
    base: str = "base"
    recordings: list[str] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    work_dir: str = ""
    synth_dir: str = ""
    install_dir: str = ""
    takes: int = 60
    distractors: int = 400
    calibration_takes: int = 12
    calibration_distractors: int = 200
    eval_takes: int = 10
    eval_distractors: int = 150
    recordings_repeat: int = 5
    steps: int = 800
    lr: float = 5e-4
    warmup_steps: int = 50
    batch_frames: int = 6000
    freq_warp: float = 0.15
    augment: bool = False
    max_false_reject: float = 0.01
    engines: list[str] = field(default_factory=list)
    workers: int = 2
    threads: int = 0
    seed: int = 1
    force: bool = False

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"--out must be a plain model name (no '/', not starting with '.'), got {self.name!r}")
        for key in ("takes", "calibration_takes", "eval_takes", "steps", "batch_frames", "workers"):
            if getattr(self, key) <= 0:
                raise ValueError(f"--{key.replace('_', '-')} must be positive, got {getattr(self, key)}")
        if not 0 <= self.max_false_reject < 1:
            raise ValueError(f"--max-false-reject must be in [0, 1), got {self.max_false_reject}")

    @property
    def work(self) -> Path:
        return Path(self.work_dir or f"runs/phrases-{self.name}")

    @property
    def synth(self) -> Path:
        return Path(self.synth_dir) if self.synth_dir else self.work / "synth"


# --- texts --------------------------------------------------------------------------


def contains_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    """True when normalised ``text`` contains any normalised phrase as whole words."""
    padded = f" {normalize(text)} "
    return any(f" {p} " in padded for p in phrases)


def distractor_texts(phrase_set: PhraseSet, n: int, seed: int, split: str = "train") -> list[tuple[str, str]]:
    """``n`` generated texts (``training.text``: sentences, commands, numbers, words)
    of the ``split`` side that contain none of the phrases, as ("distractor", text)."""
    from training.text import generate

    phrases = phrase_set.normalized()
    wanted, out = max(n, 1) * 2, []
    while len(out) < n:
        out = [("distractor", t) for _, t in generate(wanted, seed, split) if not contains_phrase(t, phrases)][:n]
        if wanted > 50 * max(n, 1):
            raise ValueError("cannot find out-of-set text: the phrases cover most generated text")
        wanted *= 2
    return out


def phrase_texts(phrase_set: PhraseSet, takes: int) -> list[tuple[str, str]]:
    """Each phrase ``takes`` times, as ("phrase", normalised phrase)."""
    return [("phrase", p) for p in phrase_set.normalized() for _ in range(takes)]


CORPORA = ("train", "calibration", "evaluation")


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


# --- recordings ---------------------------------------------------------------------


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
    """A JSONL manifest of utterances with absolute audio paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.dumps({"audio": str(Path(u.audio).resolve()), "text": u.text, "speaker": u.speaker}) for u in utterances]
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


# --- scoring, calibration, evaluation ------------------------------------------------


@dataclass
class ScoredSet:
    """Raw phrase scores of a labelled set of utterances.

    Attributes:
        name: what the set is (for reports).
        labels: per utterance, the index of its phrase, or None when out of set.
        scores: per utterance, the scorer's raw scores, or None when the recognizer
            heard nothing in it (which classifies as none).
        speakers: per utterance, its speaker or voice.
    """

    name: str
    labels: list[int | None]
    scores: list[PhraseScores | None]
    speakers: list[str]


def label_of(text: str, phrase_set: PhraseSet) -> int | None:
    """Index of the phrase ``text`` is (after normalisation), or None."""
    normalized = phrase_set.normalized()
    key = normalize(text)
    return normalized.index(key) if key in normalized else None


def emissions(bundle: Bundle, utterances: list[Utterance]) -> list[tuple[Utterance, torch.Tensor]]:
    """Each readable utterance with the CTC log-probabilities the streaming
    recognizer gives for its file, shape (S, V) (S = 0 when it heard nothing)."""
    from livespeech.audio import AudioError
    from livespeech.classify import file_log_probs
    from livespeech.recognizer import Recognizer

    recognizer = Recognizer(bundle)
    out = []
    for u in utterances:
        try:
            log_probs, _ = file_log_probs(recognizer, Path(u.audio))
        except AudioError:
            continue
        out.append((u, log_probs))
    return out


def usable_for_evaluation(utterances: list[Utterance], phrase_set: PhraseSet) -> list[Utterance]:
    """Utterances that are a phrase or contain none: a text that contains a phrase
    among other words ("five dollars" for digits) is neither in-set nor out-of-set."""
    phrases = phrase_set.normalized()
    return [u for u in utterances if label_of(u.text, phrase_set) is not None or not contains_phrase(u.text, phrases)]


def score_set(name: str, pairs: list[tuple[Utterance, torch.Tensor]], scorer: PhraseScorer) -> ScoredSet:
    """Raw scores of utterances with their emissions (see :func:`emissions`)."""
    labels = [label_of(u.text, scorer.phrase_set) for u, _ in pairs]
    scores = [scorer.scores(lp) if lp.shape[0] else None for _, lp in pairs]
    return ScoredSet(name, labels, scores, [u.speaker for u, _ in pairs])


def scored_corpus(name: str, bundle: Bundle, utterances: list[Utterance], scorer: PhraseScorer) -> ScoredSet:
    """:func:`score_set` of the utterances usable for evaluation (see :func:`usable_for_evaluation`)."""
    return score_set(name, emissions(bundle, usable_for_evaluation(utterances, scorer.phrase_set)), scorer)


def predictions(scorer: PhraseScorer, scored: ScoredSet) -> list[int | None]:
    """The phrase index (or None) the scorer chooses for each utterance."""
    phrases = scorer.phrase_set.phrases
    out = []
    for s in scored.scores:
        phrase = scorer.result(s).phrase if s is not None else None
        out.append(phrases.index(phrase) if phrase is not None else None)
    return out


def classification_metrics(labels: list[int | None], predicted: list[int | None], phrases: tuple[str, ...]) -> dict:
    """Accuracy on in-set utterances (a rejection counts as an error), false rejection
    rate, rejection rate of out-of-set utterances, and the commonest errors."""
    pairs = list(zip(labels, predicted))
    inset = [(a, b) for a, b in pairs if a is not None]
    outset = [b for a, b in pairs if a is None]
    name = lambda k: phrases[k] if k is not None else "none"  # noqa: E731
    errors = Counter((name(a), name(b)) for a, b in pairs if a != b)
    return {
        "utterances": len(pairs),
        "in_set": len(inset),
        "accuracy": round(sum(a == b for a, b in inset) / len(inset), 4) if inset else None,
        "false_reject": round(sum(b is None for _, b in inset) / len(inset), 4) if inset else None,
        "out_of_set": len(outset),
        "rejection": round(sum(b is None for b in outset) / len(outset), 4) if outset else None,
        "errors": [{"said": a, "got": b, "count": n} for (a, b), n in errors.most_common(5)],
    }


def evaluate_scorer(scorer: PhraseScorer, scored: ScoredSet, per_speaker: bool = False) -> dict:
    """:func:`classification_metrics` of a scored set, optionally per speaker."""
    predicted = predictions(scorer, scored)
    phrases = scorer.phrase_set.phrases
    row = classification_metrics(scored.labels, predicted, phrases)
    if per_speaker:
        row["speakers"] = {
            s: classification_metrics([a for a, k in zip(scored.labels, scored.speakers) if k == s],
                                      [b for b, k in zip(predicted, scored.speakers) if k == s], phrases)
            for s in sorted(set(scored.speakers))
        }
    return row


RATIO_FLOOR = -50.0  # nats per character: stands in for -inf (no phrase fits) when fitting
MIN_SCALE, MAX_SCALE = 0.1, 100.0  # bounds of the fitted logistic slope, per nat per character


def fit_temperature(items: list[tuple[int, PhraseScores]], grid=tuple(2.0 ** (k / 4) for k in range(-8, 25))) -> float:
    """The temperature that minimises the negative log-likelihood of the true phrase
    under ``softmax(ll / temperature)`` on in-set items (temperature scaling, Guo et
    al., 2017), searched on a log grid from 0.25 to 64. Items whose phrase cannot
    fit the utterance are skipped; 1.0 when none are left."""
    usable = [(k, s.log_likelihoods) for k, s in items if math.isfinite(float(s.log_likelihoods[k]))]
    if not usable:
        return 1.0

    def nll(t: float) -> float:
        return -sum(float(torch.log_softmax(ll.double() / t, 0)[k]) for k, ll in usable) / len(usable)

    return min(grid, key=nll)


def fit_logistic(inside: list[float], outside: list[float], l2: float = 1e-3) -> tuple[float, float]:
    """(scale, threshold) of ``P(in) = sigmoid(scale * (r - threshold))`` fitted to
    in-set (1) and out-of-set (0) log-likelihood ratios by class-balanced maximum
    likelihood (logistic regression; Platt, 1999) with a small L2 penalty on the
    scale, so separable data give a finite slope. The result is clipped to
    ``MIN_SCALE <= scale <= MAX_SCALE`` and ``RATIO_FLOOR <= threshold <= 0`` (a ratio
    that tells nothing apart would otherwise drift to absurd values).

    Raises:
        ValueError: either list is empty.
    """
    if not inside or not outside:
        raise ValueError("calibration needs both in-set and out-of-set utterances")
    r = torch.tensor([max(x, RATIO_FLOOR) for x in inside + outside], dtype=torch.float64)
    y = torch.tensor([1.0] * len(inside) + [0.0] * len(outside), dtype=torch.float64)
    w = torch.where(y > 0, 0.5 / len(inside), 0.5 / len(outside))
    log_scale = torch.tensor(math.log(ScorerOptions.scale), dtype=torch.float64, requires_grad=True)
    threshold = torch.tensor(ScorerOptions.threshold, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_scale, threshold], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        logits = log_scale.exp() * (r - threshold)
        loss = (w * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")).sum() + l2 * log_scale.exp() ** 2
        loss.backward()
        return loss

    optimizer.step(closure)
    scale = min(max(float(log_scale.detach().exp()), MIN_SCALE), MAX_SCALE)
    return scale, min(max(float(threshold.detach()), RATIO_FLOOR), 0.0)


def calibrate(sets: list[ScoredSet], max_false_reject: float = 0.01, top: int = 3) -> ScorerOptions:
    """Scorer options fitted to labelled scored sets:

    - ``temperature`` by :func:`fit_temperature` on the in-set utterances;
    - ``scale`` and ``threshold`` by :func:`fit_logistic` on in-set against out-of-set
      log-likelihood ratios;
    - then the threshold is lowered, if needed, until at most ``max_false_reject`` of
      the in-set utterances whose best phrase is right are rejected (the phrase is
      kept when ``P(in) q_best > 1 - P(in)``, i.e. ``threshold < r + log(q_best) / scale``).

    Raises:
        ValueError: no in-set or no out-of-set utterances with speech.
    """
    inside = [(k, s) for d in sets for k, s in zip(d.labels, d.scores) if k is not None and s is not None]
    outside = [s for d in sets for k, s in zip(d.labels, d.scores) if k is None and s is not None]
    temperature = fit_temperature(inside)
    scale, threshold = fit_logistic([s.ratio for _, s in inside], [s.ratio for s in outside])
    margins = []  # the highest threshold that still keeps each correctly ranked in-set utterance
    for k, s in inside:
        if s.best == k:
            q_best = float(torch.softmax(s.log_likelihoods.double() / temperature, 0)[k])
            margins.append(max(s.ratio, RATIO_FLOOR) + math.log(max(q_best, 1e-300)) / scale)
    allowed = int(max_false_reject * len(inside))
    if margins and allowed < len(margins):
        threshold = min(threshold, sorted(margins)[allowed] - 1e-6)
    return ScorerOptions(scale=scale, threshold=min(threshold, 0.0), temperature=temperature, top=top)


# --- fine-tuning, export, install ----------------------------------------------------


def fine_tune(config: PhraseTrainConfig, base: Bundle, train: list[str], log=print) -> Path:
    """Fine-tune ``base`` on the corpora ``train`` (``KIND:PATH*N`` specs); returns
    the run folder (resumes from its last checkpoint)."""
    from training.config import TrainConfig
    from training.train import fit

    dims = base.model.dims
    train_config = TrainConfig(
        train=train, run_dir=str(config.work / "run"), init_from=str(base.path),
        stack=dims.stack, hidden=dims.hidden, layers=dims.layers, dropout=dims.dropout,
        lr=config.lr, warmup_steps=config.warmup_steps, max_steps=config.steps, decay_fraction=0.5,
        lr_min=config.lr / 20, batch_frames=config.batch_frames, seed=config.seed, threads=config.threads,
        freq_warp=config.freq_warp, augment=config.augment,
        eval_every=10 * config.steps, log_every=max(1, config.steps // 10), checkpoint_minutes=2.0,
    )
    return fit(train_config, log=log)


def card_section(phrase_set: PhraseSet, options: ScorerOptions, metrics: dict, training: dict) -> str:
    """The model card's markdown section on the phrase set, scorer and numbers."""
    lines = [
        "", "## Phrases", "",
        f"Fine-tuned for the phrase set `{phrase_set.name}` ({len(phrase_set.phrases)} phrases: "
        + ", ".join(f'"{p}"' for p in phrase_set.phrases) + ").",
        f"Built by `livespeech-train phrases` in {training['seconds'] / 60:.1f} minutes "
        f"({training['synthetic_takes_per_phrase']} synthetic takes per phrase, {training['distractors']} distractor utterances, "
        f"{training['recordings']} recorded takes, {training['steps']} fine-tuning steps from `{training['base']}`).",
        "",
        "Phrase scorer (CTC forward score of each phrase against the free transcript; see `livespeech/phrases.py`), "
        f"calibrated on held-out synthetic speech: scale {options.scale:.3f}, threshold {options.threshold:.3f} nats/char, "
        f"temperature {options.temperature:.3f}.",
        "",
        "| evaluation set | in-set | accuracy | out-of-set | rejected |",
        "|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        acc = f"{row['accuracy']:.3f}" if row["accuracy"] is not None else "-"
        rej = f"{row['rejection']:.3f}" if row["rejection"] is not None else "-"
        lines.append(f"| {name} | {row['in_set']} | {acc} | {row['out_of_set']} | {rej} |")
    return "\n".join(lines) + "\n"


def annotate(folder: Path, entry: dict, section: str, description: str) -> None:
    """Add the phrase entry to a model folder's config.json (and its description)
    and the phrase section to its MODEL_CARD.md, each rewritten atomically."""
    from livespeech.bundle import CARD_FILE, CONFIG_FILE

    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    config[CONFIG_KEY] = entry
    config["description"] = description
    card = (folder / CARD_FILE).read_text(encoding="utf-8") + section
    for name, text in ((CONFIG_FILE, json.dumps(config, indent=2) + "\n"), (CARD_FILE, card)):
        tmp = folder / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)


def install(staging: Path, destination: Path, force: bool = False) -> Path:
    """Move a finished model folder to ``destination``, replacing an existing model
    only with ``force`` (the old one is removed only once the new one is in place).

    Raises:
        FileExistsError: ``destination`` exists and ``force`` is False.
    """
    if destination.exists() and not force:
        raise FileExistsError(f"{destination} exists (use --force to replace it)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    incoming = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        shutil.copytree(staging, incoming, dirs_exist_ok=True)
        old = None
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
            os.replace(destination, old)
        os.replace(incoming, destination)
    finally:
        if incoming.exists():  # a failed copy leaves no stray folder
            shutil.rmtree(incoming)
    if old is not None:
        shutil.rmtree(old)
    return destination


# --- the whole pipeline --------------------------------------------------------------


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


def train_phrase_model(config: PhraseTrainConfig, log=print) -> dict:
    """Synthesise, fine-tune, calibrate, evaluate and install a phrase model.

    Returns:
        a report: ``{"model": installed folder, "scorer": options, "metrics": {set: ...},
        "training": {...}}`` (also written to ``WORK_DIR/report.json``).
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
    log(f"fine-tuning {base.name} for {config.steps} steps on {train}")
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
    training = {"base": base.name, "seconds": round(time.time() - t0, 1), "steps": config.steps,
                "synthetic_takes_per_phrase": config.takes, "distractors": config.distractors,
                "recordings": len(rec_train), "corpora": config.corpora}
    entry = {"name": phrase_set.name, "phrases": list(phrase_set.phrases), "scorer": options.to_dict(),
             "metrics": metrics, "training": training}
    description = f"phrase model for '{phrase_set.name}' ({len(phrase_set.phrases)} phrases), fine-tuned from {base.name}"
    annotate(staging, entry, card_section(phrase_set, options, metrics, training), description)
    installed = install(staging, destination, config.force)
    report = {"model": str(installed), "scorer": options.to_dict(), "metrics": metrics, "training": training,
              "config": asdict(config)}
    (config.work / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def ratio_summary(scored: list[ScoredSet]) -> dict:
    """Percentiles of the log-likelihood ratio of in-set and out-of-set utterances
    (for choosing default scorer options)."""
    inside = [s.ratio for d in scored for k, s in zip(d.labels, d.scores) if k is not None and s is not None]
    outside = [s.ratio for d in scored for k, s in zip(d.labels, d.scores) if k is None and s is not None]
    pct = lambda xs: {str(q): round(float(np.percentile(np.maximum(xs, RATIO_FLOOR), q)), 3) for q in (1, 5, 50, 95, 99)} if xs else {}  # noqa: E731
    return {"in_set": pct(inside), "out_of_set": pct(outside)}
