"""The streaming recognizer: log-mel front end, LSTM-CTC model, greedy decoder and
endpointer, fed chunk by chunk from any source (microphone, file in real time, file
as fast as possible); with a word decoder (lexicon + language model beam search,
:mod:`livespeech.beam`), the partial and committed text are its words, while the
greedy decoder still gives the characters the model emits and finds the endpoints.

An utterance ends at a pause: ``endpoint_s`` seconds of steps whose best token (as
greedy decoding chooses it, after the model's blank penalty) is blank or space after
at least one character (or ``max_utterance_s`` of speech).
Then its text is committed and the decoders start a new utterance. With
``state_reset_s`` 0 the model restarts from a fresh state at exactly that step,
re-running the rest of the chunk, so the result does not depend on the chunk size and
hours of audio do not drift; ``state_reset_s`` > 0 carries the state across endpoints
until it has run that long, then restarts it the same way. It is the model's to set
(``config.json``), because only a model trained on utterances joined by pauses
(``livespeech-train fit --join-fraction``) gains from it: for one trained on single
utterances, a 5 s carry lowered speechocean762's dev speakers' greedy CER from 0.364 to
0.356 (they pause inside sentences) but raised that of FSDD digits read one after
another with 1 s pauses from 0.016 to 0.222 (``bench/state_reset.py``); for one
trained with joins, 0.349 -> 0.340 and 0.015 -> 0.018.

Word times are audio times: a unidirectional CTC model emits a character a little
after it hears it, so the words' emission times are moved earlier by the model's
emission delay (:attr:`livespeech.bundle.Bundle.emission_delay_s`) and clamped to
the audio received, so no word ends after the audio does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from livespeech.bundle import Bundle
from livespeech.beam import BeamSearchDecoder
from livespeech.decoding import Emission, GreedyCTCDecoder, Word, best_tokens
from livespeech.features import StreamingLogMel
from livespeech.text import BLANK

SPACE = 1  # token id of " " in the default vocabulary
FLUSH_PADDING_S = 0.3  # silence fed at the end of a stream, so the unidirectional model can emit its last, delayed characters


@dataclass(frozen=True)
class EndpointConfig:
    """When an utterance ends.

    Args:
        endpoint_s: pause after speech that ends an utterance, seconds (default 0.6).
        max_utterance_s: longest utterance before a forced end, seconds (default 30).
        state_reset_s: the model's state is carried across endpoints until it has run
            this long, seconds; the next endpoint then restarts it from a fresh state.
            0: a fresh state at every endpoint. Default None: the model's own
            (:attr:`livespeech.bundle.Bundle.state_reset_s`, 0 unless its config sets
            it; see the module docstring and ``bench/state_reset.py``).
    """

    endpoint_s: float = 0.6
    max_utterance_s: float = 30.0
    state_reset_s: float | None = None


@dataclass(frozen=True)
class Utterance:
    """A finished utterance: its text, words with times (seconds of audio from the
    stream's start, corrected for the model's delay), the span of its model steps
    (``start_s``, ``end_s``: emission times, uncorrected; the last one's includes the
    flush padding), and its log-probabilities, shape (S, V), one row per step, for
    phrase scoring."""

    text: str
    words: tuple[Word, ...]
    start_s: float
    end_s: float
    log_probs: torch.Tensor = field(repr=False, compare=False)


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of audio produced.

    Attributes:
        features: the log-mel frames the chunk completed, shape (t, n_mels).
        emissions: characters emitted in this chunk.
        partial: text of the utterance in progress.
        committed: utterances that ended in this chunk.
        audio_s: seconds of audio consumed so far.
        processing_s: seconds spent on this chunk.
    """

    features: torch.Tensor
    emissions: tuple[Emission, ...]
    partial: str
    committed: tuple[Utterance, ...]
    audio_s: float
    processing_s: float


class Recognizer:
    """Streaming speech recognizer owning front end, model state and decoder.

    Args:
        bundle: a loaded model folder.
        endpoint: endpointing settings.
        word_decoder: beam search over words for the text (None: the greedy characters).
        emission_delay_s: seconds by which the model emits characters after hearing
            them, taken off word times (None: the model's, ``bundle.emission_delay_s``;
            0: raw emission times, as ``bench/word_delay.py`` measures them).
    """

    def __init__(self, bundle: Bundle, endpoint: EndpointConfig = EndpointConfig(),
                 word_decoder: BeamSearchDecoder | None = None, emission_delay_s: float | None = None):
        self.bundle = bundle
        self.emission_delay_s = bundle.emission_delay_s if emission_delay_s is None else float(emission_delay_s)
        self.model = bundle.model
        self.frontend = StreamingLogMel(bundle.features)
        self.sample_rate = bundle.features.sample_rate
        self.stack = self.model.dims.stack
        self.seconds_per_step = bundle.seconds_per_step
        self.endpoint_steps = max(1, round(endpoint.endpoint_s / self.seconds_per_step))
        self.max_steps = max(1, round(endpoint.max_utterance_s / self.seconds_per_step))
        state_reset_s = bundle.state_reset_s if endpoint.state_reset_s is None else endpoint.state_reset_s
        self.state_reset_steps = round(state_reset_s / self.seconds_per_step)
        self.blank_penalty = bundle.blank_penalty
        self.decoder = GreedyCTCDecoder(bundle.vocabulary, self.seconds_per_step, self.blank_penalty)
        self.word_decoder = word_decoder
        self.partials = True  # ChunkResult.partial is filled in (False: "", e.g. for files, where nobody reads it)
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self.frontend.reset()
        self.decoder.reset()
        if self.word_decoder is not None:
            self.word_decoder.reset()
        self._state = None
        self._state_start_step = 0  # step at which the model's state was last fresh
        self._samples = 0
        self._start_step = 0  # first step of the current utterance
        self._silent_steps = 0  # steps since the last character
        self._has_speech = False  # a character (not blank or space) was the best token in this utterance
        self._utterance_log_probs: list[torch.Tensor] = []

    @property
    def partial(self) -> str:
        """Text of the utterance in progress (the word decoder's best hypothesis, when there is one)."""
        return self.word_decoder.text if self.word_decoder is not None else self.decoder.text

    def accept(self, samples: np.ndarray) -> ChunkResult:
        """Recognise the next chunk of audio.

        Args:
            samples: mono float32 audio at the model's sample rate, shape (n,).
        Returns:
            the chunk's :class:`ChunkResult`.
        """
        t0 = time.perf_counter()
        self._samples += len(samples)  # before _run: words committed in this chunk may lie anywhere in it
        with torch.inference_mode():
            features = self.frontend.accept(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
            emissions, committed = self._run(features)
        return self._result(features, emissions, committed, t0)

    def flush(self) -> ChunkResult:
        """End the stream: process the last frames followed by ``FLUSH_PADDING_S`` of
        silence (a CTC model emits characters a little after it hears them; files
        trimmed right after the last word would lose it), commit the last utterance,
        then reset for a new stream."""
        t0 = time.perf_counter()
        with torch.inference_mode():
            hop = self.bundle.features.hop_length
            padding = torch.zeros(round(FLUSH_PADDING_S * self.sample_rate / hop) * hop)
            features = torch.cat([self.frontend.accept(padding), self.frontend.flush()])
            emissions, committed = self._run(features)
            features = features[: features.shape[0] - padding.shape[0] // hop]  # the audio's own frames only
            final = self._commit()
            if final is not None:
                committed.append(final)
        result = self._result(features, emissions, committed, t0)
        self.reset()
        return result

    def _result(self, features, emissions, committed, t0) -> ChunkResult:
        partial = self.partial if self.partials else ""  # the beam search's costs a walk of its best path
        return ChunkResult(features, tuple(emissions), partial, tuple(committed),
                           self._samples / self.sample_rate, time.perf_counter() - t0)

    def _run(self, features: torch.Tensor) -> tuple[list[Emission], list[Utterance]]:
        """Run model and decoder over new frames (t, F), handling endpoints."""
        emissions, committed = [], []
        frames = features.unsqueeze(0)  # (1, t, F)
        while True:
            previous = self._state
            log_probs, self._state = self.model.infer(frames, previous)
            log_probs = log_probs[0]  # (s, V)
            start = 0  # first step not yet decoded
            while (end := self._find_endpoint(log_probs[start:])) is not None:
                emissions += self._decode(log_probs[start : start + end + 1])
                utterance = self._commit()
                if utterance is not None:
                    committed.append(utterance)
                start += end + 1
                if self.decoder.steps - self._state_start_step >= self.state_reset_steps:
                    break
            else:
                emissions += self._decode(log_probs[start:])
                return emissions, committed
            # restart from a fresh state just after the endpoint step and re-run the rest
            leftover = previous.leftover if previous is not None else frames[:, :0]
            frames = torch.cat([leftover, frames], dim=1)[:, start * self.stack :]
            self._state = None
            self._state_start_step = self.decoder.steps

    def _decode(self, log_probs: torch.Tensor) -> list[Emission]:
        """Feed steps (s, V) of the utterance in progress to the decoders; the greedy emissions."""
        self._utterance_log_probs.append(log_probs)
        if self.word_decoder is not None:
            self.word_decoder.update(log_probs)
        return self.decoder.update(log_probs)

    def _find_endpoint(self, log_probs: torch.Tensor) -> int | None:
        """Index of the step that ends the utterance in progress, or None; updates counters."""
        for i, token in enumerate(best_tokens(log_probs, self.blank_penalty)):
            steps_in_utterance = self.decoder.steps + i + 1 - self._start_step
            if token in (BLANK, SPACE):
                self._silent_steps += 1
            else:
                self._silent_steps, self._has_speech = 0, True
            pause = self._has_speech and self._silent_steps >= self.endpoint_steps
            idle = not self._has_speech and steps_in_utterance >= 10 * self.endpoint_steps  # end long silence
            if pause or idle or steps_in_utterance >= self.max_steps:
                return i
        return None

    def _commit(self) -> Utterance | None:
        """Close the utterance in progress; None when it had no text."""
        if self.word_decoder is not None:
            text, words = self.word_decoder.finish()
            self.word_decoder.reset(step_offset=self.decoder.steps)
        else:
            text, words = self.decoder.text, self.decoder.words()
        words = tuple(self._audio_times(words))
        log_probs = torch.cat(self._utterance_log_probs) if self._utterance_log_probs else torch.zeros(0, len(self.bundle.vocabulary))
        start_s = self._start_step * self.seconds_per_step
        end_s = self.decoder.steps * self.seconds_per_step
        self._start_step = self.decoder.steps
        self._silent_steps = 0
        self._has_speech = False
        self._utterance_log_probs = []
        self.decoder.reset(step_offset=self.decoder.steps)
        if not text:
            return None
        return Utterance(text, words, start_s, end_s, log_probs)

    def _audio_times(self, words: Iterable[Word]) -> Iterator[Word]:
        """Words with their emission times moved earlier by the emission delay and
        clamped to the audio received so far, [0, audio_s] seconds."""
        audio_s = self._samples / self.sample_rate
        delay = self.emission_delay_s
        for w in words:
            start = min(max(w.start_s - delay, 0.0), audio_s)
            end = min(max(w.end_s - delay, start), audio_s)
            yield replace(w, start_s=start, end_s=end)


@dataclass(frozen=True)
class Transcript:
    """The result of recognising a whole signal."""

    text: str
    utterances: tuple[Utterance, ...]
    audio_s: float
    processing_s: float

    @property
    def words(self) -> list[Word]:
        return [w for u in self.utterances for w in u.words]


def transcribe_blocks(recognizer: Recognizer, blocks: Iterable[np.ndarray], chunk_ms: int = 100,
                      keep_log_probs: bool = True) -> Transcript:
    """Feed blocks of audio (mono float32 at the model's rate) through ``recognizer``
    in chunks of ``chunk_ms`` milliseconds and return the whole transcript.

    ``processing_s`` counts recognition time only (not reading the blocks).  With
    ``keep_log_probs`` False the utterances' log-probabilities (for phrase scoring) are
    dropped as they come: they are most of what a long transcript holds (about 14 MB
    an hour at 30 ms steps).  The chunks' partial text is not computed (nobody reads
    it here); the decoders see exactly the same steps as live.
    """
    chunk = max(1, int(recognizer.sample_rate * chunk_ms / 1000))
    utterances, processing, carry = [], 0.0, np.zeros(0, np.float32)
    no_log_probs = torch.zeros(0, len(recognizer.bundle.vocabulary))

    def take(result: ChunkResult) -> ChunkResult:
        nonlocal processing
        processing += result.processing_s
        utterances.extend(u if keep_log_probs else replace(u, log_probs=no_log_probs) for u in result.committed)
        return result

    partials, recognizer.partials = recognizer.partials, False
    try:
        for block in blocks:
            data = np.concatenate([carry, block]) if carry.size else block
            whole = len(data) // chunk * chunk
            for start in range(0, whole, chunk):
                take(recognizer.accept(data[start : start + chunk]))
            carry = data[whole:]
        if carry.size:
            take(recognizer.accept(carry))
        result = take(recognizer.flush())
    finally:
        recognizer.partials = partials
    return Transcript(" ".join(u.text for u in utterances), tuple(utterances), result.audio_s, processing)
