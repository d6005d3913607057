"""Greedy CTC decoding, offline and streaming, with word timestamps.

Greedy (best path) decoding takes the most likely token at each output step, merges
repeats and drops blanks (Graves et al., 2006).  The streaming decoder carries the
previous step's token across chunks, so a character whose spike spans a chunk
boundary is emitted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from livespeech.text import BLANK, Vocabulary

if TYPE_CHECKING:  # tensors come in, torch is not called: importing this module stays light
    import torch


@dataclass(frozen=True)
class Emission:
    """A token emitted at output step ``step`` (time ``step * seconds_per_step``)."""

    token: int
    char: str
    step: int


@dataclass(frozen=True)
class Word:
    """A word and its time span in seconds from the start of the stream."""

    word: str
    start_s: float
    end_s: float

    def to_dict(self) -> dict:
        return {"word": self.word, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}


def best_tokens(log_probs: torch.Tensor, blank_penalty: float = 0.0) -> list[int]:
    """The most likely token of each step, with ``blank_penalty`` (natural-log units)
    taken off blank's log-probability first.

    A penalty above 0 lets a character through where blank only narrowly won, against
    a CTC model's habit of deleting characters it is unsure of (the ``blank_penalty``
    of icefall and sherpa-onnx); a model folder stores its tuned value
    (:attr:`livespeech.bundle.Bundle.blank_penalty`, ``bench/blank_penalty.py``).

    Args:
        log_probs: shape (S, V).
    Returns:
        S token ids.
    """
    if blank_penalty:
        log_probs = log_probs.clone()
        log_probs[..., BLANK] -= blank_penalty
    return log_probs.argmax(dim=-1).tolist()


def collapse(tokens: list[int], previous: int = BLANK) -> list[tuple[int, int]]:
    """CTC's best-path rule: the (token, step) pairs emitted by a sequence of best
    tokens, repeats merged and blanks dropped; ``previous`` is the token of the step
    before the first (BLANK at a stream's start)."""
    out = []
    for step, token in enumerate(tokens):
        if token != BLANK and token != previous:
            out.append((token, step))
        previous = token
    return out


def greedy_ids(log_probs: torch.Tensor, previous: int = BLANK, blank_penalty: float = 0.0) -> list[tuple[int, int]]:
    """Best-path tokens of one utterance as (token, step) pairs.

    Args:
        log_probs: shape (S, V).
        previous: the token of the step before the first (BLANK at a stream's start).
        blank_penalty: taken off blank's log-probability (:func:`best_tokens`).
    Returns:
        the emitted (token, step) pairs, repeats merged and blanks dropped.
    """
    return collapse(best_tokens(log_probs, blank_penalty), previous)


def greedy_text(log_probs: torch.Tensor, lengths: torch.Tensor, vocabulary: Vocabulary) -> list[str]:
    """Greedy transcripts of a batch.

    Args:
        log_probs: shape (B, S, V).
        lengths: valid steps per utterance, shape (B,).
    Returns:
        B strings.
    """
    return [vocabulary.decode(t for t, _ in greedy_ids(lp[: int(n)])) for lp, n in zip(log_probs, lengths)]


class GreedyCTCDecoder:
    """Streaming greedy CTC decoder: :meth:`update` with each chunk's log-probabilities,
    read :attr:`text` and :meth:`words` at any time, :meth:`reset` for a new stream.

    Args:
        vocabulary: the model's vocabulary.
        seconds_per_step: duration of one output step (hop_length * stack / sample_rate).
        blank_penalty: taken off blank's log-probability before each step's best token
            is chosen (:func:`best_tokens`; 0: plain best path).
    """

    def __init__(self, vocabulary: Vocabulary, seconds_per_step: float, blank_penalty: float = 0.0):
        self.vocabulary = vocabulary
        self.seconds_per_step = seconds_per_step
        self.blank_penalty = blank_penalty
        self.reset()

    def reset(self, step_offset: int = 0) -> None:
        """Start a new stream whose first step is ``step_offset`` (for timestamps)."""
        self._previous = BLANK
        self._step = step_offset
        self.emissions: list[Emission] = []

    @property
    def steps(self) -> int:
        """Output steps consumed so far, offset included."""
        return self._step

    def update(self, log_probs: torch.Tensor) -> list[Emission]:
        """Consume the next steps of log-probabilities, shape (s, V); return new emissions."""
        if log_probs.shape[0] == 0:
            return []
        tokens = best_tokens(log_probs, self.blank_penalty)
        new = [Emission(t, self.vocabulary.tokens[t], self._step + s) for t, s in collapse(tokens, self._previous)]
        self._previous = tokens[-1]
        self._step += log_probs.shape[0]
        self.emissions.extend(new)
        return new

    @property
    def text(self) -> str:
        """The transcript so far, spaces normalised."""
        return " ".join("".join(e.char for e in self.emissions).split())

    def words(self) -> list[Word]:
        """Words so far with times: from the first character's step to one step after the last."""
        words, current = [], []
        for emission in self.emissions + [Emission(0, " ", -1)]:
            if emission.char == " ":
                if current:
                    start, end = current[0].step, current[-1].step + 1
                    words.append(Word("".join(e.char for e in current), start * self.seconds_per_step, end * self.seconds_per_step))
                current = []
            else:
                current.append(emission)
        return words
