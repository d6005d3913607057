"""A simulated Mandarin-L1 accent for synthetic English: phoneme rewrites before Kokoro reads.

speechocean762's speakers (the real speech livespeech is measured on) learned English after
Mandarin, and the synthesisers only ever speak the standard phonemes of a word. This module
rewrites a phoneme string the way such speakers' English commonly differs, so that a voice
reads, for example, "think this" as /sɪŋk dɪs/ while the transcript stays "think this".

The rewrites and their rough frequencies follow the features described for Chinese learners
of English in J. Chang, "Chinese speakers", in M. Swan and B. Smith (eds.), *Learner
English*, 2nd ed., Cambridge University Press, 2001, pp. 310-324, which are also the error
types annotated in speechocean762 (J. Zhang et al., "speechocean762: an open-source
non-native English speech corpus for pronunciation assessment", Interspeech 2021):

- the dental fricatives become /s/ or /f/ and /d/ or /z/; /v/ becomes /w/ or /f/;
- the lax-tense vowel pairs merge (/ɪ/ -> /i/, /ʊ/ -> /u/), /æ/ -> /ɛ/, /ʌ/ -> /ɑ/;
- word-final voiced obstruents are devoiced, final consonants dropped or followed by an
  added schwa, final /l/ vocalised, final r-colouring dropped;
- initial consonant clusters broken by a schwa; initial /n/ -> /l/ (southern varieties);
- word stress flattened (Kokoro's stress marks removed).

Each rewrite happens at each place it can with its probability times the utterance's
``strength`` (0: none, 1: the probabilities below), so a corpus holds light and strong
accents. The phonemes are Kokoro's symbols (``training.synth.kokoro_phonemes``): one letter
per diphthong (``A I O W Y``), ``ˈ``/``ˌ`` for stress and ``ː`` for length.
"""

from __future__ import annotations

import random

# Kokoro's vowel symbols (misaki's, with espeak-ng's extras).
VOWELS = frozenset("aeiouæɐɑɒɔəɛɜɪʊʌAIOWYᵊ")
STRESS = frozenset("ˈˌ")
# (phoneme, what it becomes (drawn uniformly), probability at strength 1).
SUBSTITUTIONS = {
    "θ": (("s", "s", "f"), 0.8),
    "ð": (("d", "d", "z"), 0.8),
    "v": (("w", "w", "f"), 0.5),
    "ɪ": (("i",), 0.5),
    "ʊ": (("u",), 0.5),
    "æ": (("ɛ",), 0.4),
    "ʌ": (("ɑ",), 0.3),
}
FINAL_DEVOICING = {"b": "p", "d": "t", "ɡ": "k", "z": "s", "v": "f"}
STOPS = frozenset("ptkbdɡ")
P_DEVOICE, P_DROP_FINAL, P_EPENTHESIS, P_FINAL_L, P_FINAL_R = 0.5, 0.15, 0.25, 0.3, 0.3
P_CLUSTER, P_N_TO_L, P_FLAT_STRESS = 0.15, 0.1, 0.3


def _is_consonant(symbol: str) -> bool:
    return symbol.isalpha() and symbol not in VOWELS


def _substitute(word: list[str], strength: float, rng: random.Random) -> list[str]:
    out = []
    for symbol in word:
        if symbol in SUBSTITUTIONS:
            choices, p = SUBSTITUTIONS[symbol]
            if rng.random() < p * strength:
                symbol = rng.choice(choices)
        out.append(symbol)
    return out


def _ending(word: list[str], strength: float, rng: random.Random) -> list[str]:
    """Rewrites of the word's last phoneme (devoicing, dropping, an added schwa, /l/, /ɹ/)."""
    last = word[-1]
    vowels_before = any(s in VOWELS for s in word[:-1])
    if last == "ɹ" and len(word) > 1 and word[-2] in VOWELS and rng.random() < P_FINAL_R * strength:
        return word[:-1]
    if last == "l" and vowels_before and rng.random() < P_FINAL_L * strength:
        return word[:-1] + ["ʊ"]
    if last in FINAL_DEVOICING and rng.random() < P_DEVOICE * strength:
        word, last = word[:-1] + [FINAL_DEVOICING[last]], FINAL_DEVOICING[last]
    if not _is_consonant(last) or not vowels_before:
        return word
    draw = rng.random()
    if draw < P_DROP_FINAL * strength and len(word) > 2:
        return word[:-1]
    if last in STOPS and draw < (P_DROP_FINAL + P_EPENTHESIS) * strength:
        return word + ["ə"]
    return word


def _beginning(word: list[str], strength: float, rng: random.Random) -> list[str]:
    """Rewrites of the word's first phonemes (a schwa in a cluster, /n/ -> /l/)."""
    letters = [i for i, s in enumerate(word) if s not in STRESS]
    if len(letters) < 2:
        return word
    first, second = letters[0], letters[1]
    if word[first] == "n" and rng.random() < P_N_TO_L * strength:
        word = word[:first] + ["l"] + word[first + 1 :]
    if _is_consonant(word[first]) and _is_consonant(word[second]) and rng.random() < P_CLUSTER * strength:
        word = word[:second] + ["ə"] + word[second:]
    return word


def accent_word(word: str, strength: float, rng: random.Random) -> str:
    """One word's phonemes (Kokoro's symbols, no spaces) rewritten; see the module's list."""
    symbols = list(word)
    if not any(s in VOWELS or _is_consonant(s) for s in symbols):
        return word
    symbols = _substitute(symbols, strength, rng)
    symbols = _beginning(symbols, strength, rng)
    symbols = _ending(symbols, strength, rng)
    if rng.random() < P_FLAT_STRESS * strength:
        symbols = [s for s in symbols if s not in STRESS]
    return "".join(symbols)


def accent_phonemes(phonemes: str, strength: float, rng: random.Random) -> str:
    """Rewrite a phoneme string (Kokoro's symbols, words split by spaces) as a Mandarin-L1
    speaker might say it.

    Args:
        phonemes: e.g. ``"ðɪs θˈɪŋ"`` (from ``training.synth.kokoro_phonemes``).
        strength: 0 (unchanged) to 1 (every rewrite at its full probability).
        rng: the utterance's random generator: the same seed rewrites the same way.
    Returns:
        the rewritten phonemes, words still split by single spaces.
    Raises:
        ValueError: ``strength`` outside [0, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"accent strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return phonemes
    return " ".join(accent_word(word, strength, rng) for word in phonemes.split(" ") if word)
