"""Phrase sets, the CTC phrase scorer on hand-built emissions, and its calibration."""

import itertools
import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from livespeech.bundle import save_bundle
from livespeech.features import FeatureConfig
from livespeech.phrases import (
    PhraseResult, PhraseScorer, PhraseSet, PhraseSetError, ScorerOptions, bundled_phrase_sets, ctc_log_likelihoods,
    load_phrase_set, model_for_phrases, model_phrase_set, parse_phrases, scorer_options,
)
from livespeech.text import BLANK, Vocabulary
from tests.conftest import ROOT, make_model
from training.data import Utterance
from livespeech.model import ModelDims
from training.config import TrainConfig
from training.phrases.calibrate import calibrate, fit_logistic, fit_temperature
from training.phrases.config import PhraseTrainConfig
from training.phrases.corpora import split_recordings
from training.phrases.install import install
from training.phrases.scoring import ScoredSet, classification_metrics, predictions
from training.phrases.texts import contains_phrase, distractor_texts, label_of, usable_for_evaluation

VOCAB = Vocabulary()
DIGITS = load_phrase_set("digits")
COMMANDS = load_phrase_set("commands")


def spoken(text: str, steps_per_char: int = 3, confidence: float = 0.95, silence: int = 4) -> torch.Tensor:
    """Hand-built CTC emissions, shape (S, V), that spell ``text``: each character
    peaks for one step, followed by blank steps, with silence (blank) around."""
    V = len(VOCAB)
    rest = (1 - confidence) / (V - 1)
    rows = []

    def step(token: int) -> None:
        row = torch.full((V,), rest)
        row[token] = confidence
        rows.append(row)

    for _ in range(silence):
        step(BLANK)
    for token in VOCAB.encode(text):
        step(token)
        for _ in range(steps_per_char - 1):
            step(BLANK)
    for _ in range(silence):
        step(BLANK)
    return torch.stack(rows).log()


# --- phrase sets ------------------------------------------------------------------------


def test_bundled_sets():
    assert DIGITS.phrases == tuple("zero one two three four five six seven eight nine".split())
    assert DIGITS.name == "digits"
    assert {"digits", "commands"} <= set(bundled_phrase_sets())
    assert len(COMMANDS.phrases) >= 12 and "lights on" in COMMANDS.phrases and "next slide" in COMMANDS.phrases


def test_phrase_file_with_comments_bom_and_spacing(tmp_path):
    path = tmp_path / "my set.txt"
    path.write_bytes("\ufeff# my phrases\n\n  Lights   On  \nCafé au lait # a comment\nCall 911\n".encode("utf-8"))
    phrase_set = load_phrase_set(str(path))
    assert phrase_set == PhraseSet("my set", ("Lights On", "Café au lait", "Call 911"))
    assert phrase_set.normalized() == ("lights on", "cafe au lait", "call nine one one")


@pytest.mark.parametrize("content, reason", [
    (b"", "no phrases"),
    (b"# only a comment\n\n", "no phrases"),
    (b"lights on\nLights  ON!\n", ":2: 'Lights ON!' repeats line 1"),
    (b"yes\n!!!\n", ":2: '!!!' has no letters"),
    (b"yes\n\xff\xfe no\n", ":2: not UTF-8"),
])
def test_bad_phrase_files(tmp_path, content, reason):
    path = tmp_path / "set.txt"
    path.write_bytes(content)
    with pytest.raises(PhraseSetError, match=reason):
        load_phrase_set(str(path))


def test_missing_sets_say_why(tmp_path):
    with pytest.raises(PhraseSetError, match="no phrase set named 'nosuch'.*digits"):
        load_phrase_set("nosuch")
    with pytest.raises(PhraseSetError, match="no such file"):
        load_phrase_set(str(tmp_path / "missing.txt"))
    with pytest.raises(PhraseSetError, match="is a directory"):
        load_phrase_set(str(tmp_path))
    assert isinstance(PhraseSetError("x"), ValueError)


def test_parse_phrases_keeps_order():
    assert parse_phrases("b\na\nc # x\n") == ("b", "a", "c")


# --- CTC forward score --------------------------------------------------------------------


def _brute_force(log_probs: torch.Tensor, target: list[int]) -> float:
    """log P(target | X) by enumerating every path (tiny S and V only)."""
    S, V = log_probs.shape
    total = []
    for path in itertools.product(range(V), repeat=S):
        collapsed, previous = [], BLANK
        for token in path:
            if token != BLANK and token != previous:
                collapsed.append(token)
            previous = token
        if collapsed == target:
            total.append(sum(float(log_probs[s, t]) for s, t in enumerate(path)))
    return float(torch.logsumexp(torch.tensor(total, dtype=torch.float64), 0)) if total else -math.inf


@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_forward_equals_sum_over_paths(seed):
    torch.manual_seed(seed)
    log_probs = torch.randn(5, 4).log_softmax(-1)
    targets = [[1, 2], [], [1, 1], [3], [2, 1, 3], [1, 2, 3, 1, 2, 3]]
    got = ctc_log_likelihoods(log_probs, targets)
    for value, target in zip(got.tolist(), targets):
        expected = _brute_force(log_probs, target)
        assert value == pytest.approx(expected, abs=1e-4) if math.isfinite(expected) else value == -math.inf


# --- the scorer on hand-built emissions -----------------------------------------------------


def test_known_phrase_wins_with_high_confidence():
    scorer = PhraseScorer(DIGITS, VOCAB)
    result = scorer.score(spoken("seven"))
    assert result.phrase == "seven" and result.confidence > 0.9
    assert result.top[0] == ("seven", result.confidence) and len(result.top) == 3
    assert [p for _, p in result.top] == sorted((p for _, p in result.top), reverse=True)


def test_close_phrases_are_told_apart():
    scorer = PhraseScorer(COMMANDS, VOCAB)
    assert scorer.score(spoken("lights off")).phrase == "lights off"
    assert scorer.score(spoken("lights on")).phrase == "lights on"
    assert scorer.score(spoken("stop recording")).phrase == "stop recording"


def test_a_misspelt_transcript_still_ranks_its_phrase_first():
    emissions = spoken("sevn", confidence=0.8)  # the model was sure there was no second 'e'
    assert PhraseScorer(DIGITS, VOCAB).score(emissions).top[0][0] == "seven"
    assert PhraseScorer(DIGITS, VOCAB, threshold=-1.5).score(emissions).phrase == "seven"


def test_out_of_set_speech_is_rejected():
    scorer = PhraseScorer(DIGITS, VOCAB)
    for text in ("the weather is nice today", "hello", "lights on"):
        result = scorer.score(spoken(text))
        assert result.phrase is None and result.confidence > 0.9, (text, result)
        assert sum(p for _, p in result.top) < 0.1


def test_silence_and_empty_utterances_are_none():
    scorer = PhraseScorer(DIGITS, VOCAB)
    assert scorer.score(spoken("", silence=20)).phrase is None
    assert scorer.score(torch.zeros(0, len(VOCAB))) == PhraseResult(None, 1.0, ())
    assert scorer.score(spoken("seven", silence=0)[:3]).phrase is None  # too short for any phrase


def test_posteriors_sum_to_one_with_none():
    scorer = PhraseScorer(DIGITS, VOCAB, top=10)
    for text in ("one", "nine", "nune", "banana"):
        scores = scorer.scores(spoken(text, confidence=0.6))
        p, p_none = scorer.posterior(scores)
        assert float(p.sum()) + p_none == pytest.approx(1.0, abs=1e-5)
        result = scorer.result(scores)
        assert len(result.top) == 10 and sum(q for _, q in result.top) == pytest.approx(float(p.sum()), abs=1e-5)


def test_options_move_the_posterior_the_right_way():
    emissions = spoken("sevn", confidence=0.7)
    strict = PhraseScorer(DIGITS, VOCAB, threshold=-0.05).scores(emissions)
    p_strict = PhraseScorer(DIGITS, VOCAB, threshold=-0.05).posterior(strict)[1]
    p_loose = PhraseScorer(DIGITS, VOCAB, threshold=-2.0).posterior(strict)[1]
    assert p_strict > p_loose  # a threshold closer to 0 rejects more
    sharp = PhraseScorer(DIGITS, VOCAB, temperature=1.0).posterior(strict)[0]
    flat = PhraseScorer(DIGITS, VOCAB, temperature=50.0).posterior(strict)[0]
    assert sharp.max() / sharp.sum() > flat.max() / flat.sum()


def test_scorer_rejects_bad_input():
    with pytest.raises(ValueError, match="unknown phrase scorer option"):
        PhraseScorer(DIGITS, VOCAB, sharpness=2)
    with pytest.raises(ValueError, match="positive"):
        PhraseScorer(DIGITS, VOCAB, scale=0)
    with pytest.raises(ValueError, match=r"shape \(S, 29\)"):
        PhraseScorer(DIGITS, VOCAB).score(torch.zeros(10, 5))
    with pytest.raises(PhraseSetError, match="cannot spell"):
        PhraseScorer(DIGITS, Vocabulary(("<blank>", " ", "a", "b")))


def test_result_json_fields():
    result = PhraseResult("one", 0.912345, (("one", 0.912345), ("nine", 0.05)))
    assert result.to_dict() == {"phrase": "one", "confidence": 0.9123, "top": [{"phrase": "one", "p": 0.9123}, {"phrase": "nine", "p": 0.05}]}
    assert json.loads(json.dumps(PhraseResult(None, 1.0, ()).to_dict()))["phrase"] is None


# --- phrase models: stored options and lookup -----------------------------------------------


def _phrase_model(folder, phrase_set: PhraseSet, scorer: dict):
    info = {"name": folder.name, "phrases": {"name": phrase_set.name, "phrases": list(phrase_set.phrases), "scorer": scorer}}
    return save_bundle(folder, make_model(), FeatureConfig(), Vocabulary(), info, "# test\n")


def test_stored_options_apply_only_to_their_set(tmp_path):
    config = {"phrases": {"name": "digits", "phrases": list(DIGITS.phrases), "scorer": {"threshold": -0.3}}}
    assert model_phrase_set(config) == DIGITS
    assert scorer_options(config, DIGITS) == {"threshold": -0.3}
    assert scorer_options(config, COMMANDS) == {}
    assert model_phrase_set({}) is None and scorer_options({}, DIGITS) == {}


def test_model_for_phrases_finds_the_set_model(tmp_path, monkeypatch):
    monkeypatch.setattr("livespeech.registry.model_dirs", lambda: [("user", tmp_path)])  # hide the bundled models
    assert model_for_phrases(DIGITS) is None
    folder = _phrase_model(tmp_path / "digits", DIGITS, {})
    assert model_for_phrases(DIGITS) == folder
    other = PhraseSet("digits", ("zero", "one"))  # same name, other phrases
    assert model_for_phrases(other) is None


# --- calibration and evaluation (training.phrases) ------------------------------------------


def _scored(texts_and_labels, scorer, name="set"):
    labels = [k for _, k in texts_and_labels]
    scores = [scorer.scores(spoken(t, confidence=c)) for (t, c), _ in texts_and_labels]
    return ScoredSet(name, labels, scores, ["x"] * len(labels))


def test_fit_logistic_separates_ratios():
    scale, threshold = fit_logistic([-0.1, 0.0, -0.2, 0.1], [-1.5, -2.0, -1.0, -3.0])
    assert -1.0 < threshold < -0.2 and scale > 1
    with pytest.raises(ValueError, match="both in-set and out-of-set"):
        fit_logistic([0.0], [])


def test_fit_temperature_follows_how_reliable_the_ranking_is():
    scorer = PhraseScorer(DIGITS, VOCAB)
    right = [(DIGITS.phrases.index(t), scorer.scores(spoken(t, confidence=0.6))) for t in ("one", "two", "six")]
    wrong = [(DIGITS.phrases.index(t), scorer.scores(spoken(s, confidence=0.6))) for t, s in (("one", "two"), ("six", "five"))]
    assert fit_temperature(right) < fit_temperature(right + wrong)


def test_calibration_keeps_in_set_and_rejects_out_of_set():
    scorer = PhraseScorer(DIGITS, VOCAB)
    inside = [((t, c), DIGITS.phrases.index(t)) for t in ("one", "two", "three", "seven", "eight") for c in (0.5, 0.7, 0.9)]
    near = [(("sevn", 0.6), DIGITS.phrases.index("seven")), (("nin", 0.6), DIGITS.phrases.index("nine"))]
    outside = [((t, 0.8), None) for t in ("hello there", "good morning", "banana", "the cat sat", "on the table", "zebra")]
    calibration = _scored(inside + near + outside, scorer)
    options = calibrate([calibration], max_false_reject=0.0)
    calibrated = PhraseScorer(DIGITS, VOCAB, **options.to_dict())
    metrics = classification_metrics(calibration.labels, predictions(calibrated, calibration), DIGITS.phrases)
    assert metrics["accuracy"] == 1.0 and metrics["false_reject"] == 0.0
    assert metrics["rejection"] >= 5 / 6
    assert options.threshold <= 0 and options.scale > 0


def test_classification_metrics():
    phrases = ("a", "b")
    m = classification_metrics([0, 0, 1, None, None], [0, None, 0, None, 1], phrases)
    assert m["in_set"] == 3 and m["accuracy"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["false_reject"] == pytest.approx(1 / 3, abs=1e-4) and m["out_of_set"] == 2 and m["rejection"] == 0.5
    assert {"said": "none", "got": "b", "count": 1} in m["errors"]


def test_out_of_set_text_contains_no_phrase():
    assert contains_phrase("call me at five", DIGITS.normalized())
    assert not contains_phrase("fiver and ones", DIGITS.normalized())
    texts = distractor_texts(DIGITS, 40, seed=3)
    assert len(texts) == 40 and not any(contains_phrase(t, DIGITS.normalized()) for _, t in texts)
    assert distractor_texts(DIGITS, 40, seed=3, split="eval") != texts


def test_labels_and_usable_evaluation_utterances():
    assert label_of("Seven", DIGITS) == 7 and label_of("seventy", DIGITS) is None
    utterances = [Utterance("a.wav", t) for t in ("seven", "seven dollars", "good night")]
    assert [u.text for u in usable_for_evaluation(utterances, DIGITS)] == ["seven", "good night"]


def test_recordings_hold_out_every_fifth_take(tmp_path):
    for phrase, takes in (("lights_on", 5), ("next_slide", 3)):
        (tmp_path / phrase).mkdir()
        for i in range(takes):
            (tmp_path / phrase / f"take_{i + 1:03d}.wav").write_bytes(b"")
    train, held_out = split_recordings([str(tmp_path)])
    assert [u.text for u in held_out] == ["lights on"] and held_out[0].audio.endswith("take_005.wav")
    assert len(train) == 7
    with pytest.raises(ValueError, match="not found"):
        split_recordings([str(tmp_path / "missing")])


def test_install_replaces_only_with_force(tmp_path):
    staging, destination = tmp_path / "staging", tmp_path / "models" / "mine"
    staging.mkdir()
    (staging / "config.json").write_text("new")
    install(staging, destination)
    assert (destination / "config.json").read_text() == "new"
    (staging / "config.json").write_text("newer")
    with pytest.raises(FileExistsError, match="--force"):
        install(staging, destination)
    install(staging, destination, force=True)
    assert (destination / "config.json").read_text() == "newer"
    assert sorted(p.name for p in destination.parent.iterdir()) == ["mine"]


def test_phrase_config_fine_tunes_with_a_train_config(tmp_path):
    config = PhraseTrainConfig.from_options("digits", "mine", max_steps=40, lr=1e-3, workers=1, work_dir=str(tmp_path))
    assert config.workers == 1 and config.fine_tuning.workers == TrainConfig().workers  # synthesis, not DataLoader, workers
    dims = ModelDims(n_mels=80, stack=2, hidden=64, layers=1, vocab_size=29, dropout=0.0, head_steps=3)
    run = config.train_config(dims, tmp_path / "base", ["train.jsonl*2"])
    assert (run.max_steps, run.lr, run.lr_min, run.warmup_steps, run.freq_warp, run.seed) == (40, 1e-3, 1e-3 / 20, 50, 0.15, 1)
    assert (run.stack, run.hidden, run.layers, run.dropout, run.head_steps) == (2, 64, 1, 0.0, 3)
    assert run.dims(29, 80) == dims  # the phrase model has the base model's shape, its context head included
    assert run.run_dir == str(tmp_path / "run") and run.init_from == str(tmp_path / "base") and run.train == ["train.jsonl*2"]
    assert run.log_every == 4 and run.eval_every == 400
    with pytest.raises(ValueError, match="--steps must be positive"):
        PhraseTrainConfig.from_options("digits", "mine", max_steps=0)
    with pytest.raises(ValueError, match="plain model name"):
        PhraseTrainConfig("digits", "../mine")


def test_default_options_are_valid():
    options = ScorerOptions()
    assert ScorerOptions.from_dict(options.to_dict()) == options


# --- the phrase-model pipeline, end to end on tiny settings ----------------------------------


def _run_module(module: str, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env, timeout=600)


def _train(*args):
    return _run_module("training", "phrases", *args)


def subprocess_livespeech(*args):
    return _run_module("livespeech", *args)


@pytest.mark.slow
@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite") and shutil.which("sox")), reason="needs espeak-ng, flite, sox")
def test_phrase_training_smoke(tmp_path, tiny_model_dir):
    """Synthesise, fine-tune, calibrate, evaluate and install a two-phrase model with
    tiny settings; then classify with it, and resume instead of redoing the work."""
    (tmp_path / "two.txt").write_text("lights on\nnext slide\n")
    tiny = ["--base", tiny_model_dir, "--work-dir", tmp_path / "work", "--install-dir", tmp_path / "models", "--takes", "3",
            "--distractors", "4", "--calibration-takes", "2", "--calibration-distractors", "4", "--eval-takes", "2",
            "--eval-distractors", "3", "--steps", "6", "--engines", "espeak", "--workers", "1", "--batch-frames", "2000"]
    p = _train(tmp_path / "two.txt", "--out", "two", *tiny)
    assert p.returncode == 0, p.stderr[-2000:]
    report = json.loads(p.stdout)
    folder = tmp_path / "models" / "two"
    assert report["model"] == str(folder)
    config = json.loads((folder / "config.json").read_text())
    assert model_phrase_set(config) == PhraseSet("two", ("lights on", "next slide"))
    ScorerOptions.from_dict(config["phrases"]["scorer"])
    slt = config["phrases"]["metrics"]["held-out voice slt"]
    assert slt["in_set"] == 4 and slt["out_of_set"] == 3
    assert "## Phrases" in (folder / "MODEL_CARD.md").read_text()
    manifest = [json.loads(line) for line in (tmp_path / "work" / "synth" / "train" / "manifest.jsonl").read_text().splitlines()]
    assert sum(r["text"] == "lights on" for r in manifest) == 3 and all(r["voice"].startswith("espeak:") for r in manifest)
    evaluation = (tmp_path / "work" / "synth" / "evaluation" / "manifest.jsonl").read_text()
    assert all(json.loads(line)["voice"] == "flite:slt" for line in evaluation.splitlines())
    clip = tmp_path / "work" / "synth" / "evaluation" / json.loads(evaluation.splitlines()[0])["audio"]
    p = subprocess_livespeech("classify", "--model", folder, "--format", "json", clip)  # the model's own phrase set
    assert p.returncode == 0 and json.loads(p.stdout)["phrase"] in ("lights on", "next slide", None)

    p = _train(tmp_path / "two.txt", "--out", "two", *tiny)
    assert p.returncode == 1 and "exists (use --force" in p.stderr
    p = _train(tmp_path / "two.txt", "--out", "two", *tiny, "--force")
    assert p.returncode == 0 and "resumed from" in p.stderr and '"step": 1,' not in p.stderr


# --- the methods the benchmark compares (bench/phrases_eval.py) ------------------------------


def _bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("phrases_eval", ROOT / "bench" / "phrases_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_benchmark_methods_learn_a_clean_set():
    bench = _bench()
    assert bench.edit_distance("seven", "sevn") == 1 and bench.edit_distance("", "abc") == 3 and bench.edit_distance("ab", "ba") == 2
    scorer = PhraseScorer(DIGITS, VOCAB)
    texts = [(t, DIGITS.phrases.index(t)) for t in ("one", "two", "six", "nine")]
    texts += [(t, None) for t in ("hello there", "good morning", "banana split")]

    def data(confidence):
        items = [(t, k) for t, k in texts for _ in range(3)]
        emissions = [spoken(t, confidence=confidence) for t, _ in items]
        scored = ScoredSet("x", [k for _, k in items], [scorer.scores(e) for e in emissions], ["x"] * len(items))
        return bench.Data("x", scored.labels, emissions, scored)

    train, test = data(0.9), data(0.7)
    for method in (bench.PooledHeadMethod(len(DIGITS.phrases)), bench.TranscriptMethod(DIGITS),
                   bench.CTCMethod("ctc", DIGITS, VOCAB, max_false_reject=0.0)):
        method.fit([train])
        assert method.predict(test) == test.labels, method.name
