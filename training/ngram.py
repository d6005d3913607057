"""Word n-gram language models: counting, interpolated modified Kneser-Ney estimation,
count pruning, and the ARPA format.

The estimator follows Chen & Goodman (1998), "An empirical study of smoothing
techniques for language modeling" (TR-10-98), section 3 and 4.1.6, as KenLM's
``lmplz`` does (Heafield et al., 2013):

- Counts. The highest order uses raw counts ``c``.  A lower order n < N uses
  *adjusted* counts: ``a(w_2..w_n) = N1+(. w_2..w_n)``, the number of distinct words
  seen before it, except for n-grams that start with ``<s>`` (nothing precedes them),
  which keep their raw count.  ``<s>`` itself is never predicted.
- Discounts, per order, from the count-of-counts ``n_k`` (n-grams whose count is k):
  ``Y = n1 / (n1 + 2 n2)``, ``D1 = 1 - 2Y n2/n1``, ``D2 = 2 - 3Y n3/n2``,
  ``D3+ = 3 - 4Y n4/n3`` (Chen & Goodman eq. 26).
- Interpolation: ``p(w|h) = (a(hw) - D(a(hw))) / sum_x a(hx) + gamma(h) p(w|h')``,
  ``gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3+ N3+(h.)) / sum_x a(hx)``, where ``h'`` is
  ``h`` without its first word and ``N_k(h.)`` counts the words with count k (3+: at
  least 3) after ``h``.  Unigrams interpolate with the uniform distribution over the
  predicted vocabulary (every word, ``</s>`` and ``<unk>``; not ``<s>``).
- Backoff form: an ARPA file stores ``p(w|h)`` for the n-grams it keeps and a backoff
  weight ``bow(h)`` per context, ``p(w|h) = bow(h) p(w|h')`` for the others.  Without
  pruning ``bow(h) = gamma(h)``.  After pruning, the kept n-grams keep their
  interpolated probabilities and ``bow(h)`` is recomputed so that each context's
  distribution sums to one: ``bow(h) = (1 - sum_kept p(w|h)) / (1 - sum_kept p(w|h'))``
  (the renormalisation of SRILM and of Stolcke, 1998).
- Pruning: n-grams of order n >= 2 whose count (adjusted below the highest order) is
  at most ``prune[n-1]`` are dropped, as ``lmplz --prune`` does, unless a kept longer
  n-gram has them as its context or its suffix (every ARPA n-gram's context and suffix
  must be there).

Word ids: 0 ``<unk>``, 1 ``<s>``, 2 ``</s>``, then the words.  Arrays are numpy; an
order's n-grams are sorted by (context index, word), so a context's n-grams are
contiguous.
"""

from __future__ import annotations

import gzip
import io
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livespeech.atomic import atomic_path

UNK, BOS, EOS = 0, 1, 2
SPECIAL_WORDS = ("<unk>", "<s>", "</s>")
DISCOUNT_FALLBACK = (0.5, 1.0, 1.5)  # lmplz --discount_fallback: when the count-of-counts cannot give discounts
LOG10_ZERO = -99.0  # ARPA's log10 probability of <s>, which is never predicted


class EstimationError(ValueError):
    """The text cannot give a language model (too little of it, bad options)."""


# ----------------------------------------------------------------------------- counting


def encode_corpus(sentences: Iterable[Sequence[int]]) -> np.ndarray:
    """One flat token array of sentences of word ids, each as ``<s> ids... </s>``.

    Returns:
        int32 array, shape (sum(len(s) + 2),).
    """
    flat = array("i")
    for ids in sentences:
        flat.append(BOS)
        flat.extend(ids)
        flat.append(EOS)
    return np.frombuffer(flat, dtype=np.int32).copy() if flat else np.zeros(0, np.int32)


@dataclass
class NgramCounts:
    """The n-gram types of a corpus, orders 1..N, as arrays (``[n - 1]`` is order n).

    Attributes:
        vocabulary_size: V, number of word ids (specials included).
        words: last word of each n-gram, shape (M_n,).  Order 1 holds every id 0..V-1
            in order, so a unigram's index is its word id.
        context: index of the n-gram's first n-1 words in order n-1 (0 for unigrams).
        suffix: index of its last n-1 words in order n-1 (0 for unigrams).
        first: first word of each n-gram.
        counts: raw counts, int64.
    """

    vocabulary_size: int
    words: list[np.ndarray]
    context: list[np.ndarray]
    suffix: list[np.ndarray]
    first: list[np.ndarray]
    counts: list[np.ndarray]

    @property
    def order(self) -> int:
        return len(self.words)


def count_ngrams(tokens: np.ndarray, order: int, vocabulary_size: int) -> NgramCounts:
    """Count every n-gram of orders 1..``order`` that lies within one sentence.

    Args:
        tokens: :func:`encode_corpus` output, shape (L,).
        order: highest order N (>= 1).
        vocabulary_size: V; every token must be below it.
    Returns:
        the :class:`NgramCounts`.  Memory: a few int64 arrays of length L per order.
    Raises:
        EstimationError: order < 1, a token outside 0..V-1, or no sentence.
    """
    if order < 1:
        raise EstimationError(f"order must be at least 1, got {order}")
    tokens = np.asarray(tokens, dtype=np.int64)
    if tokens.size == 0 or tokens.min() < 0 or tokens.max() >= vocabulary_size:
        raise EstimationError("no text, or word ids outside the vocabulary")
    sentence = np.cumsum(tokens == BOS) - 1  # sentence index of each position
    V = vocabulary_size
    words = [np.arange(V, dtype=np.int64)]
    zeros = np.zeros(V, np.int64)
    counts = [np.bincount(tokens, minlength=V).astype(np.int64)]
    context, suffix, first = [zeros], [zeros.copy()], [words[0]]
    index = tokens  # index of the (n-1)-gram starting at each position (-1: none)
    for n in range(2, order + 1):
        L = tokens.size - n + 1
        if L <= 0:
            break
        valid = (sentence[:L] == sentence[n - 1 :]) & (index[:L] >= 0)
        positions = np.flatnonzero(valid)
        keys = index[positions] * V + tokens[positions + n - 1]
        unique, where, inverse, raw = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        del keys
        ctx = unique // V
        at = positions[where]  # a position of each n-gram type
        next_index = np.full(tokens.size, -1, np.int64)
        next_index[positions] = inverse
        words.append(unique % V)
        context.append(ctx)
        suffix.append(index[at + 1])
        first.append(first[-1][ctx])
        counts.append(raw.astype(np.int64))
        index = next_index
    return NgramCounts(V, words, context, suffix, first, counts)


# ----------------------------------------------------------------------------- estimation


def kn_discounts(count_of_counts: Sequence[int], fallback: Sequence[float] | None = DISCOUNT_FALLBACK) -> tuple[float, float, float]:
    """Modified Kneser-Ney discounts D1, D2, D3+ (Chen & Goodman 1998, eq. 26).

    Args:
        count_of_counts: n1, n2, n3, n4: how many n-grams have count 1, 2, 3, 4.
        fallback: discounts used when the formula fails (an n_k is 0, or a discount
            falls outside (0, k]): lmplz's ``--discount_fallback``; None raises instead.
    Returns:
        (D1, D2, D3+).
    Raises:
        EstimationError: the formula fails and there is no fallback.
    """
    n1, n2, n3, n4 = (float(c) for c in count_of_counts[:4])
    if min(n1, n2, n3, n4) > 0:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
        if all(0 < dk <= k for k, dk in enumerate(d, start=1)):
            return d
    if fallback is None:
        raise EstimationError(f"count-of-counts {count_of_counts[:4]} give no valid modified Kneser-Ney discounts")
    return tuple(float(x) for x in fallback)


def adjusted_counts(counts: NgramCounts) -> list[np.ndarray]:
    """The counts Kneser-Ney uses at each order: raw at the highest order and for
    n-grams starting with ``<s>``; N1+(. w...) otherwise; 0 for the unigram ``<s>``."""
    N = counts.order
    adjusted = []
    for n in range(1, N + 1):
        raw = counts.counts[n - 1]
        if n == N:
            a = raw.copy()
        else:
            a = np.bincount(counts.suffix[n], minlength=raw.size).astype(np.int64)
            starts = counts.first[n - 1] == BOS
            a[starts] = raw[starts]
        if n == 1:
            a[BOS] = 0
        adjusted.append(a)
    return adjusted


def count_of_counts(a: np.ndarray) -> list[int]:
    """n1..n4 of an order's counts."""
    return [int(np.count_nonzero(a == k)) for k in (1, 2, 3, 4)]


def prune_mask(counts: NgramCounts, adjusted: list[np.ndarray], prune: Sequence[int]) -> list[np.ndarray]:
    """Which n-grams to keep: all unigrams; of order n >= 2 those with a count above
    ``prune[n-1]`` (missing thresholds: 0), plus the contexts and suffixes of kept
    longer n-grams."""
    N = counts.order
    keep: list[np.ndarray] = [None] * N  # type: ignore[list-item]
    for n in range(N, 0, -1):
        threshold = prune[n - 1] if n - 1 < len(prune) else 0
        kept = adjusted[n - 1] > threshold if n > 1 else np.ones(adjusted[0].size, bool)
        if n < N:
            above = keep[n]
            kept[counts.context[n][above]] = True
            kept[counts.suffix[n][above]] = True
        keep[n - 1] = kept
    return keep


@dataclass
class NgramModel:
    """A backoff n-gram model over word ids, as an ARPA file holds it.

    Attributes:
        vocabulary: the word of each id (``vocabulary[:3]`` are the specials).
        counts: the n-gram types it was estimated from.
        keep: which n-grams of each order the model stores.
        log10_prob: log10 p(w|h) of every counted n-gram of each order (kept or not:
            a pruned one holds its backoff value).
        log10_backoff: log10 bow(h) of every n-gram as a context, orders 1..N-1.
        discounts: (D1, D2, D3+) per order.
    """

    vocabulary: list[str]
    counts: NgramCounts
    keep: list[np.ndarray]
    log10_prob: list[np.ndarray]
    log10_backoff: list[np.ndarray]
    discounts: list[tuple[float, float, float]]

    @property
    def order(self) -> int:
        return self.counts.order

    def sizes(self) -> list[int]:
        """Number of stored n-grams of each order."""
        return [int(k.sum()) for k in self.keep]


def estimate(counts: NgramCounts, vocabulary: Sequence[str], prune: Sequence[int] = (),
             discount_fallback: Sequence[float] | None = DISCOUNT_FALLBACK) -> NgramModel:
    """Interpolated modified Kneser-Ney estimation with count pruning (see the module
    docstring for the formulas).

    Args:
        counts: from :func:`count_ngrams`.
        vocabulary: the word of each id, ``len == counts.vocabulary_size``.
        prune: count threshold per order (n-grams with a count at most it are pruned;
            unigrams are never pruned), e.g. ``(0, 1, 1)`` drops singleton bigrams
            and trigrams.
        discount_fallback: see :func:`kn_discounts`.
    Returns:
        the :class:`NgramModel`.
    Raises:
        EstimationError: the vocabulary does not match, or discounts cannot be found.
    """
    if len(vocabulary) != counts.vocabulary_size or tuple(vocabulary[:3]) != SPECIAL_WORDS:
        raise EstimationError("vocabulary must list every word id, starting with <unk> <s> </s>")
    adjusted = adjusted_counts(counts)
    keep = prune_mask(counts, adjusted, prune)
    predicted = counts.vocabulary_size - 1  # every id but <s>
    lower = np.full(counts.vocabulary_size, 1.0 / predicted)  # p(w|h') for each n-gram; uniform below unigrams
    probs, backoffs, discounts = [], [], []
    for n in range(1, counts.order + 1):
        a = adjusted[n - 1].astype(np.float64)
        ctx = counts.context[n - 1]
        D = kn_discounts(count_of_counts(adjusted[n - 1]), discount_fallback)
        discounts.append(D)
        p = _interpolate(a, ctx, D, lower)
        kept = keep[n - 1]
        if n > 1:
            bow = _backoff_weights(p, lower, ctx, kept, counts.counts[n - 2].size)
            backoffs.append(np.log10(bow))
            p = np.where(kept, p, bow[ctx] * lower)
        else:
            p[BOS] = 0.0
        probs.append(p)
        if n < counts.order:
            lower = p[counts.suffix[n]]  # p(w|h') of each (n+1)-gram: its suffix's probability
    with np.errstate(divide="ignore"):
        log10_prob = [np.log10(p) for p in probs]
    log10_prob[0][BOS] = LOG10_ZERO
    return NgramModel(list(vocabulary), counts, keep, log10_prob, backoffs, discounts)


def _interpolate(a: np.ndarray, ctx: np.ndarray, D: tuple[float, float, float], lower: np.ndarray) -> np.ndarray:
    """Interpolated modified Kneser-Ney p(w|h) of one order's n-grams.

    Args:
        a: counts of the order's n-grams, shape (M,).
        ctx: context index of each, shape (M,).
        D: (D1, D2, D3+).
        lower: p(w|h') of each n-gram, shape (M,).
    """
    contexts = int(ctx.max()) + 1 if ctx.size else 0
    total = np.bincount(ctx, weights=a, minlength=contexts)
    discount = np.select([a >= 3, a == 2, a == 1], [D[2], D[1], D[0]], 0.0)
    mass = np.bincount(ctx, weights=discount, minlength=contexts)  # D1 N1 + D2 N2 + D3+ N3+
    safe = np.where(total > 0, total, 1.0)
    gamma = np.where(total > 0, mass / safe, 1.0)  # a context seen with nothing after it: all to the lower order
    return (a - discount) / safe[ctx] + gamma[ctx] * lower


def _backoff_weights(p: np.ndarray, lower: np.ndarray, ctx: np.ndarray, kept: np.ndarray, contexts: int) -> np.ndarray:
    """bow(h) = (1 - sum_kept p(w|h)) / (1 - sum_kept p(w|h')) for every context h
    (1 for a context with no kept n-gram), shape (contexts,)."""
    numerator = 1.0 - np.bincount(ctx[kept], weights=p[kept], minlength=contexts)
    denominator = 1.0 - np.bincount(ctx[kept], weights=lower[kept], minlength=contexts)
    tiny = 1e-12
    return np.maximum(numerator, tiny) / np.maximum(denominator, tiny)


# ----------------------------------------------------------------------------- ARPA


def ngram_texts(model: NgramModel) -> list[np.ndarray]:
    """The words of each kept n-gram, space-separated, per order (None where pruned)."""
    texts = [np.array(model.vocabulary, dtype=object)]
    for n in range(2, model.order + 1):
        kept = np.flatnonzero(model.keep[n - 1])
        column = np.full(model.keep[n - 1].size, None, dtype=object)
        previous, vocabulary = texts[-1], model.vocabulary
        ctx, words = model.counts.context[n - 1][kept], model.counts.words[n - 1][kept]
        column[kept] = [f"{previous[c]} {vocabulary[w]}" for c, w in zip(ctx.tolist(), words.tolist())]
        texts.append(column)
    return texts


def write_arpa(model: NgramModel, path: Path, digits: int = 5) -> int:
    """Write the model as an ARPA file (Doug Paul's format, as SRILM and KenLM read it).

    A backoff weight of 1 (log10 0) is left out, as the format allows.  A path ending
    in ``.gz`` is gzipped as two gzip members, the header and unigrams in the first
    and the rest in the second (one valid gzip file; :func:`livespeech.lm.with_unigrams`
    rewrites only the first).  The file is written to a temporary name beside it and
    renamed (:func:`livespeech.atomic.atomic_path`): an interrupted write leaves the old one.

    Args:
        digits: decimals of the log10 values (5: relative error below 0.002 %).
    Returns:
        the file size in bytes.
    """
    path = Path(path)
    texts = ngram_texts(model)
    sizes = model.sizes()
    with atomic_path(path) as tmp, _ArpaOutput(tmp, compress=path.name.endswith(".gz")) as f:
        f.write("\\data\\\n" + "".join(f"ngram {n}={m}\n" for n, m in enumerate(sizes, start=1)))
        for n in range(1, model.order + 1):
            if n == 2:
                f.next_member()
            f.write(f"\n\\{n}-grams:\n")
            kept = np.flatnonzero(model.keep[n - 1])
            probs = np.round(model.log10_prob[n - 1][kept], digits).tolist()
            words = texts[n - 1][kept].tolist()
            if n < model.order:
                bows = np.round(model.log10_backoff[n - 1][kept], digits).tolist() if n > 1 else _unigram_backoffs(model, digits)
                lines = (f"{p:.{digits}f}\t{w}\t{b:.{digits}f}\n" if b != 0 else f"{p:.{digits}f}\t{w}\n"
                         for p, w, b in zip(probs, words, bows))
            else:
                lines = (f"{p:.{digits}f}\t{w}\n" for p, w in zip(probs, words))
            f.writelines(lines)
        f.write("\n\\end\\\n")
    return path.stat().st_size


class _ArpaOutput:
    """A text file, plain or gzip; ``next_member`` starts a new gzip member."""

    def __init__(self, path: Path, compress: bool):
        self._raw = open(path, "wb")
        self._compress = compress
        self._open_member()

    def _open_member(self) -> None:
        if self._compress:
            self._zip = gzip.GzipFile(fileobj=self._raw, mode="wb", compresslevel=6, mtime=0)
            self._text = io.TextIOWrapper(self._zip, encoding="utf-8", newline="\n")
        else:
            self._text = io.TextIOWrapper(self._raw, encoding="utf-8", newline="\n", write_through=False)

    def write(self, text: str) -> None:
        self._text.write(text)

    def writelines(self, lines) -> None:
        self._text.writelines(lines)

    def next_member(self) -> None:
        if self._compress:
            self._text.flush()
            self._text.detach()
            self._zip.close()  # writes the member's trailer; the raw file stays open
            self._open_member()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._text.flush()
        if self._compress:
            self._text.detach()
            self._zip.close()
            self._raw.close()
        else:
            self._text.close()


def _unigram_backoffs(model: NgramModel, digits: int) -> list[float]:
    return np.round(model.log10_backoff[0], digits).tolist() if model.order > 1 else [0.0] * len(model.vocabulary)


class ArpaModel:
    """A backoff n-gram model read from an ARPA file (``.gz``: gzip), queried in Python
    (for tests; the decoder and the perplexity report use KenLM).

    Args:
        path: the ARPA file.
    Raises:
        ValueError: not an ARPA file.
    """

    def __init__(self, path: Path):
        self.prob: dict[tuple[str, ...], float] = {}
        self.backoff: dict[tuple[str, ...], float] = {}
        order = 0
        with (gzip.open(path, "rt", encoding="utf-8") if str(path).endswith(".gz") else open(path, encoding="utf-8")) as f:
            if f.readline().strip() != "\\data\\":
                raise ValueError(f"{path}: not an ARPA file")
            for line in f:
                line = line.strip()
                if not line or line.startswith("ngram "):
                    continue
                if line.startswith("\\"):
                    if line == "\\end\\":
                        break
                    order = int(line[1 : line.index("-")])
                    continue
                fields = line.split("\t")
                words = tuple(fields[1].split())
                if len(words) != order:
                    raise ValueError(f"{path}: {line!r} is not a {order}-gram")
                self.prob[words] = float(fields[0])
                if len(fields) > 2:
                    self.backoff[words] = float(fields[2])
        self.order = order

    def log10_prob(self, word: str, context: Sequence[str]) -> float:
        """log10 p(word | context) by backoff; ``context`` is oldest first."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        penalty = 0.0
        while True:
            value = self.prob.get(context + (word,))
            if value is not None:
                return value + penalty
            if not context:
                return self.prob.get(("<unk>",), LOG10_ZERO) + penalty
            penalty += self.backoff.get(context, 0.0)
            context = context[1:]


def perplexity(log10_probs: Sequence[float]) -> float:
    """10 ** (-mean log10 p) of the scored tokens (inf when there are none)."""
    if not log10_probs:
        return math.inf
    return 10.0 ** (-sum(log10_probs) / len(log10_probs))
