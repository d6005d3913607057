"""Character vocabulary and text normalisation shared by the recognizer and training.

Token 0 is the CTC blank (Graves et al., 2006); then space, apostrophe and a-z.
"""

from __future__ import annotations

import re
import unicodedata

BLANK = 0
DEFAULT_VOCABULARY: tuple[str, ...] = ("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")

DIGIT_WORDS: tuple[str, ...] = tuple("zero one two three four five six seven eight nine".split())  # 0-9 as spoken


class Vocabulary:
    """Maps characters to token ids and back.

    Args:
        tokens: the token strings; ``tokens[0]`` must be the blank.
    Raises:
        ValueError: when tokens are duplicated or a non-blank token is not one character.
    """

    def __init__(self, tokens: tuple[str, ...] | list[str] = DEFAULT_VOCABULARY):
        tokens = tuple(tokens)
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if any(len(t) != 1 for t in tokens[1:]):
            raise ValueError("every token but the blank must be one character")
        self.tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens) if i != BLANK}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``normalize(text)``; characters outside the vocabulary are dropped."""
        return [self._ids[c] for c in normalize(text) if c in self._ids]

    def decode(self, ids) -> str:
        """Text of token ids (blanks skipped, no CTC collapsing)."""
        return "".join(self.tokens[i] for i in ids if i != BLANK)


def normalize(text: str) -> str:
    """Lower-case, ASCII-fold, spell single digits, keep a-z, apostrophe and single spaces.

    >>> normalize("Hello,  World! 7")
    'hello world seven'
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"\d", lambda m: f" {DIGIT_WORDS[int(m.group())]} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(text.split())
