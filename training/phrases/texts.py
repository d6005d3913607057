"""The texts of a phrase model: phrases, out-of-set distractors, and which
utterances are which."""

from __future__ import annotations

from livespeech.phrases import PhraseSet
from livespeech.text import normalize
from training.data import Utterance


def contains_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    """True when normalised ``text`` contains any normalised phrase as whole words."""
    padded = f" {normalize(text)} "
    return any(f" {p} " in padded for p in phrases)


def phrase_texts(phrase_set: PhraseSet, takes: int) -> list[tuple[str, str]]:
    """Each phrase ``takes`` times, as ("phrase", normalised phrase)."""
    return [("phrase", p) for p in phrase_set.normalized() for _ in range(takes)]


def distractor_texts(phrase_set: PhraseSet, n: int, seed: int, split: str = "train") -> list[tuple[str, str]]:
    """``n`` generated texts (``training.text``: sentences, commands, numbers, words)
    of the ``split`` side that contain none of the phrases, as ("distractor", text).

    Raises:
        ValueError: the phrases cover most generated text.
    """
    from training.text import generate

    phrases = phrase_set.normalized()
    wanted, out = max(n, 1) * 2, []
    while len(out) < n:
        out = [("distractor", t) for _, t in generate(wanted, seed, split) if not contains_phrase(t, phrases)][:n]
        if wanted > 50 * max(n, 1):
            raise ValueError("cannot find out-of-set text: the phrases cover most generated text")
        wanted *= 2
    return out


def label_of(text: str, phrase_set: PhraseSet) -> int | None:
    """Index of the phrase ``text`` is (after normalisation), or None."""
    normalized = phrase_set.normalized()
    key = normalize(text)
    return normalized.index(key) if key in normalized else None


def usable_for_evaluation(utterances: list[Utterance], phrase_set: PhraseSet) -> list[Utterance]:
    """Utterances that are a phrase or contain none: a text that contains a phrase
    among other words ("five dollars" for digits) is neither in-set nor out-of-set."""
    phrases = phrase_set.normalized()
    return [u for u in utterances if label_of(u.text, phrase_set) is not None or not contains_phrase(u.text, phrases)]
