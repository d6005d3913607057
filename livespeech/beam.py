"""Streaming CTC beam search over words: a lexicon constrains the spellings and a
word n-gram language model scores the words.

The search is flashlight-text's ``LexiconDecoder`` (Kahn et al., 2022), the engine of
``torchaudio.models.decoder.ctc_decoder``, with the same options and CTC criterion.
It keeps the ``beam_size`` best hypotheses, each a CTC path whose letters spell
lexicon words, scored as

    log p_ctc(path) + lm_weight * log10 p_lm(words) + word_score * len(words)

(natural-log emissions, log10 KenLM scores: ``lm_weight`` absorbs the base).  Only the
``beam_size_token`` likeliest tokens of a step are expanded, and hypotheses more than
``beam_threshold`` below the best are dropped.

The lexicon trie is built here rather than by ``ctc_decoder``, whose Python loop
looks up every character through the token dictionary: the same trie (spellings
ending with the word boundary, unigram scores smeared by maximum) in a third of the
time.  ``tests/test_beam.py`` checks the words equal ``ctc_decoder``'s.

Streaming is flashlight's: ``decode_begin`` when an utterance starts,
``decode_step`` per chunk of log-probabilities, ``decode_end`` at its endpoint.  The
search runs step by step, so the result does not depend on how the steps are
chunked.  At the end one step that is certainly the word boundary closes the last
word (spellings end with it, see :mod:`livespeech.lexicon`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

from typing import TYPE_CHECKING

from livespeech.decoding import Word
from livespeech.lexicon import LexiconError, is_word, read_lexicon
from livespeech.lm import LanguageModelError, LanguageModelFiles, load_kenlm, temporary_arpa, with_unigrams
from livespeech.text import BLANK, Vocabulary

if TYPE_CHECKING:  # numpy and torch are imported where used: DecoderChoice, for the usage checks, stays light
    import torch

SPACE_CHAR = " "  # the vocabulary token that separates words: the lexicon's word boundary
IMPOSSIBLE = -1.0e4  # log-probability of every other token in the closing boundary step
UNSPELLABLE = 255  # in a spelling: a character the vocabulary lacks (token ids must stay below it)


@dataclass(frozen=True)
class BeamOptions:
    """Beam search settings (the names of ``torchaudio.models.decoder.ctc_decoder``).

    The defaults were tuned for the bundled ``base`` model and the 4-gram of
    ``livespeech-train lm`` on unseen sentences in its training voices (``bench/beam_tune.py``);
    a model folder's ``config.json`` carries its own.

    Args:
        beam_size: hypotheses kept after each step (default 64).
        beam_size_token: tokens expanded per step, the likeliest first (default 8).
        beam_threshold: drop hypotheses this far below the best, natural log (default 20).
        lm_weight: weight of the language model's log10 score (default 1.8).
        word_score: added per word (default 2.5; more favours more, shorter words).
        sil_score: added per word-boundary token (default 0).
    """

    beam_size: int = 64
    beam_size_token: int = 8
    beam_threshold: float = 20.0
    lm_weight: float = 1.8
    word_score: float = 2.5
    sil_score: float = 0.0

    @classmethod
    def from_dict(cls, values: dict) -> BeamOptions:
        """Options from a config entry, ignoring unknown keys.

        Raises:
            ValueError: a value of the wrong type or out of range.
        """
        known = {f.name: f.type for f in fields(cls)}
        chosen = {k: v for k, v in values.items() if k in known}
        for key, value in chosen.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"decoder setting {key} must be a number, got {value!r}")
        options = cls(**chosen)
        options.check()
        return options

    def check(self) -> None:
        """Raises ValueError when a size is below 1 or the threshold not positive."""
        if int(self.beam_size) < 1 or int(self.beam_size_token) < 1 or not self.beam_threshold > 0:
            raise ValueError("beam_size and beam_size_token must be at least 1, beam_threshold positive")

    def to_dict(self) -> dict:
        return asdict(self)

    def updated(self, **changes) -> BeamOptions:
        """A copy with the changes that are not None."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class BeamSearchDecoder:
    """Streaming lexicon + language model beam search over one utterance at a time:
    :meth:`reset` (decode_begin), :meth:`update` with each chunk's log-probabilities
    (decode_step), :attr:`text` for the best hypothesis so far, :meth:`finish`
    (decode_end) for the final words.

    Args:
        words: the lexicon; word index i is ``words[i]``.
        lm: a flashlight LM over the same word indices (:func:`livespeech.lm.load_kenlm`).
        vocabulary: the model's vocabulary (must hold the space character).
        seconds_per_step: duration of one output step, seconds.
        options: beam search settings.
    Raises:
        ValueError: the vocabulary has no space, or the options are out of range.
    """

    def __init__(self, words: Sequence[str], lm, vocabulary: Vocabulary, seconds_per_step: float,
                 options: BeamOptions = BeamOptions(), _trie=None):
        from flashlight.lib.text.decoder import CriterionType, LexiconDecoder, LexiconDecoderOptions

        options.check()
        if SPACE_CHAR not in vocabulary.tokens:
            raise ValueError("beam search needs a vocabulary with the space character")
        self.words = list(words)
        self.options = options
        self.vocabulary = vocabulary
        self.seconds_per_step = seconds_per_step
        self.space = vocabulary.tokens.index(SPACE_CHAR)
        self._lm = lm  # the decoder keeps only a reference: it must outlive it
        self._trie = _trie if _trie is not None else self._build_trie(lm)
        settings = LexiconDecoderOptions(
            beam_size=int(options.beam_size), beam_size_token=min(int(options.beam_size_token), len(vocabulary)),
            beam_threshold=float(options.beam_threshold), lm_weight=float(options.lm_weight),
            word_score=float(options.word_score), unk_score=float("-inf"), sil_score=float(options.sil_score),
            log_add=False, criterion_type=CriterionType.CTC)
        self._decoder = LexiconDecoder(settings, self._trie, lm, self.space, BLANK, -1, [], False)
        import torch

        closing = torch.full((1, len(vocabulary)), IMPOSSIBLE)
        closing[0, self.space] = 0.0
        self._closing = closing
        self.reset()

    def _build_trie(self, lm):
        """The lexicon trie: each word's token ids and the boundary, labelled with its
        index and scored by its LM probability after ``<s>``, smeared by maximum (as
        ``ctc_decoder`` builds it)."""
        from flashlight.lib.text.decoder import SmearingMode, Trie

        trie = Trie(len(self.vocabulary), self.space)
        start = lm.start(False)
        score, insert = lm.score, trie.insert
        table = self._spelling_table()
        for index, word in enumerate(self.words):
            spelled = list(word.encode("ascii", "replace").translate(table))  # lexicon words are a-z and apostrophes
            if UNSPELLABLE in spelled or not word.isascii():
                continue  # a character this model's vocabulary lacks
            spelled.append(self.space)
            insert(spelled, index, score(start, index)[1])
        trie.smear(SmearingMode.MAX)
        return trie

    def _spelling_table(self) -> bytes:
        """A ``bytes.translate`` table from an ASCII character to its token id
        (:data:`UNSPELLABLE` for a character the vocabulary lacks)."""
        table = bytearray([UNSPELLABLE]) * 256
        for i, token in enumerate(self.vocabulary.tokens[:UNSPELLABLE]):
            if i != BLANK and len(token) == 1 and ord(token) < 128:
                table[ord(token)] = i
        return bytes(table)

    def with_options(self, options: BeamOptions) -> BeamSearchDecoder:
        """A decoder with other settings sharing this one's lexicon trie and LM (for tuning)."""
        return BeamSearchDecoder(self.words, self._lm, self.vocabulary, self.seconds_per_step, options, _trie=self._trie)

    def reset(self, step_offset: int = 0) -> None:
        """Start a new utterance whose first step is ``step_offset`` (for timestamps)."""
        self._decoder.decode_begin()
        self._offset = step_offset
        self._steps = 0
        self._partial: str | None = ""

    @property
    def steps(self) -> int:
        """Steps consumed so far, offset included."""
        return self._offset + self._steps

    def update(self, log_probs: torch.Tensor) -> None:
        """Search over the next steps of log-probabilities, shape (s, V)."""
        if log_probs.shape[0] == 0:
            return
        self._step(log_probs)
        self._steps += log_probs.shape[0]
        self._partial = None

    def _step(self, log_probs: torch.Tensor) -> None:
        emissions = log_probs.detach().float().cpu().contiguous()  # alive during the call
        S, V = emissions.shape
        self._decoder.decode_step(emissions.data_ptr(), S, V)

    @property
    def text(self) -> str:
        """The best hypothesis so far: its words, then the letters of the word it is in."""
        if self._steps == 0:
            return ""
        if self._partial is None:  # the whole path of the best hypothesis (get_best_hypothesis stops at its last word)
            best = max(self._decoder.get_all_final_hypothesis(), key=lambda r: r.score)
            words, pending = self._spans(best.tokens, best.words)
            self._partial = " ".join([w.word for w in words] + ([pending] if pending else []))
        return self._partial

    def finish(self) -> tuple[str, list[Word]]:
        """End the utterance: close its last word, add the language model's end of
        sentence, and return the best hypothesis's text and words (times in seconds
        from the stream's start).  Call :meth:`reset` before the next utterance."""
        if self._steps == 0:
            return "", []
        self._step(self._closing)
        self._decoder.decode_end()
        results = self._decoder.get_all_final_hypothesis()
        if not results:
            return "", []
        best = max(results, key=lambda r: r.score)
        words, _ = self._spans(best.tokens, best.words)
        return " ".join(w.word for w in words), words

    def _spans(self, tokens: Sequence[int], labels: Sequence[int]) -> tuple[list[Word], str]:
        """Words with times of a hypothesis, and the letters after its last word.

        A word starts at the step of its first letter and ends one step after its last
        letter (as greedy words do); a letter is a CTC emission: not blank, not the
        boundary, not a repeat of the step before.

        Args:
            tokens: the token of each position; position 0 is the start, position i
                is step i - 1.
            labels: the word index completed at each position, or -1.
        """
        import numpy as np

        tokens = np.asarray(tokens, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.int64)[1 : len(tokens)]
        step_tokens = tokens[1:]
        letters = np.flatnonzero((step_tokens != BLANK) & (step_tokens != tokens[:-1]) & (step_tokens != self.space))
        ends = np.flatnonzero(labels >= 0)  # steps that complete a word
        words, previous = [], -1
        for end in ends.tolist():
            lo, hi = np.searchsorted(letters, [previous, end], side="right").tolist()
            first, last = (int(letters[lo]), int(letters[hi - 1])) if hi > lo else (end, end)
            words.append(Word(self.words[int(labels[end])], (self._offset + first) * self.seconds_per_step,
                              (self._offset + last + 1) * self.seconds_per_step))
            previous = end
        pending = letters[letters > previous]
        return words, "".join(self.vocabulary.tokens[t] for t in step_tokens[pending].tolist())


def load_beam_decoder(files: LanguageModelFiles, vocabulary: Vocabulary, seconds_per_step: float,
                      options: BeamOptions | None = None, extra_words: Sequence[str] = ()) -> BeamSearchDecoder:
    """The beam search decoder of a model folder's language model.

    Args:
        files: the checked files (:func:`livespeech.lm.language_model_files`); their
            KenLM binary is read when there is one and no word is added, else the ARPA.
        vocabulary: the model's vocabulary.
        seconds_per_step: duration of one output step, seconds.
        options: beam search settings (default: the folder's tuned ones).
        extra_words: words to add (``--words``, phrase sets): those the lexicon lacks
            are added to it and to the LM as unigrams of ``files.user_word_log10prob``.
    Raises:
        LanguageModelError: a malformed lexicon or LM file (the message names it), or
            bad decoder settings in config.json.
    """
    try:
        options = options or BeamOptions.from_dict(files.decoder)
    except ValueError as error:
        raise LanguageModelError(f"{files.arpa.parent / 'config.json'}: {error}") from None
    try:
        words = read_lexicon(files.lexicon)
    except LexiconError as error:
        raise LanguageModelError(str(error)) from None
    known = set(words)
    new = [w for w in dict.fromkeys(extra_words) if w not in known and is_word(w)]
    if not new:
        return BeamSearchDecoder(words, load_kenlm(files.binary or files.arpa, words), vocabulary, seconds_per_step, options)
    arpa = temporary_arpa(files.arpa)
    try:
        with_unigrams(files.arpa, new, files.user_word_log10prob, arpa)
        lm = load_kenlm(arpa, words + new)
    except LanguageModelError as error:  # name the model's file, not the temporary copy
        raise LanguageModelError(str(error).replace(str(arpa), str(files.arpa))) from None
    finally:
        arpa.unlink(missing_ok=True)
    return BeamSearchDecoder(words + new, lm, vocabulary, seconds_per_step, options)


@dataclass(frozen=True)
class DecoderChoice:
    """How the user asked to decode (``--decoder``, ``--beam-size``, ``--lm-weight``,
    ``--words``).

    Attributes:
        kind: "greedy", "beam", or None: beam search when the model has a language model.
        beam_size, lm_weight: overrides of the model's tuned settings (None: keep them).
        words: words to add to the lexicon and language model.
    """

    kind: str | None = None
    beam_size: int | None = None
    lm_weight: float | None = None
    words: tuple[str, ...] = ()

    @property
    def asks_for_beam(self) -> bool:
        """True when the user asked for beam search, by name or by one of its settings."""
        return self.kind == "beam" or self.beam_size is not None or self.lm_weight is not None or bool(self.words)


def word_decoder_for(bundle, choice: DecoderChoice = DecoderChoice(), extra_words: Sequence[str] = (),
                     warn=None) -> BeamSearchDecoder | None:
    """The beam search decoder a model and the user's choice call for, or None for
    greedy decoding.

    Beam search when the model folder has a language model and the user did not ask
    for greedy decoding.  When its files are broken: an error if the user asked for
    beam search, else one warning and greedy decoding.

    Args:
        bundle: the loaded model (:class:`livespeech.bundle.Bundle`).
        choice: what the user asked for.
        extra_words: more words to add (a phrase set's), besides ``choice.words``.
        warn: called with one line when falling back to greedy decoding.
    Raises:
        LanguageModelError: beam search was asked for and the model has no usable
            language model (the message names the file and why).
    """
    if choice.kind == "greedy":
        return None
    files, problem = bundle.language_model, bundle.language_model_problem
    if files is None and problem is None:
        if choice.asks_for_beam:
            raise LanguageModelError(f"{bundle.path}: model {bundle.name!r} has no language model for beam search "
                                     "(see livespeech-train lm)")
        return None
    try:
        if problem is not None:
            raise LanguageModelError(problem)
        options = None
        if choice.beam_size is not None or choice.lm_weight is not None:
            try:
                options = BeamOptions.from_dict(files.decoder).updated(beam_size=choice.beam_size, lm_weight=choice.lm_weight)
            except ValueError as error:
                raise LanguageModelError(f"{bundle.path / 'config.json'}: {error}") from None
        return load_beam_decoder(files, bundle.vocabulary, bundle.seconds_per_step, options, (*choice.words, *extra_words))
    except LanguageModelError as error:
        if choice.asks_for_beam:
            raise
        if warn is not None:
            warn(f"{error}; decoding greedily")
        return None
