"""Phrase classification benchmark: the numbers of issue 4 and a comparison of
phrase scoring methods. Run from the repository root (CPU; one thread for models):

    # methods compared on one model and phrase set: calibrated on synthetic speech in
    # training voices, evaluated on the FSDD test split, the held-out voice slt
    # (phrases and out-of-set sentences), out-of-set single words and noise
    .venv/bin/python bench/phrases_eval.py compare --model digits --phrases digits --eval fsdd-test:../shared/data/fsdd
    # speaker-independent digits: one phrase model per FSDD speaker, trained without it
    .venv/bin/python bench/phrases_eval.py speakers --base base --fsdd ../shared/data/fsdd
    # a phrase model from text alone: wall time and accuracy on the held-out voice slt
    .venv/bin/python bench/phrases_eval.py text-only --phrases commands --base base

Each writes ``WORK_DIR/report.json`` and ``report.md`` and prints the JSON; synthetic
corpora are cached in the work folder, so reruns only recompute the scores.

Methods compared (all from the CTC emissions of the same streaming recognizer):
- ``ctc``: :class:`livespeech.phrases.PhraseScorer`, CTC forward score of each phrase
  against the free transcript, calibrated here (temperature, logistic rejection);
- ``ctc-default``: the same with the default options, uncalibrated;
- ``ctc-model``: the same with the options stored in a phrase model's config.json;
- ``pooled-head``: a softmax-regression head over phrases plus "none" on emissions
  pooled over time (mean and max posterior of each token, log duration), trained
  on the calibration set;
- ``transcript``: the greedy transcript's nearest phrase by character edit distance,
  "none" above a distance threshold tuned on the calibration set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from livespeech.atomic import write_text_atomic
from livespeech.bundle import Bundle, load_bundle
from livespeech.features import SAMPLE_RATE
from livespeech.phrases import PhraseScorer, PhraseSet, ScorerOptions, load_phrase_set, scorer_options
from livespeech.registry import find_model
from training.data import Utterance, read_corpus, read_fsdd
from training.phrases.calibrate import calibrate, ratio_summary
from training.phrases.config import PhraseTrainConfig
from training.phrases.corpora import SLT_VOICE, synthesize_corpora, write_manifest
from training.phrases.pipeline import train_phrase_model
from training.phrases.scoring import ScoredSet, classification_metrics, emissions, predictions, score_set
from training.phrases.texts import contains_phrase, usable_for_evaluation

ROOT = Path(__file__).resolve().parent.parent


# --- evaluation data -----------------------------------------------------------------


@dataclass
class Data:
    """A labelled set with its emissions and CTC scores.

    Attributes:
        labels: phrase index per utterance, None when out of set.
        log_probs: CTC log-probabilities per utterance, each shape (S, V).
        scored: the :class:`PhraseScorer` raw scores of the same utterances.
    """

    name: str
    labels: list[int | None]
    log_probs: list[torch.Tensor]
    scored: ScoredSet


def load_data(name: str, bundle: Bundle, utterances: list[Utterance], phrase_set: PhraseSet) -> Data:
    """Emissions and scores of the utterances usable for evaluation."""
    scorer = PhraseScorer(phrase_set, bundle.vocabulary)
    pairs = emissions(bundle, usable_for_evaluation(utterances, phrase_set))
    scored = score_set(name, pairs, scorer)
    return Data(name, scored.labels, [lp for _, lp in pairs], scored)


def single_words(phrase_set: PhraseSet, n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` frequent English words that are not (and do not contain) a phrase."""
    import random

    from training.text import vocabulary

    words = [w for w in vocabulary()[0][:3000] if not contains_phrase(w, phrase_set.normalized())]
    return [("word", w) for w in random.Random(seed).sample(words, min(n, len(words)))]


def noise_clips(folder: Path, n: int, seed: int) -> list[Utterance]:
    """``n`` clips of 1.5 s of silence or white, pink or brown noise at -50 to -10 dBFS
    (out-of-set), written once to ``folder``."""
    from training.augment import colored_noise

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        path = folder / f"noise_{i:03d}.wav"
        if not path.exists():
            color = ("silence", "white", "pink", "brown")[i % 4]
            clip = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
            if color != "silence":
                clip = colored_noise(len(clip), rng, color) * 10 ** (rng.uniform(-50, -10) / 20)
            sf.write(path, clip.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
        out.append(Utterance(str(path), "", "noise"))
    return out


# --- methods ---------------------------------------------------------------------------


class CTCMethod:
    """The PhraseScorer with fixed options, or options calibrated on the training data."""

    def __init__(self, name: str, phrase_set: PhraseSet, vocabulary, options: dict | None = None, max_false_reject: float = 0.01):
        self.name, self.phrase_set, self.vocabulary = name, phrase_set, vocabulary
        self.options, self.max_false_reject = options, max_false_reject

    def fit(self, data: list[Data]) -> None:
        """Calibrate the options on ``data`` unless they were given."""
        if self.options is None:
            self.options = calibrate([d.scored for d in data], self.max_false_reject).to_dict()

    def predict(self, data: Data) -> list[int | None]:
        """The phrase index (or None) this method chooses for each utterance of ``data``."""
        return predictions(PhraseScorer(self.phrase_set, self.vocabulary, **self.options), data.scored)


def pooled_features(log_probs: torch.Tensor) -> torch.Tensor:
    """Time-pooled emissions: mean and max posterior of each token and the log of the
    number of steps, shape (2V + 1,), from log-probabilities (S, V), S >= 1."""
    p = log_probs.float().exp()
    return torch.cat([p.mean(0), p.max(0).values, torch.tensor([np.log(p.shape[0])], dtype=torch.float32)])


class PooledHeadMethod:
    """Softmax regression over phrases plus "none" on :func:`pooled_features`,
    class-balanced, L2-regularised, fitted with L-BFGS on standardised features."""

    name = "pooled-head"

    def __init__(self, n_phrases: int, l2: float = 1e-3):
        self.n_phrases, self.l2 = n_phrases, l2

    def _xy(self, data: list[Data]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [(pooled_features(lp), self.n_phrases if k is None else k) for d in data for k, lp in zip(d.labels, d.log_probs) if lp.shape[0]]
        return torch.stack([x for x, _ in rows]), torch.tensor([y for _, y in rows])

    def fit(self, data: list[Data]) -> None:
        """Fit the method to labelled sets (the calibration set)."""
        x, y = self._xy(data)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-4
        x = (x - self.mean) / self.std
        counts = torch.bincount(y, minlength=self.n_phrases + 1).clamp_min(1).float()
        self.linear = torch.nn.Linear(x.shape[1], self.n_phrases + 1)
        optimizer = torch.optim.LBFGS(self.linear.parameters(), max_iter=300, line_search_fn="strong_wolfe")
        loss_fn = torch.nn.CrossEntropyLoss(weight=counts.sum() / counts)

        def closure():
            optimizer.zero_grad()
            loss = loss_fn(self.linear(x), y) + self.l2 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)

    def predict(self, data: Data) -> list[int | None]:
        """The phrase index (or None) this method chooses for each utterance of ``data``."""
        out = []
        with torch.no_grad():
            for lp in data.log_probs:
                k = int(self.linear((pooled_features(lp) - self.mean) / self.std).argmax()) if lp.shape[0] else self.n_phrases
                out.append(None if k == self.n_phrases else k)
        return out


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between two strings (insertions, deletions, substitutions)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


class TranscriptMethod:
    """The phrase nearest to the greedy transcript (edit distance over phrase length);
    none above a threshold chosen on the training data for the best mean of in-set
    accuracy and out-of-set rejection."""

    name = "transcript"

    def __init__(self, phrase_set: PhraseSet):
        self.phrases = phrase_set.normalized()
        self.threshold = 0.5

    def _nearest(self, data: Data) -> list[tuple[int, float] | None]:
        out = []
        for s in data.scored.scores:
            if s is None:
                out.append(None)
                continue
            distances = [edit_distance(s.hypothesis, p) / len(p) for p in self.phrases]
            k = int(np.argmin(distances))
            out.append((k, distances[k]))
        return out

    @staticmethod
    def _decide(nearest: list[tuple[int, float] | None], threshold: float) -> list[int | None]:
        return [n[0] if n is not None and n[1] <= threshold else None for n in nearest]

    def fit(self, data: list[Data]) -> None:
        """Fit the method to labelled sets (the calibration set)."""
        labels = [k for d in data for k in d.labels]
        nearest = [n for d in data for n in self._nearest(d)]

        def balanced(t: float) -> float:
            m = classification_metrics(labels, self._decide(nearest, t), tuple(self.phrases))
            return ((m["accuracy"] or 0) + (m["rejection"] or 0)) / 2

        self.threshold = max(np.linspace(0.0, 1.5, 31), key=balanced)

    def predict(self, data: Data) -> list[int | None]:
        """The phrase index (or None) this method chooses for each utterance of ``data``."""
        return self._decide(self._nearest(data), self.threshold)


# --- commands ----------------------------------------------------------------------------


def compare(args) -> dict:
    """Fit every method on the calibration set, evaluate on every evaluation set."""
    torch.set_num_threads(1)  # as the recognizer runs live
    phrase_set = load_phrase_set(args.phrases)
    bundle = load_bundle(find_model(args.model))
    work = Path(args.work_dir or f"runs/bench-phrases-{phrase_set.name}-{bundle.name}")
    config = PhraseTrainConfig(phrases=args.phrases, name="bench", work_dir=str(work), synth_dir=str(work / "synth"),
                               **{**COMPARE_SIZES, **given(args, SIZES)}, engines=args.engines or [], workers=args.workers, seed=args.seed)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    corpora = synthesize_corpora(config, phrase_set, log, which=("calibration", "evaluation"))
    from training.synth import build_texts

    words = build_texts(work / "synth" / "words", single_words(phrase_set, args.words, args.seed), args.seed + 3, "eval", SLT_VOICE, False, args.workers)
    slt = read_corpus(str(corpora["evaluation"]))
    sets = {
        "slt phrases": [u for u in slt if u.text in phrase_set.normalized()],
        "slt out-of-set sentences": [u for u in slt if u.text not in phrase_set.normalized()],
        "slt out-of-set words": read_corpus(str(words)),
        "noise and silence": noise_clips(work / "noise", args.noise, args.seed),
        **{spec: read_corpus(spec) for spec in args.eval},
    }
    t0 = time.time()
    calibration = load_data("calibration", bundle, read_corpus(str(corpora["calibration"])), phrase_set)
    evaluation = [load_data(name, bundle, utterances, phrase_set) for name, utterances in sets.items()]
    log(f"emissions of {sum(len(d.labels) for d in [calibration, *evaluation])} utterances in {time.time() - t0:.0f} s")

    methods = [CTCMethod("ctc", phrase_set, bundle.vocabulary, max_false_reject=args.max_false_reject),
               CTCMethod("ctc-default", phrase_set, bundle.vocabulary, ScorerOptions().to_dict())]
    stored = scorer_options(bundle.config, phrase_set)
    if stored:
        methods.append(CTCMethod("ctc-model", phrase_set, bundle.vocabulary, stored))
    methods += [PooledHeadMethod(len(phrase_set.phrases)), TranscriptMethod(phrase_set)]
    results = {}
    for method in methods:
        method.fit([calibration])
        results[method.name] = {d.name: classification_metrics(d.labels, method.predict(d), phrase_set.phrases) for d in evaluation}
    report = {"model": bundle.name, "phrases": phrase_set.name, "results": results,
              "calibrated_options": methods[0].options, "ratios": ratio_summary([calibration.scored, *[d.scored for d in evaluation]])}
    markdown = comparison_markdown(report)
    write_report(work, report, markdown)
    if args.card:
        append_card_section(bundle.path, "## Phrase scoring methods compared", markdown)
    return report


def comparison_markdown(report: dict) -> str:
    """Methods x evaluation sets: in-set accuracy / out-of-set rejection."""
    sets = list(next(iter(report["results"].values())))
    lines = ["## Phrase scoring methods compared", "",
             f"Model `{report['model']}`, phrase set `{report['phrases']}`; each cell is in-set accuracy (a rejection counts "
             "as an error) or the share of out-of-set utterances rejected, measured by `bench/phrases_eval.py compare`. "
             "Methods are fitted on synthetic calibration speech in training voices.", "",
             "| method | " + " | ".join(sets) + " |", "|---" * (len(sets) + 1) + "|"]
    for method, rows in report["results"].items():
        cells = []
        for name in sets:
            row = rows[name]
            value = row["accuracy"] if row["in_set"] else row["rejection"]
            cells.append(f"{value:.3f}" if value is not None else "-")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def append_card_section(model_dir: Path, heading: str, markdown: str) -> None:
    """Put ``markdown`` in a model's card in place of an earlier section under ``heading``."""
    card = Path(model_dir) / "MODEL_CARD.md"
    text = card.read_text(encoding="utf-8")
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + (text[end + 1 :] if end >= 0 else "")
    write_text_atomic(card, text.rstrip("\n") + "\n\n" + markdown)


def speakers(args) -> dict:
    """Per FSDD speaker: a digits phrase model trained without that speaker (FSDD
    takes 5-49 of the others), tested on the speaker's takes 0-4 and on all its takes."""
    fsdd = Path(args.fsdd)
    work = Path(args.work_dir or "runs/bench-phrases-speakers")
    everyone = sorted({u.speaker.split(":", 1)[1] for u in read_fsdd(fsdd)})
    chosen = args.speakers or everyone
    results = {}
    for speaker in chosen:
        others = set(everyone) - {speaker}
        train = write_manifest(work / speaker / "fsdd-train.jsonl", read_fsdd(fsdd, takes=range(5, 50), speakers=others))
        test = write_manifest(work / speaker / "fsdd-test.jsonl", read_fsdd(fsdd, takes=range(0, 5), speakers={speaker}))
        every = write_manifest(work / speaker / "fsdd-all-takes.jsonl", read_fsdd(fsdd, takes=range(0, 50), speakers={speaker}))
        config = PhraseTrainConfig.from_options(
            phrases="digits", name=f"digits-without-{speaker}", base=args.base, corpora=[f"{train}*{args.repeat}"],
            eval=[str(test), str(every)], work_dir=str(work / speaker), synth_dir=str(work / "synth"),
            install_dir=str(work / "models"), max_steps=args.steps, engines=args.engines or [],
            workers=args.workers, seed=args.seed, force=True, **given(args, SIZES + FINE_TUNING))
        report = train_phrase_model(config, log=lambda m: print(m, file=sys.stderr, flush=True))
        results[speaker] = {"takes 0-4": report["metrics"][str(test)]["accuracy"],
                            "all takes": report["metrics"][str(every)]["accuracy"],
                            "slt": report["metrics"]["held-out voice slt"], "seconds": report["training"]["seconds"]}
    mean = lambda key: round(float(np.mean([r[key] for r in results.values()])), 4)  # noqa: E731
    report = {"speakers": results, "mean takes 0-4": mean("takes 0-4"), "mean all takes": mean("all takes")}
    lines = ["## Speaker-independent digits (FSDD, one model per held-out speaker)", "",
             "| held-out speaker | accuracy, takes 0-4 | accuracy, all takes | training s |", "|---|---|---|---|"]
    lines += [f"| {s} | {r['takes 0-4']:.3f} | {r['all takes']:.3f} | {r['seconds']:.0f} |" for s, r in results.items()]
    lines.append(f"| mean | {report['mean takes 0-4']:.3f} | {report['mean all takes']:.3f} | |")
    write_report(work, report, "\n".join(lines) + "\n")
    return report


def text_only(args) -> dict:
    """Build a phrase model from its text alone and report its wall time and numbers."""
    name = f"{load_phrase_set(args.phrases).name}-text-only"
    work = Path(args.work_dir or f"runs/bench-phrases-{name}")
    config = PhraseTrainConfig.from_options(
        phrases=args.phrases, name=name, base=args.base, work_dir=str(work), install_dir=str(work / "models"),
        max_steps=args.steps, engines=args.engines or [], workers=args.workers, seed=args.seed, force=True,
        **given(args, SIZES + FINE_TUNING))
    t0 = time.time()
    report = train_phrase_model(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    slt = report["metrics"]["held-out voice slt"]
    summary = {"phrases": args.phrases, "wall_seconds": round(time.time() - t0, 1), "slt accuracy": slt["accuracy"],
               "slt out-of-set rejection": slt["rejection"], "report": report}
    markdown = (f"## {name}\n\nBuilt from text alone in {summary['wall_seconds'] / 60:.1f} min: held-out voice slt accuracy "
                f"{slt['accuracy']:.3f} on {slt['in_set']} utterances of its phrases, {slt['rejection']:.3f} of {slt['out_of_set']} out-of-set sentences rejected.\n")
    write_report(work, summary, markdown)
    return summary


SIZES = ("takes", "distractors", "calibration_takes", "calibration_distractors", "eval_takes", "eval_distractors")
COMPARE_SIZES = {"calibration_takes": 20, "calibration_distractors": 300, "eval_takes": 10, "eval_distractors": 200}


FINE_TUNING = ("freq_warp", "augment")


def given(args, names) -> dict:
    """The options of ``names`` given on the command line (the others keep the
    defaults of ``livespeech-train phrases``)."""
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def write_report(work: Path, report: dict, markdown: str) -> None:
    """Write ``report.json`` and ``report.md`` to ``work`` and show the markdown."""
    work.mkdir(parents=True, exist_ok=True)
    write_text_atomic(work / "report.json", json.dumps(report, indent=2) + "\n")
    write_text_atomic(work / "report.md", markdown)
    print(markdown, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``compare``, ``speakers`` and ``text-only``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--work-dir", help="cached corpora and reports (default runs/bench-phrases-...)")
    common.add_argument("--engines", nargs="+", choices=["espeak", "flite", "festival", "piper"], help="synthesis engines (default all)")
    common.add_argument("--workers", type=int, default=2, help="synthesis processes (default 2)")
    common.add_argument("--freq-warp", type=float, help="VTLP in fine-tuning, largest mel-axis warp (default: as livespeech-train phrases)")
    common.add_argument("--augment", action=argparse.BooleanOptionalAction, help="waveform augmentation in fine-tuning (default: as livespeech-train phrases)")
    common.add_argument("--seed", type=int, default=7, help="seed of texts and voices (default 7; phrase training uses 1)")
    for name in SIZES:
        common.add_argument("--" + name.replace("_", "-"), type=int, help="synthetic corpus size (default: as livespeech-train phrases; "
                            f"compare: {COMPARE_SIZES.get(name, '-')})")

    p = sub.add_parser("compare", parents=[common], help="scoring methods compared on one model and phrase set")
    p.add_argument("--model", required=True, help="model name or folder")
    p.add_argument("--phrases", required=True, help="phrase set name or file")
    p.add_argument("--eval", nargs="*", default=[], help="labelled corpora, e.g. fsdd-test:../shared/data/fsdd")
    p.add_argument("--words", type=int, default=100, help="out-of-set single words (slt)")
    p.add_argument("--noise", type=int, default=20, help="noise and silence clips")
    p.add_argument("--max-false-reject", type=float, default=0.01)
    p.add_argument("--card", action="store_true", help="write the comparison into the model's MODEL_CARD.md")
    p.set_defaults(func=compare)

    p = sub.add_parser("speakers", parents=[common], help="speaker-independent digits, one model per held-out FSDD speaker")
    p.add_argument("--base", default="base", help="model to fine-tune (default base)")
    p.add_argument("--fsdd", default=str(ROOT.parent / "shared" / "data" / "fsdd"), help="FSDD folder")
    p.add_argument("--speakers", nargs="*", help="only these speakers (default all six)")
    p.add_argument("--steps", type=int, default=800, help="fine-tuning steps per model (default 800)")
    p.add_argument("--repeat", type=int, default=2, help="times FSDD is repeated in training (default 2)")
    p.set_defaults(func=speakers)

    p = sub.add_parser("text-only", parents=[common], help="a phrase model from text alone: time and slt accuracy")
    p.add_argument("--phrases", default="commands")
    p.add_argument("--base", default="base")
    p.add_argument("--steps", type=int, default=800)
    p.set_defaults(func=text_only)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen command and print its report as JSON."""
    args = build_parser().parse_args(argv)
    report = args.func(args)
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
