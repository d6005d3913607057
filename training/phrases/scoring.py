"""Raw phrase scores of labelled utterances, the scorer's choices and their metrics.

Shape legend: S output steps, V vocabulary.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from livespeech.bundle import Bundle
from livespeech.phrases import PhraseScorer, PhraseScores
from training.data import Utterance
from training.phrases.texts import label_of, usable_for_evaluation


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


def score_set(name: str, pairs: list[tuple[Utterance, torch.Tensor]], scorer: PhraseScorer) -> ScoredSet:
    """Raw scores of utterances with their emissions (see :func:`emissions`)."""
    labels = [label_of(u.text, scorer.phrase_set) for u, _ in pairs]
    scores = [scorer.scores(lp) if lp.shape[0] else None for _, lp in pairs]
    return ScoredSet(name, labels, scores, [u.speaker for u, _ in pairs])


def scored_corpus(name: str, bundle: Bundle, utterances: list[Utterance], scorer: PhraseScorer) -> ScoredSet:
    """:func:`score_set` of the utterances usable for evaluation (see
    :func:`training.phrases.texts.usable_for_evaluation`)."""
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
