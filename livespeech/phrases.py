"""Phrase sets, and which phrase of a set an utterance was (or none of them).

A phrase set is a UTF-8 text file, one phrase per line, ``#`` starting a comment;
bundled sets live in ``assets/phrases/NAME.txt`` (``digits``, ``commands``).

:class:`PhraseScorer` turns one utterance's CTC log-probabilities into a posterior
over the set's phrases plus "none", so it works with any model and any set:

- which phrase: the CTC likelihood of each phrase's characters ``l_k`` given the
  emissions ``X``, summed over all alignments by the forward algorithm (Graves et al.,
  2006, eqs. 5-8), ``ll_k = log P(l_k | X)``, gives the posterior within the set
  (uniform prior, ``temperature`` to soften it): ``q_k = softmax_k(ll_k / temperature)``;
- whether any phrase was said: the best phrase is compared with the free (greedy
  best-path) transcript ``h`` of the same emissions, a filler model as in keyword
  spotting (Rose and Paul, 1990), as a log-likelihood ratio per character of the
  phrase, ``r = (ll_best - log P(h | X)) / |l_best|`` in nats (0 when the transcript
  is the phrase, very negative for other speech: a sentence costs the phrase every
  character it cannot explain), and a logistic model calibrated on in-set and
  out-of-set speech gives ``P(in) = sigmoid(scale * (r - threshold))``;
- so ``p_k = P(in) * q_k`` and ``p_none = 1 - P(in)``; the answer is the most
  probable of the phrases and none, its confidence that probability.

``bench/phrases_eval.py`` compares this with other methods; phrase models made by
``livespeech-train phrases`` store calibrated ``scale``/``threshold``/``temperature``
in their ``config.json`` (see :func:`scorer_options`).

Shape legend: S output steps (30 ms each for the default model), V vocabulary, K phrases.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from livespeech.decoding import greedy_ids
from livespeech.text import BLANK, Vocabulary, normalize

PHRASES_DIR = "phrases"  # inside the bundled assets folder
MAX_PHRASE_FILE_BYTES = 1 << 20  # a phrase list, not a corpus
CONFIG_KEY = "phrases"  # the entry of a phrase model's config.json
NO_PHRASES = "none"  # the phrase-set spec that hides the live view's phrase panel

if TYPE_CHECKING:  # torch is imported where scoring needs it: loading a phrase set stays light
    import torch


class PhraseSetError(ValueError):
    """A phrase set cannot be loaded; the message says why, in one line."""


@dataclass(frozen=True)
class PhraseSet:
    """A named list of phrases, as written in the file (whitespace collapsed)."""

    name: str
    phrases: tuple[str, ...]

    def normalized(self) -> tuple[str, ...]:
        """The phrases as the recognizer spells them (``livespeech.text.normalize``)."""
        return tuple(normalize(p) for p in self.phrases)


def bundled_phrase_sets() -> list[str]:
    """Names of the phrase sets shipped with livespeech."""
    folder = _bundled_folder()
    return sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []


def _bundled_folder() -> Path:
    from livespeech.registry import bundled_dir

    return bundled_dir("assets") / PHRASES_DIR


def means_no_phrases(spec: str | None) -> bool:
    """Whether a live view's ``--phrases`` spec asks for no phrase set: None, or
    ``NO_PHRASES`` in any case with spaces around."""
    return spec is None or spec.strip().lower() == NO_PHRASES


def load_phrase_set(spec: str) -> PhraseSet:
    """A bundled phrase set by name (``digits`` -> ``assets/phrases/digits.txt``), or
    the phrase file at path ``spec`` (its name is the file's stem).

    Raises:
        PhraseSetError: no such set or file, not UTF-8 text, no phrases, a phrase with
            nothing the recognizer can spell, or two lines that are the same phrase.
    """
    path = Path(spec).expanduser()
    if not spec.strip():
        raise PhraseSetError("empty phrase set name")
    if "/" not in spec and "\\" not in spec and not path.suffix:  # a bare name: bundled first
        bundled = _bundled_folder() / f"{spec}.txt"
        if bundled.is_file():
            path = bundled
        elif not path.is_file():
            names = ", ".join(bundled_phrase_sets()) or "none"
            raise PhraseSetError(f"no phrase set named {spec!r} (bundled sets: {names}; or give a file path)")
    return PhraseSet(path.stem, parse_phrases(_read_text(path, spec), spec))


def _read_text(path: Path, spec: str) -> str:
    if not path.exists():
        raise PhraseSetError(f"{spec}: no such file")
    if path.is_dir():
        raise PhraseSetError(f"{spec}: is a directory, not a phrase file")
    try:
        if path.stat().st_size > MAX_PHRASE_FILE_BYTES:
            raise PhraseSetError(f"{spec}: larger than {MAX_PHRASE_FILE_BYTES} bytes; a phrase file lists phrases, one a line")
        data = path.read_bytes()
    except OSError as error:
        raise PhraseSetError(f"{spec}: {error.strerror or error}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise PhraseSetError(f"{spec}:{line}: not UTF-8 text") from None


def parse_phrases(text: str, source: str = "<phrases>") -> tuple[str, ...]:
    """Phrases of a phrase file's text: one a line, ``#`` to the end of a line is a
    comment, blank lines skipped, inner whitespace collapsed.

    Raises:
        PhraseSetError: no phrases, a phrase with no letters the recognizer spells,
            or a phrase that repeats an earlier one once normalised (with line numbers).
    """
    phrases: list[str] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        phrase = " ".join(line.split("#", 1)[0].split())
        if not phrase:
            continue
        key = normalize(phrase)
        if not key.replace(" ", "").replace("'", ""):
            raise PhraseSetError(f"{source}:{number}: {phrase!r} has no letters or digits to recognise")
        if key in seen:
            raise PhraseSetError(f"{source}:{number}: {phrase!r} repeats line {seen[key]}")
        seen[key] = number
        phrases.append(phrase)
    if not phrases:
        raise PhraseSetError(f"{source}: no phrases (write one phrase per line; '#' starts a comment)")
    return tuple(phrases)


@dataclass(frozen=True)
class PhraseResult:
    """The classification of one utterance.

    Attributes:
        phrase: the recognised phrase as written in the set, or None for "none".
        confidence: posterior probability of ``phrase`` (of "none" when it is None).
        top: the most probable phrases of the set with their posteriors, best first
            (never "none"; ``1 - sum`` over all phrases is the posterior of none).
    """

    phrase: str | None
    confidence: float
    top: tuple[tuple[str, float], ...]

    def to_dict(self) -> dict:
        """The JSON fields of ``livespeech classify``: phrase, confidence, top."""
        return {"phrase": self.phrase, "confidence": round(self.confidence, 4),
                "top": [{"phrase": p, "p": round(q, 4)} for p, q in self.top]}


@dataclass(frozen=True)
class ScorerOptions:
    """Settings of :class:`PhraseScorer`.

    Args:
        scale: slope of the in-set logistic, per nat per character (default 3.0).
        threshold: log-likelihood ratio per character, in nats, at which P(in) = 0.5
            (default -1.0; closer to 0 rejects more). The defaults are rounded from a
            calibration of a general model on digits (``bench/phrases_eval.py compare``);
            phrase models store their own.
        temperature: divides the phrases' CTC log-likelihoods before the softmax
            within the set (default 1.0, the model's own posterior).
        top: how many phrases :attr:`PhraseResult.top` lists (default 3).
    Raises:
        ValueError: a non-positive scale, temperature or top, or a positive threshold.
    """

    scale: float = 3.0
    threshold: float = -1.0
    temperature: float = 1.0
    top: int = 3

    def __post_init__(self) -> None:
        if not (self.scale > 0 and self.temperature > 0 and self.top > 0):
            raise ValueError(f"scale, temperature and top must be positive, got {self.scale}, {self.temperature}, {self.top}")
        if not self.threshold <= 0:
            raise ValueError(f"threshold is a log-likelihood ratio and must be <= 0, got {self.threshold}")

    @classmethod
    def from_dict(cls, options: dict) -> "ScorerOptions":
        """Options from keyword values (e.g. a model's config.json).

        Raises:
            ValueError: an unknown option or a bad value.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown phrase scorer option(s) {unknown}; known: {sorted(known)}")
        return cls(**options)

    def to_dict(self) -> dict:
        """The options as keyword values (the ``scorer`` entry of a phrase model's config.json)."""
        return asdict(self)


def ctc_log_likelihoods(log_probs: torch.Tensor, targets: list[list[int]]) -> torch.Tensor:
    """``log P(l | X)`` of each label sequence under CTC: the sum over all alignments,
    by the forward algorithm (Graves et al., 2006, eqs. 5-8, as computed by
    ``torch.nn.functional.ctc_loss``).

    Args:
        log_probs: log-probabilities of one utterance, shape (S, V), blank = 0.
        targets: K label sequences (token ids, no blanks); empty sequences allowed.
    Returns:
        shape (K,), float32; ``-inf`` for a sequence that needs more steps than S.
    """
    import torch
    import torch.nn.functional as F

    S, V = log_probs.shape
    K = len(targets)
    if K == 0:
        return torch.zeros(0)
    batch = log_probs.detach().float().unsqueeze(1).expand(S, K, V)  # (S, K, V)
    flat = torch.tensor([t for seq in targets for t in seq], dtype=torch.long)
    target_lengths = torch.tensor([len(seq) for seq in targets], dtype=torch.long)
    input_lengths = torch.full((K,), S, dtype=torch.long)
    nll = F.ctc_loss(batch, flat, input_lengths, target_lengths, blank=BLANK, reduction="none", zero_infinity=False)
    return -nll  # impossible alignments give +inf loss, so -inf here


@dataclass(frozen=True)
class PhraseScores:
    """The raw scores behind a :class:`PhraseResult` (for calibration and benchmarks).

    Attributes:
        log_likelihoods: ``log P(l_k | X)`` per phrase, shape (K,).
        hypothesis: the greedy transcript of the emissions.
        ratio: the best phrase's log-likelihood ratio against the transcript, nats per
            character of the phrase.
        best: index of the phrase with the highest likelihood.
    """

    log_likelihoods: torch.Tensor
    hypothesis: str
    ratio: float
    best: int


class PhraseScorer:
    """Posterior over a phrase set plus "none" from one utterance's CTC emissions.

    Args:
        phrase_set: the phrases to recognise.
        vocabulary: the model's vocabulary (``bundle.vocabulary``).
        **options: :class:`ScorerOptions` fields (scale, threshold, temperature, top).
    Raises:
        PhraseSetError: a phrase the vocabulary cannot spell.
        ValueError: an unknown option or bad value.
    """

    def __init__(self, phrase_set: PhraseSet, vocabulary: Vocabulary, **options):
        self.phrase_set = phrase_set
        self.vocabulary = vocabulary
        self.options = ScorerOptions.from_dict(options)
        self.targets = [vocabulary.encode(p) for p in phrase_set.normalized()]
        for phrase, tokens in zip(phrase_set.phrases, self.targets):
            if not tokens:
                raise PhraseSetError(f"phrase {phrase!r}: the model's vocabulary cannot spell it")

    def scores(self, log_probs: torch.Tensor) -> PhraseScores:
        """The raw scores of one utterance.

        Args:
            log_probs: log-probabilities, shape (S, V) with S >= 1.
        Raises:
            ValueError: wrong shape.
        """
        if log_probs.dim() != 2 or log_probs.shape[1] != len(self.vocabulary):
            raise ValueError(f"log_probs must have shape (S, {len(self.vocabulary)}), got {tuple(log_probs.shape)}")
        hypothesis = normalize(self.vocabulary.decode(t for t, _ in greedy_ids(log_probs)))
        free = self.vocabulary.encode(hypothesis)
        ll = ctc_log_likelihoods(log_probs, self.targets + [free])
        phrase_ll, free_ll = ll[:-1], float(ll[-1])
        best = int(phrase_ll.argmax())
        ratio = (float(phrase_ll[best]) - free_ll) / len(self.targets[best])
        return PhraseScores(phrase_ll, hypothesis, ratio, best)

    def posterior(self, scores: PhraseScores) -> tuple[torch.Tensor, float]:
        """(p_k for each phrase, shape (K,); p_none) from raw scores."""
        import torch

        o = self.options
        if scores.ratio == float("-inf"):  # no phrase fits in the utterance's steps
            return torch.zeros(len(self.targets)), 1.0
        within = torch.softmax(scores.log_likelihoods.double() / o.temperature, dim=0)
        p_in = float(torch.sigmoid(torch.tensor(o.scale * (scores.ratio - o.threshold), dtype=torch.float64)))
        return (within * p_in).float(), 1.0 - p_in

    def score(self, log_probs: torch.Tensor) -> PhraseResult:
        """Classify one utterance.

        Args:
            log_probs: the utterance's log-probabilities, shape (S, V)
                (``Utterance.log_probs``); S = 0 gives "none" with confidence 1.
        Returns:
            the phrase (or None), its posterior and the top phrases.
        Raises:
            ValueError: ``log_probs`` is not (S, V) for this vocabulary.
        """
        if log_probs.dim() == 2 and log_probs.shape[0] == 0 and log_probs.shape[1] == len(self.vocabulary):
            return PhraseResult(None, 1.0, ())
        return self.result(self.scores(log_probs))

    def result(self, scores: PhraseScores) -> PhraseResult:
        """The classification from raw scores (so calibration can try options cheaply)."""
        p, p_none = self.posterior(scores)
        order = sorted(range(len(p)), key=lambda k: -float(p[k]))  # stable: ties keep phrase order
        top = tuple((self.phrase_set.phrases[k], float(p[k])) for k in order[: self.options.top])
        if top and top[0][1] > p_none:
            return PhraseResult(top[0][0], top[0][1], top)
        return PhraseResult(None, p_none, top)


def model_phrase_set(config: dict) -> PhraseSet | None:
    """The phrase set a phrase model was trained for (its config.json's ``phrases``
    entry), or None for a general model."""
    entry = config.get(CONFIG_KEY)
    if not isinstance(entry, dict) or not isinstance(entry.get("phrases"), list):
        return None
    return PhraseSet(str(entry.get("name", "")), tuple(str(p) for p in entry["phrases"]))


def scorer_options(config: dict, phrase_set: PhraseSet) -> dict:
    """The calibrated scorer options a model's config.json stores for ``phrase_set``
    (empty when the model was not trained for this set: the defaults apply)."""
    trained = model_phrase_set(config)
    if trained is None or trained.normalized() != phrase_set.normalized():
        return {}
    return dict(config[CONFIG_KEY].get("scorer", {}))


def model_for_phrases(phrase_set: PhraseSet) -> Path | None:
    """The folder of an installed phrase model named after ``phrase_set`` and trained
    for exactly its phrases (``livespeech-train phrases SET --out NAME``), or None."""
    from livespeech.bundle import ModelError, read_config
    from livespeech.registry import find_model

    if not phrase_set.name:
        return None
    try:
        folder = find_model(phrase_set.name)
        trained = model_phrase_set(read_config(folder))
    except ModelError:
        return None
    return folder if trained is not None and trained.normalized() == phrase_set.normalized() else None
