"""What the live app needs from outside: sources, input devices and phrase sets.

Everything reaches the app through a :class:`Backend`, so tests run it with fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from livespeech.capture import InputDevice, MicSource, Source, list_input_devices
from livespeech.phrases import PhraseScorer, bundled_phrase_sets, load_phrase_set, means_no_phrases, scorer_options


@dataclass(frozen=True)
class PhraseModel:
    """An active phrase set: its name and the scorer built for the model's vocabulary."""

    name: str
    scorer: PhraseScorer


def load_phrase_model(spec: str | None, vocabulary, model_config: dict | None = None) -> PhraseModel | None:
    """The phrase set ``spec`` (a bundled name or a file) with its scorer; None for "none".

    Args:
        spec: phrase-set name or path, or "none".
        vocabulary: the model's vocabulary.
        model_config: the model's config.json; a phrase model's calibrated scorer
            settings for this set are used.
    Raises:
        PhraseSetError (a ValueError): no such set, an unreadable one, or one the
            vocabulary cannot spell.
    """
    if means_no_phrases(spec):
        return None
    phrase_set = load_phrase_set(spec)
    options = scorer_options(model_config or {}, phrase_set)
    return PhraseModel(phrase_set.name, PhraseScorer(phrase_set, vocabulary, **options))


@dataclass(frozen=True)
class Backend:
    """The app's ways into the outside world.

    Attributes:
        open_source: opens the session's first source (not started); may raise
            CaptureError or AudioError, which the app shows on screen.
        load_phrases: a phrase-set spec to a PhraseModel (None for "none"); may raise
            PhraseSetError (a ValueError).
        list_devices: the input devices (may raise CaptureError).
        open_device: a source for a chosen device (may raise CaptureError).
        phrase_sets: names of the bundled phrase sets.
    """

    open_source: Callable[[], Source]
    load_phrases: Callable[[str], PhraseModel | None]
    list_devices: Callable[[], list[InputDevice]] = list_input_devices
    open_device: Callable[[InputDevice], Source] = MicSource
    phrase_sets: Callable[[], list[str]] = bundled_phrase_sets
