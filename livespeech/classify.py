"""``livespeech classify``: which phrase of a set each file holds, or none.

Each file goes through the streaming :class:`Recognizer` (as live audio does); the
CTC log-probabilities of all its utterances, joined in order, are one classification
unit for the :class:`PhraseScorer`.  A file in which the recognizer hears nothing is
"none" with confidence 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from livespeech.audio import AudioError, audio_info, read_blocks
from livespeech.beam import BeamSearchDecoder
from livespeech.bundle import Bundle
from livespeech.cli import EXIT_FAILED, EXIT_OK, error_line, warning_line
from livespeech.phrases import PhraseResult, PhraseScorer
from livespeech.recognizer import Recognizer, Transcript, transcribe_blocks

NONE_LABEL = "(none)"  # how txt output shows "none of the phrases"


def file_log_probs(recognizer: Recognizer, path: Path, chunk_ms: int = 100) -> tuple[torch.Tensor, Transcript]:
    """The log-probabilities of every utterance of a file, joined: shape (S, V).

    Raises:
        AudioError: the file cannot be read as audio.
    """
    recognizer.reset()
    transcript = transcribe_blocks(recognizer, read_blocks(path, sample_rate=recognizer.sample_rate), chunk_ms)
    V = len(recognizer.bundle.vocabulary)
    pieces = [u.log_probs for u in transcript.utterances]
    return (torch.cat(pieces) if pieces else torch.zeros(0, V)), transcript


def classify_file(recognizer: Recognizer, scorer: PhraseScorer, path: Path, chunk_ms: int = 100) -> PhraseResult:
    """The phrase of one file (see the module docstring).

    Raises:
        AudioError: the file cannot be read as audio.
    """
    log_probs, _ = file_log_probs(recognizer, path, chunk_ms)
    return scorer.score(log_probs)


def render(name: str, result: PhraseResult, fmt: str, several: bool) -> str:
    """One output line: JSON (``{"audio", "phrase", "confidence", "top"}``) or text
    (``PHRASE CONFIDENCE``, prefixed by ``FILE:`` when there are several files)."""
    if fmt == "json":
        return json.dumps({"audio": name, **result.to_dict()}) + "\n"
    text = f"{result.phrase if result.phrase is not None else NONE_LABEL} {result.confidence:.2f}"
    return f"{name}: {text}\n" if several else text + "\n"


def classify_files(bundle: Bundle, scorer: PhraseScorer, files: list[str], fmt: str, chunk_ms: int = 100, debug: bool = False,
                   word_decoder: BeamSearchDecoder | None = None) -> int:
    """Classify each file and print one line per file; report failures one line each
    on stderr, and warn of truncated files. Returns the exit status: 0, or 1 when any
    file failed.  The phrase scores use the CTC log-probabilities, whichever decoder
    (``word_decoder``, or greedy when None) writes the utterances' text.

    Raises:
        AudioError, OSError: only with ``debug``.
    """
    from livespeech.transcribe import truncation_warning

    recognizer = Recognizer(bundle, word_decoder=word_decoder)
    status = EXIT_OK
    for name in files:
        try:
            warning = truncation_warning(audio_info(Path(name)))
            result = classify_file(recognizer, scorer, Path(name), chunk_ms)
        except (AudioError, OSError) as error:
            if debug:
                raise
            error_line(f"{name}: {error}")
            status = EXIT_FAILED
            continue
        if warning is not None:
            warning_line(f"{name}: {warning}")
        sys.stdout.write(render(name, result, fmt, several=len(files) > 1))
        sys.stdout.flush()
    return status
