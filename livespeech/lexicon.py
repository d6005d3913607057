"""Lexicons: the words a beam search may write, and how the model's characters spell
them; and the user's word lists (``--words FILE``).

A lexicon file is the format of flashlight and ``torchaudio.models.decoder.ctc_decoder``:
one word a line, then its spelling as tokens separated by spaces, ending with the
word boundary ``|`` (the vocabulary's space):

    don't	d o n ' t |

Ending every spelling with the boundary lets a letter the model holds for several
steps stay inside the word (flashlight's lexicon search ends a word on the token that
completes its spelling); the recognizer closes the last word of an utterance with one
boundary step (see :mod:`livespeech.beam`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from livespeech.atomic import write_text_atomic
from livespeech.text import normalize

WORD_BOUNDARY = "|"  # the space token's name in lexicon spellings
MAX_WORD_LIST_BYTES = 1 << 20  # --words: a list of names and jargon, not a dictionary
MAX_USER_WORDS = 10_000
_WORD = re.compile(r"[a-z']*[a-z][a-z']*")
_WORD_LINES = re.compile(r"(?:[a-z']*[a-z][a-z']*\n)+")  # words, one a line


class LexiconError(ValueError):
    """A lexicon or word list cannot be used; the message names the file and why."""


def spelling(word: str) -> str:
    """The lexicon spelling of ``word``: its characters and the boundary, space-separated."""
    return " ".join(word) + " " + WORD_BOUNDARY


def is_word(word: str) -> bool:
    """True for a word the character vocabulary spells: a-z and apostrophes, one letter at least."""
    return _WORD.fullmatch(word) is not None


def write_lexicon(words: Iterable[str], path: Path) -> int:
    """Write a lexicon file (``word<TAB>spelling`` lines); returns its size in bytes.

    Raises:
        LexiconError: a word the vocabulary cannot spell.
    """
    lines = []
    for word in words:
        if not is_word(word):
            raise LexiconError(f"cannot spell {word!r} with a-z and apostrophes")
        lines.append(f"{word}\t{spelling(word)}\n")
    path = Path(path)
    write_text_atomic(path, "".join(lines))
    return path.stat().st_size


def read_lexicon(path: Path) -> list[str]:
    """The words of a lexicon file, in file order.

    Raises:
        LexiconError: unreadable, not UTF-8, empty, a malformed line (the line number
            is given), a spelling that is not the word's characters, or a word twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LexiconError(f"{path}: not a lexicon (not UTF-8 text)") from None
    except OSError as error:
        raise LexiconError(f"{path}: cannot read ({error.strerror or error})") from None
    lines = text.splitlines()
    words = [line.partition("\t")[0] for line in lines]
    if words and _well_formed(lines, words):
        return words
    words, seen = [], set()  # find the first bad line
    for number, line in enumerate(lines, start=1):
        word, tab, spelled = line.partition("\t")
        if not tab or not is_word(word) or spelled != spelling(word):
            raise LexiconError(f"{path}: line {number} is not 'WORD<TAB>SPELLING |' for a word of a-z and apostrophes: {line[:60]!r}")
        if word in seen:
            raise LexiconError(f"{path}: line {number}: {word!r} is listed twice")
        seen.add(word)
        words.append(word)
    if not words:
        raise LexiconError(f"{path}: empty lexicon")
    return words


def _well_formed(lines: list[str], words: list[str]) -> bool:
    """True when every line is ``WORD<TAB>SPELLING`` of a distinct valid word: the
    checks of :func:`read_lexicon`, done a whole file at a time (66 k lines in 0.04 s)."""
    return (_WORD_LINES.fullmatch("\n".join(words) + "\n") is not None
            and lines == [f"{word}\t{spelling(word)}" for word in words]
            and len(set(words)) == len(words))


def words_of(texts: Iterable[str]) -> list[str]:
    """The distinct words of some texts, first seen first, as transcripts spell them
    (:func:`livespeech.text.normalize`, apostrophes at word edges dropped)."""
    words: dict[str, None] = {}
    for text in texts:
        for word in normalize(text).split():
            word = word.strip("'")
            if is_word(word):
                words.setdefault(word, None)
    return list(words)


def read_word_list(path: Path) -> list[str]:
    """The words of a user's word list (``--words FILE``): one word or name a line,
    ``#`` starting a comment; a name of several words adds each of them.

    Raises:
        LexiconError: no such file, larger than MAX_WORD_LIST_BYTES, binary or not
            UTF-8, more than MAX_USER_WORDS words, or no word at all.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_WORD_LIST_BYTES:
            raise LexiconError(f"{path}: {size} bytes; a word list may have at most {MAX_WORD_LIST_BYTES} "
                               f"({MAX_USER_WORDS} words, one per line)")
        data = path.read_bytes()
    except OSError as error:
        raise LexiconError(f"{path}: cannot read ({error.strerror or error})") from None
    if b"\0" in data:
        raise LexiconError(f"{path}: a binary file, not a word list (one word per line, UTF-8)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LexiconError(f"{path}: not UTF-8 text (one word per line)") from None
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    words = words_of(lines)
    if not words:
        raise LexiconError(f"{path}: no words in it (one word or name per line, UTF-8)")
    if len(words) > MAX_USER_WORDS:
        raise LexiconError(f"{path}: {len(words)} words; a word list may have at most {MAX_USER_WORDS}")
    return words
