"""Generators of training and evaluation text for speech synthesis.

Every generator returns normalised text (a-z, apostrophe, single spaces) that the
recognizer's vocabulary can spell.  :func:`is_eval_text` splits any sentence into
the training or the evaluation side by a hash of its text, so the two sides are
disjoint whatever the seed or generator.
"""

from __future__ import annotations

import hashlib
import random
from functools import lru_cache

from livespeech.text import DIGIT_WORDS, normalize

ONES = list(DIGIT_WORDS)
TEENS = "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
MONTHS = "january february march april may june july august september october november december".split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
NAMES = (
    "alice bob carol david emma frank grace henry isabel jack julia kevin laura michael nina "
    "oliver paula quentin rachel sam sarah thomas ursula victor wendy xavier yusuf zoe anna "
    "ben chloe daniel ella george hannah ian james kate liam maria noah olivia peter ruby "
    "sophie tom lucy mark james emily joseph mia lucas amelia ethan ava mason"
).split()
PLACES = "kitchen|bedroom|living room|office|garage|garden|bathroom|hallway|basement|attic".split("|")
DEVICES = "lights|lamp|fan|heater|music|radio|television|tv|oven|coffee machine|speaker|alarm".split("|")

COMMAND_TEMPLATES = (
    "turn {onoff} the {device}", "turn the {device} {onoff}", "switch {onoff} the {device} in the {place}",
    "next slide", "previous slide", "go back", "stop recording", "start recording", "pause the music",
    "play some music", "volume up", "volume down", "mute", "unmute", "open the door", "close the window",
    "set a timer for {number} minutes", "set an alarm for {time}", "call {name}", "send a message to {name}",
    "what time is it", "what is the weather like today", "remind me to call {name} at {time}",
    "dim the {device} in the {place}", "cancel", "yes please", "no thanks", "scroll down", "scroll up",
    "take a picture", "read my messages", "lock the door", "show me the {place}", "skip this song",
)


@lru_cache(maxsize=1)
def vocabulary(size: int = 12000) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The ``size`` most frequent English words of ``wordfreq`` that the vocabulary
    spells, and their frequencies (Speer, wordfreq 3, CC BY-SA 4.0 data)."""
    from wordfreq import top_n_list, word_frequency

    words = []
    for word in top_n_list("en", size * 2):
        clean = normalize(word)
        if clean == word and clean.strip("'") and clean not in words:
            words.append(clean)
        if len(words) == size:
            break
    return tuple(words), tuple(word_frequency(w, "en") for w in words)


def number_words(n: int) -> str:
    """English words of 0 <= n < 1,000,000 (``104`` -> ``one hundred and four``)."""
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    if n < 100:
        return TENS[n // 10 - 2] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + number_words(rest))
    rest = n % 1000
    head = number_words(n // 1000) + " thousand"
    return head if rest == 0 else head + (" and " if rest < 100 else " ") + number_words(rest)


def _time(rng: random.Random) -> str:
    hour, minute = rng.randint(1, 12), rng.choice([0, 5, 10, 15, 20, 30, 45, rng.randint(1, 59)])
    style = rng.random()
    if minute == 15 and style < 0.5:
        return f"quarter past {number_words(hour)}"
    if minute == 30 and style < 0.5:
        return f"half past {number_words(hour)}"
    if minute == 0:
        return f"{number_words(hour)} o'clock" if style < 0.5 else f"{number_words(hour)} {rng.choice(['am', 'pm'])}"
    mm = ("oh " + ONES[minute]) if minute < 10 else number_words(minute)
    return f"{number_words(hour)} {mm}" + (f" {rng.choice(['am', 'pm'])}" if style > 0.6 else "")


def _date(rng: random.Random) -> str:
    day = rng.choice(ORDINALS + ["twenty first", "twenty second", "twenty third", "thirtieth", "thirty first"])
    year = rng.choice([f"twenty {number_words(rng.randint(10, 40))}", f"nineteen {number_words(rng.randint(50, 99))}", "two thousand and " + number_words(rng.randint(1, 9))])
    forms = (f"{rng.choice(MONTHS)} {day}", f"the {day} of {rng.choice(MONTHS)}", f"{rng.choice(WEEKDAYS)} {rng.choice(MONTHS)} {day}", f"{rng.choice(MONTHS)} {day} {year}")
    return rng.choice(forms)


def digits(rng: random.Random) -> str:
    """One to eight spoken digits, the single digit words most often."""
    n = rng.choice([1, 1, 1, 2, 3, 4, 4, 7, 8])
    return " ".join(rng.choice(ONES + ["oh"] * (n > 3)) for _ in range(n))


def numbers(rng: random.Random) -> str:
    """Cardinal numbers, sometimes with a unit."""
    n = rng.choice([rng.randint(0, 20), rng.randint(0, 100), rng.randint(100, 999), rng.randint(1000, 99999)])
    unit = rng.choice(["", "", "dollars", "percent", "degrees", "minutes", "people", "miles", "kilos"])
    return f"{number_words(n)} {unit}".strip()


def times_and_dates(rng: random.Random) -> str:
    """Clock times and calendar dates in several spoken forms."""
    return rng.choice([_time, _date])(rng) if rng.random() < 0.7 else f"on {_date(rng)} at {_time(rng)}"


def commands(rng: random.Random) -> str:
    """Voice-assistant style commands filled with devices, places, names and times."""
    template = rng.choice(COMMAND_TEMPLATES)
    return template.format(
        onoff=rng.choice(["on", "off"]), device=rng.choice(DEVICES), place=rng.choice(PLACES),
        number=number_words(rng.randint(1, 60)), time=_time(rng), name=rng.choice(NAMES),
    )


def words(rng: random.Random) -> str:
    """Three to twelve words drawn from the frequency list (flattened frequency, so
    rarer words appear too), for broad coverage of English spelling."""
    vocab, freqs = vocabulary()
    weights = [f ** 0.35 for f in freqs]
    return " ".join(rng.choices(vocab, weights=weights, k=rng.randint(3, 12)))


SUBJECTS = "i|you|we|they|she|he|my friend|the teacher|our team|the driver|everyone|nobody|my sister".split("|")
VERBS = "like need want see found bought made lost read wrote cooked painted fixed moved opened watched".split()
OBJECTS = (
    "the book|the car|a new phone|the red door|some bread|the old map|a small boat|the garden|"
    "the letter|our house|the window|a cup of tea|the blue chair|the last train"
).split("|")
ENDINGS = "yesterday|today|this morning|last week|on the weekend|at night|after lunch|again|before dinner".split("|")


def sentences(rng: random.Random) -> str:
    """Simple everyday sentences from subject, verb, object and time phrases."""
    vocab, _ = vocabulary()
    subject = rng.choice(SUBJECTS)
    obj = rng.choice(OBJECTS) if rng.random() < 0.6 else "the " + rng.choice(vocab[:4000])
    ending = rng.choice(ENDINGS + [""] * 4)
    return f"{subject} {rng.choice(VERBS)} {obj} {ending}".strip().replace("  ", " ")


def digit_word(rng: random.Random) -> str:
    """A single digit word, as in isolated-digit corpora."""
    return rng.choice(ONES)


GENERATORS = {
    "digit_word": (digit_word, 0.10),
    "digits": (digits, 0.12),
    "numbers": (numbers, 0.10),
    "times_and_dates": (times_and_dates, 0.10),
    "commands": (commands, 0.13),
    "names": (lambda rng: " ".join(rng.sample(NAMES, rng.randint(1, 3))) if rng.random() < 0.5 else f"this is {rng.choice(NAMES)} speaking", 0.05),
    "sentences": (sentences, 0.15),
    "words": (words, 0.25),
}


def is_eval_text(text: str, eval_fraction: float = 0.05) -> bool:
    """True when ``text`` belongs to the evaluation side (a stable hash of the text).

    Isolated digit words are never evaluation text: they are the digits task itself.
    """
    if text in ONES:
        return False
    digest = int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < eval_fraction


def generate(n: int, seed: int, split: str = "train", kinds: list[str] | None = None) -> list[tuple[str, str]]:
    """``n`` texts of the given split (``train`` or ``eval``), as (generator, text) pairs.

    Args:
        kinds: the generators to draw from (default: all of ``GENERATORS``, by weight).
    Raises:
        ValueError: for an unknown split or generator.
    """
    if split not in ("train", "eval"):
        raise ValueError(f"split must be train or eval, got {split!r}")
    unknown = set(kinds or ()) - set(GENERATORS)
    if unknown:
        raise ValueError(f"unknown text generator(s) {sorted(unknown)}; choose from {sorted(GENERATORS)}")
    rng = random.Random(seed)
    names = list(kinds or GENERATORS)
    weights = [GENERATORS[k][1] for k in names]
    out = []
    while len(out) < n:
        kind = rng.choices(names, weights)[0]
        text = normalize(GENERATORS[kind][0](rng))
        if text and is_eval_text(text) == (split == "eval"):
            out.append((kind, text))
    return out
