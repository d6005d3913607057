"""Written English -> the words a reader says: numbers, times, ordinals, money,
percentages and common abbreviations spelled out, then :func:`livespeech.text.normalize`.

Used for the prompts of synthetic speech (what a synthesiser reads aloud is what its
transcript must say), for pseudo-labels written with digits, and by the benchmarks to
score every system after the same normalisation.

    >>> spoken_words("Dr. Smith paid $5 on March 9th, 2037.")
    'doctor smith paid five dollars on march ninth twenty thirty seven'
"""

from __future__ import annotations

import re

from livespeech.text import normalize
from training.text import ONES, ORDINALS, TENS, number_words

# Abbreviations a reader expands, matched with their full stop ("St." is left alone: saint or street).
ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor", "vs": "versus", "etc": "et cetera",
                 "jr": "junior", "sr": "senior", "prof": "professor", "capt": "captain", "gen": "general", "lt": "lieutenant"}
_ABBREVIATION = re.compile(r"\b(" + "|".join(ABBREVIATIONS) + r")\.(?=\s|$)", re.IGNORECASE)


def ordinal_words(n: int) -> str:
    """English ordinal of 1 <= n (``21`` -> ``twenty first``)."""
    if 1 <= n <= len(ORDINALS):
        return ORDINALS[n - 1]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS[tens - 2][:-1] + "ieth" if ones == 0 else f"{TENS[tens - 2]} {ORDINALS[ones - 1]}"
    return cardinal_words(n) + "th"


def cardinal_words(n: int) -> str:
    """English words of n below a million, digit by digit above."""
    return number_words(n) if n < 1_000_000 else " ".join(ONES[int(c)] for c in str(n))


def year_words(n: int) -> str:
    """A year as said: ``1959`` -> ``nineteen fifty nine``, ``2005`` -> ``two thousand and five``."""
    if 2000 <= n < 2010:
        return "two thousand" + (f" and {ONES[n - 2000]}" if n > 2000 else "")
    century, rest = divmod(n, 100)
    tail = "hundred" if rest == 0 else f"oh {ONES[rest]}" if rest < 10 else number_words(rest)
    return f"{number_words(century)} {tail}"


def _number(match: re.Match) -> str:
    text = match.group()
    whole, _, fraction = text.partition(".")
    if fraction:
        return f" {cardinal_words(int(whole.replace(',', '')))} point {' '.join(ONES[int(c)] for c in fraction)} "
    if "," in whole:
        return f" {cardinal_words(int(whole.replace(',', '')))} "
    n = int(whole)
    if len(whole) > 1 and whole[0] == "0" or len(whole) >= 5:
        return " " + " ".join(ONES[int(c)] for c in whole) + " "  # a digit string: "0347", "14896906"
    if len(whole) == 4 and 1100 <= n < 2100:
        return f" {year_words(n)} "
    return f" {cardinal_words(n)} "


def _time(match: re.Match) -> str:
    hour, minute, suffix = int(match.group(1)), int(match.group(2)), match.group(3) or ""
    if minute == 0:
        said = "" if suffix else " o'clock"
    else:
        said = f" oh {ONES[minute]}" if minute < 10 else f" {number_words(minute)}"
    return f" {number_words(hour)}{said} {suffix.strip()} "


def expand(text: str) -> str:
    """Written English with its numbers, symbols and abbreviations as words, case and
    punctuation kept (what a synthesiser is given to read): ``Dr.`` -> "doctor",
    ``$5`` / ``5%`` / ``5°`` / ``&`` -> "five dollars" / "five percent" / "five degrees" /
    "and", clock times (``5:30 p.m.``, ``5.30pm`` -> "five thirty pm"),
    ordinals (``10th`` -> "tenth"), years 1100-2099, digit strings (a leading zero,
    5+ digits, or groups joined by hyphens) digit by digit, other numbers as cardinals.

    >>> expand("Dr. Smith paid $5 at 5:30 p.m.")
    'doctor Smith paid  five  dollars at  five thirty pm '
    """
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    text = text.replace("&", " and ")
    text = re.sub(r"\b([ap])\.\s?m\.?", lambda m: m.group(1).lower() + "m", text, flags=re.IGNORECASE)
    text = re.sub(r"\$\s*(\d[\d,]*(?:\.\d+)?)", r"\1 dollars", text)
    text = re.sub(r"(\d)\s*%", r"\1 percent", text)
    text = re.sub(r"\s*\u00b0(?:\s*[cfCF]\b)?", " degrees", text)
    text = re.sub(r"\b(\d{1,2}):(\d\d)\b(\s*[ap]m\b)?", _time, text)
    text = re.sub(r"\b(\d{1,2})\.(\d\d)(\s*[ap]m)\b", _time, text)  # 11.45pm
    text = re.sub(r"\d+(?:-\d+)+", lambda m: " ".join(ONES[int(c)] for c in m.group() if c.isdigit()), text)  # 555-0134
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: f" {ordinal_words(int(m.group(1)))} ", text, flags=re.IGNORECASE)
    return re.sub(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", _number, text)


def spoken_words(text: str) -> str:
    """Written English as the words a reader says: :func:`expand`, then
    :func:`livespeech.text.normalize` (lower case, punctuation removed) and
    apostrophes at word edges dropped (quotation marks, not letters).

    >>> spoken_words("Set a timer for 10 minutes at 1:05 p.m. on March 9th, 2037.")
    'set a timer for ten minutes at one oh five pm on march ninth twenty thirty seven'
    """
    words = [w.strip("'") for w in normalize(expand(text)).split()]
    return " ".join(w for w in words if w)


def spoken_form(text: str) -> str:
    """:func:`spoken_words` with "oh" counted as "zero": the form in which references
    and every system's hypotheses are scored (digit strings are read both ways).

    >>> spoken_form("Set a timer for 10 minutes at 1:05 p.m. on March 9th, 2037.")
    'set a timer for ten minutes at one zero five pm on march ninth twenty thirty seven'
    """
    return " ".join("zero" if w == "oh" else w for w in spoken_words(text).split())


# Characters a reader would say aloud or a synthesiser would spell, which a transcript cannot
# hold, and words in capitals (acronyms are spelt letter by letter; emphasis is not).
_UNSPEAKABLE = re.compile(r"[#@*+=/\\<>|~^_{}\[\]]|\b[A-Z]{2,}\b")


def speakable(text: str) -> bool:
    """True when ``text`` reads aloud as :func:`spoken_words` writes it: Latin script
    only (no letters lost by ASCII folding), no symbols such as ``#``, ``@``, ``/``, ``+``
    and no words in capitals (``FBI`` is read letter by letter)."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    letters = sum(c.isalpha() for c in text)
    return not _UNSPEAKABLE.search(text) and sum(c.isalpha() for c in folded) == letters
