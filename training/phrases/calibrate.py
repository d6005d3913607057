"""Calibration of the phrase scorer (:class:`livespeech.phrases.ScorerOptions`) on
labelled scored sets: temperature scaling of the within-set posterior and a
logistic model of rejection on the log-likelihood ratio."""

from __future__ import annotations

import math

import numpy as np
import torch

from livespeech.phrases import PhraseScores, ScorerOptions
from training.phrases.scoring import ScoredSet

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


def _split(sets: list[ScoredSet]) -> tuple[list[tuple[int, PhraseScores]], list[PhraseScores]]:
    """(in-set (label, scores), out-of-set scores) of the utterances with speech."""
    inside = [(k, s) for d in sets for k, s in zip(d.labels, d.scores) if k is not None and s is not None]
    outside = [s for d in sets for k, s in zip(d.labels, d.scores) if k is None and s is not None]
    return inside, outside


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
    inside, outside = _split(sets)
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


def ratio_summary(scored: list[ScoredSet]) -> dict:
    """Percentiles of the log-likelihood ratio of in-set and out-of-set utterances
    (for choosing default scorer options)."""
    inside, outside = _split(scored)

    def percentiles(ratios: list[float]) -> dict:
        if not ratios:
            return {}
        return {str(q): round(float(np.percentile(np.maximum(ratios, RATIO_FLOOR), q)), 3) for q in (1, 5, 50, 95, 99)}

    return {"in_set": percentiles([s.ratio for _, s in inside]), "out_of_set": percentiles([s.ratio for s in outside])}
