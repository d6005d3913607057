"""Deterministic stand-ins for the live tests: a recognizer that reads characters
straight out of the signal, a source the test feeds by hand, and a phrase scorer.

The fake recognizer's "model": every 30 ms step (480 samples at 16 kHz) whose mean
is ``v`` has best token ``round(v * 100)`` (0 = blank), with one-hot log-probabilities,
decoded by the real :class:`GreedyCTCDecoder`.  An utterance ends after
``endpoint_steps`` blank steps that follow a character.  So the text depends only on
the audio, never on chunk sizes or timing, and :func:`encode` writes audio for any text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from livespeech.capture import Source
from livespeech.decoding import GreedyCTCDecoder
from livespeech.recognizer import ChunkResult, Utterance
from livespeech.text import BLANK, Vocabulary

RATE = 16_000
STEP = 480  # samples per step (3 frames of 160)
VOCABULARY = Vocabulary()


def encode(text: str, pause_steps: int = 25) -> np.ndarray:
    """Audio the fake recognizer reads as ``text`` followed by a pause, float32 (n,).

    Each character takes one step, then one blank step (so doubled letters survive)."""
    steps = []
    for token in VOCABULARY.encode(text):
        steps += [token, BLANK]
    steps += [BLANK] * pause_steps
    return np.repeat(np.array(steps, np.float32) / 100, STEP)


class FakeRecognizer:
    """The :class:`~livespeech.recognizer.Recognizer` interface over :func:`encode`d audio."""

    sample_rate = RATE
    stack = 3
    seconds_per_step = 0.03

    def __init__(self, endpoint_steps: int = 20):
        self.endpoint_steps = endpoint_steps
        self.decoder = GreedyCTCDecoder(VOCABULARY, self.seconds_per_step)
        self.accepted = 0  # accept() calls, for tests
        self.reset()

    def reset(self) -> None:
        self.decoder.reset()
        self._pending = np.zeros(0, np.float32)
        self._samples = 0
        self._start_step = 0
        self._silent = 0
        self._rows: list[torch.Tensor] = []

    def accept(self, samples: np.ndarray) -> ChunkResult:
        self.accepted += 1
        self._samples += len(samples)
        self._pending = np.concatenate([self._pending, samples])
        whole = len(self._pending) // STEP * STEP
        tokens = np.clip(np.round(self._pending[:whole].reshape(-1, STEP).mean(axis=1) * 100), 0, len(VOCABULARY) - 1)
        self._pending = self._pending[whole:]
        return self._run(tokens.astype(int).tolist())

    def flush(self) -> ChunkResult:
        tokens = [0] if len(self._pending) else []
        result = self._run(tokens)
        final = self._commit()
        result = ChunkResult(result.features, result.emissions, "", result.committed + ((final,) if final else ()),
                             result.audio_s, 0.0)
        self.reset()
        return result

    def _run(self, tokens: list[int]) -> ChunkResult:
        emissions, committed = [], []
        for token in tokens:
            row = torch.full((1, len(VOCABULARY)), -30.0)
            row[0, token] = 0.0
            emissions += self.decoder.update(row)
            self._rows.append(row)
            self._silent = self._silent + 1 if token == BLANK else 0
            if self.decoder.emissions and self._silent >= self.endpoint_steps:
                committed.append(self._commit())
        features = torch.tensor(np.repeat(-10.0 + np.array(tokens, np.float32) / 2, self.stack))[:, None].repeat(1, 80)
        return ChunkResult(features.reshape(-1, 80), tuple(emissions), self.decoder.text, tuple(c for c in committed if c),
                           self._samples / RATE, 0.001)

    def _commit(self) -> Utterance | None:
        text, words = self.decoder.text, tuple(self.decoder.words())
        log_probs = torch.cat(self._rows) if self._rows else torch.zeros(0, len(VOCABULARY))
        start, end = self._start_step * self.seconds_per_step, self.decoder.steps * self.seconds_per_step
        self._start_step, self._silent, self._rows = self.decoder.steps, 0, []
        self.decoder.reset(step_offset=self.decoder.steps)
        return Utterance(text, words, start, end, log_probs) if text else None


class FailingRecognizer(FakeRecognizer):
    """A :class:`FakeRecognizer` whose ``accept`` raises ``RuntimeError(message)`` on the
    calls numbered in ``failing`` (from 1)."""

    def __init__(self, failing, message: str = "boom"):
        self.failing, self.message = failing, message
        super().__init__()

    def accept(self, samples: np.ndarray) -> ChunkResult:
        if self.accepted + 1 in self.failing:
            self.accepted += 1
            raise RuntimeError(self.message)
        return super().accept(samples)


class ScriptedSource(Source):
    """A source the test drives: :meth:`feed` audio, :meth:`fail`, :meth:`finish`."""

    def __init__(self, sample_rate: int = RATE, label: str = "scripted", buffer_s: float = 60.0):
        super().__init__(sample_rate, label, buffer_s)
        self.started = self.stopped = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def feed(self, samples: np.ndarray) -> None:
        if not self.paused:
            self.ring.write(samples)

    def fail(self, message: str) -> None:
        self.error = message
        self.ring.wake()

    def finish(self) -> None:
        self.ended = True
        self.ring.wake()


@dataclass(frozen=True)
class FakePhraseResult:
    """Same fields as livespeech.phrases.PhraseResult."""

    phrase: str | None
    confidence: float
    top: tuple[tuple[str, float], ...]


class FakeScorer:
    """Says the phrase whose text is exactly the utterance's greedy text, else none."""

    def __init__(self, phrases: tuple[str, ...]):
        self.phrases = phrases
        self.calls = 0

    def score(self, log_probs: torch.Tensor) -> FakePhraseResult:
        self.calls += 1
        tokens = log_probs.argmax(dim=-1).tolist()
        collapsed = [t for i, t in enumerate(tokens) if t != BLANK and (i == 0 or t != tokens[i - 1])]
        text = " ".join(VOCABULARY.decode(collapsed).split())
        others = tuple((p, 0.02) for p in self.phrases if p != text)
        if text in self.phrases:
            return FakePhraseResult(text, 0.9, ((text, 0.9), *others[:2]))
        return FakePhraseResult(None, 0.8, others[:3])
