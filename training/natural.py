"""Natural English prompts for synthetic speech, from the shared text corpus.

``../shared/data/text/SOURCE/{train,dev}.txt`` holds one sentence a line in five
sources (Gutenberg prose, Tatoeba everyday sentences, dialogue turns, assistant
commands, Wikipedia). Training prompts come only from ``train.txt`` and evaluation
prompts only from ``dev.txt``, so no sentence is both heard in training and scored.
Each sentence is read aloud as :func:`training.spoken.spoken_words` writes it
(numbers, times and abbreviations as words); sentences a synthesiser would read
differently from any transcript (other scripts, symbols such as ``#`` or ``/``) are
left out.

:func:`mixed_prompts` is what ``livespeech-train synth`` reads by default: mostly
natural sentences, with a minority of generated digits, numbers, times, dates and
commands (``training.text``) so those stay covered.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

from training.spoken import speakable, spoken_words
from training.text import generate

DEFAULT_TEXT_DIR = Path("../shared/data/text")
# Share of each source among natural prompts: everyday sentences, dialogue and commands
# are what people say to a live recogniser; prose and Wikipedia widen the vocabulary.
SOURCE_WEIGHTS = {"tatoeba": 0.30, "dialogue": 0.25, "gutenberg": 0.25, "commands": 0.12, "wikitext": 0.08}
# Generated kinds kept as a minority of the prompts (training.text.GENERATORS).
GENERATED_KINDS = ("digit_word", "digits", "numbers", "times_and_dates", "commands", "names")
MIN_WORDS, MAX_WORDS = 2, 30  # spoken words per prompt: 0.5-12 s of speech


def text_file(text_dir: Path, source: str, split: str) -> Path:
    """``TEXT_DIR/SOURCE/train.txt`` (split ``train``) or ``dev.txt`` (split ``eval``).

    Raises:
        ValueError: an unknown split.
        FileNotFoundError: the file is missing (with the folder that was looked in).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be train or eval, got {split!r}")
    path = Path(text_dir) / source / ("train.txt" if split == "train" else "dev.txt")
    if not path.is_file():
        raise FileNotFoundError(f"natural text not found: {path} (give --text-dir, the folder of text/*/train.txt)")
    return path


@lru_cache(maxsize=16)
def _lines(path: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def spoken_sentence(line: str) -> str | None:
    """The words a reader says for one written sentence, or None when it cannot be a
    prompt (unspeakable characters, fewer than ``MIN_WORDS`` or more than ``MAX_WORDS``)."""
    if not speakable(line):
        return None
    words = spoken_words(line)
    return words if MIN_WORDS <= len(words.split()) <= MAX_WORDS else None


@lru_cache(maxsize=4)
def evaluation_sentences(text_dir: Path = DEFAULT_TEXT_DIR) -> frozenset[str]:
    """The spoken form of every usable ``dev.txt`` sentence of every source: training
    prompts never say one of these, whatever their written form."""
    return frozenset(filter(None, (spoken_sentence(line) for name in SOURCE_WEIGHTS for line in _lines(text_file(text_dir, name, "eval")))))


def natural_prompts(n: int, seed: int, split: str = "train", text_dir: Path = DEFAULT_TEXT_DIR,
                    weights: dict[str, float] | None = None) -> list[tuple[str, str]]:
    """``n`` distinct natural sentences as (kind, written sentence) pairs, kind ``text:SOURCE``.

    The written form is kept (synthesisers read punctuation as prosody); the transcript
    is its :func:`spoken_sentence`. Sources are drawn by ``weights`` (default
    ``SOURCE_WEIGHTS``); a source with too few usable sentences gives what it has.
    Training prompts leave out any sentence that is said as an evaluation sentence is
    (:func:`evaluation_sentences`). Reproducible from ``seed``.

    Raises:
        ValueError: an unknown split or source.
        FileNotFoundError: a source's file is missing.
    """
    weights = dict(weights or SOURCE_WEIGHTS)
    unknown = set(weights) - set(SOURCE_WEIGHTS)
    if unknown:
        raise ValueError(f"unknown text source(s) {sorted(unknown)}; known: {sorted(SOURCE_WEIGHTS)}")
    rng = random.Random(seed)
    names = sorted(weights)
    counts = dict.fromkeys(names, 0)
    for name in rng.choices(names, [weights[k] for k in names], k=n):
        counts[name] += 1
    out = []
    for name in names:
        lines = _lines(text_file(text_dir, name, split))
        order = random.Random(f"{seed}:{name}").sample(range(len(lines)), len(lines))
        taken, seen = 0, set(evaluation_sentences(text_dir)) if split == "train" else set()
        for index in order:
            if taken == counts[name]:
                break
            spoken = spoken_sentence(lines[index])
            if spoken and spoken not in seen:
                seen.add(spoken)
                out.append((f"text:{name}", lines[index]))
                taken += 1
    rng.shuffle(out)
    return out


def mixed_prompts(n: int, seed: int, split: str = "train", natural_fraction: float = 0.8,
                  text_dir: Path = DEFAULT_TEXT_DIR) -> list[tuple[str, str]]:
    """``n`` prompts: ``natural_fraction`` of them natural sentences (:func:`natural_prompts`),
    the rest generated digits, numbers, times, dates, commands and names
    (``training.text.generate``, kinds ``GENERATED_KINDS``; in training, none that is
    said as an evaluation sentence is), shuffled.

    Raises:
        ValueError: ``natural_fraction`` outside [0, 1], or see :func:`natural_prompts`.
    """
    if not 0.0 <= natural_fraction <= 1.0:
        raise ValueError(f"natural_fraction must be in [0, 1], got {natural_fraction!r}")
    n_natural = round(n * natural_fraction)
    natural = natural_prompts(n_natural, seed, split, text_dir) if n_natural else []
    generated = generate(n - n_natural, seed, split, list(GENERATED_KINDS)) if n > n_natural else []
    if split == "train" and generated:
        held_out = evaluation_sentences(text_dir)
        generated = [(kind, text) for kind, text in generated if text not in held_out]
    out = natural + generated
    random.Random(seed + 1).shuffle(out)
    return out
