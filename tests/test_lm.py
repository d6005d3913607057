"""The word n-gram estimator (training.ngram), worked out by hand on a toy corpus, and
``livespeech-train lm``."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from training import ngram
from training.ngram import ArpaModel, count_ngrams, encode_corpus, estimate, kn_discounts, write_arpa

# The toy corpus: three sentences over the words a, b, c.
#   <s> a b </s>      <s> a b c </s>      <s> b c </s>
TOY = [["a", "b"], ["a", "b", "c"], ["b", "c"]]
VOCABULARY = ["<unk>", "<s>", "</s>", "a", "b", "c"]


def toy_model(order: int = 3, prune=()) -> ngram.NgramModel:
    ids = {w: i for i, w in enumerate(VOCABULARY)}
    tokens = encode_corpus([[ids[w] for w in s] for s in TOY])
    return estimate(count_ngrams(tokens, order, len(VOCABULARY)), VOCABULARY, prune)


def lookup(model: ngram.NgramModel, words: str) -> int:
    """Index of an n-gram (words separated by spaces) in its order's arrays."""
    ids = [VOCABULARY.index(w) for w in words.split()]
    index = ids[0]
    for n, w in enumerate(ids[1:], start=2):
        match = np.flatnonzero((model.counts.context[n - 1] == index) & (model.counts.words[n - 1] == w))
        assert match.size == 1, words
        index = int(match[0])
    return index


def prob(model, words: str) -> float:
    return 10 ** model.log10_prob[len(words.split()) - 1][lookup(model, words)]


def bow(model, words: str) -> float:
    return 10 ** model.log10_backoff[len(words.split()) - 1][lookup(model, words)]


def test_counts_by_hand():
    model = toy_model()
    raw = {w: int(model.counts.counts[0][VOCABULARY.index(w)]) for w in VOCABULARY}
    assert raw == {"<unk>": 0, "<s>": 3, "</s>": 3, "a": 2, "b": 3, "c": 2}
    # bigram types: <s> a (2), <s> b (1), a b (2), b </s> (1), b c (2), c </s> (2)
    assert sorted(model.counts.counts[1].tolist()) == [1, 1, 2, 2, 2, 2]
    # trigram types: <s> a b (2), a b </s> (1), a b c (1), b c </s> (2), <s> b c (1)
    assert sorted(model.counts.counts[2].tolist()) == [1, 1, 1, 2, 2]
    adjusted = ngram.adjusted_counts(model.counts)
    # unigrams: distinct words before each: a {<s>}, b {<s>, a}, c {b}, </s> {b, c}; <s> is never predicted
    assert {w: int(adjusted[0][VOCABULARY.index(w)]) for w in VOCABULARY} == {"<unk>": 0, "<s>": 0, "</s>": 2, "a": 1, "b": 2, "c": 1}
    # bigrams: "a b" {<s>}, "b c" {a, <s>}, "b </s>" {a}, "c </s>" {b}; those starting with <s> keep raw counts
    expected = {"<s> a": 2, "<s> b": 1, "a b": 1, "b c": 2, "b </s>": 1, "c </s>": 1}
    assert {k: int(adjusted[1][lookup(model, k)]) for k in expected} == expected


def test_discounts_by_hand():
    # Chen & Goodman (1998) eq. 26 with n1..n4 = 10, 4, 3, 2: Y = 10 / 18
    d1, d2, d3 = kn_discounts([10, 4, 3, 2])
    y = 10 / 18
    assert d1 == pytest.approx(1 - 2 * y * 4 / 10)  # 0.5556
    assert d2 == pytest.approx(2 - 3 * y * 3 / 4)  # 0.75
    assert d3 == pytest.approx(3 - 4 * y * 2 / 3)  # 1.5185
    # a count-of-counts with a zero gives lmplz's fallback, or an error without one
    assert kn_discounts([3, 2, 0, 0]) == ngram.DISCOUNT_FALLBACK
    with pytest.raises(ngram.EstimationError):
        kn_discounts([3, 2, 0, 0], fallback=None)


def test_probabilities_and_backoffs_by_hand():
    """Every order of the toy corpus has a zero count-of-count, so D1, D2, D3+ = 0.5, 1, 1.5.

    Unigrams, adjusted counts a 1, b 2, c 1, </s> 2, <unk> 0 (sum 6); discounted mass
    0.5 + 1 + 0.5 + 1 = 3, gamma = 3/6, uniform over 5 predicted words, gamma/5 = 0.1:
        p(a) = 0.5/6 + 0.1 = 0.18333   p(b) = 1/6 + 0.1 = 0.26667   p(<unk>) = 0.1
    Bigrams, context <s>: a (2), b (1), sum 3, gamma = (1 + 0.5)/3 = 0.5:
        p(a|<s>) = 1/3 + 0.5 p(a) = 0.425      p(b|<s>) = 0.5/3 + 0.5 p(b) = 0.3
      context b: c (2), </s> (1): p(c|b) = 1/3 + 0.5 p(c) = 0.425; p(</s>|b) = 0.3
      context a: b (1), gamma 0.5: p(b|a) = 0.5 + 0.5 p(b) = 0.63333
    Trigrams (raw counts), context "a b": </s> (1), c (1), sum 2, gamma = 1/2:
        p(c|a b) = 0.5/2 + 0.5 p(c|b) = 0.4625   p(</s>|a b) = 0.25 + 0.5 p(</s>|b) = 0.4
      context "<s> a": b (2): p(b|<s> a) = 1/2 + 0.5 p(b|a) = 0.81667
    Unpruned, every backoff weight equals its gamma: 0.5.
    """
    model = toy_model()
    assert model.discounts == [(0.5, 1.0, 1.5)] * 3
    expected = {"a": 0.5 / 6 + 0.1, "b": 1 / 6 + 0.1, "c": 0.5 / 6 + 0.1, "</s>": 1 / 6 + 0.1, "<unk>": 0.1,
                "<s> a": 0.425, "<s> b": 0.3, "b c": 0.425, "b </s>": 0.3, "a b": 0.63333333, "c </s>": 0.63333333,
                "a b c": 0.4625, "a b </s>": 0.4, "<s> a b": 0.81666667, "b c </s>": 0.81666667, "<s> b c": 0.7125}
    for words, p in expected.items():
        assert prob(model, words) == pytest.approx(p, abs=1e-7), words
    assert sum(expected[w] for w in ("a", "b", "c", "</s>", "<unk>")) == pytest.approx(1.0)
    for context in ("<s>", "a", "b", "c", "<s> a", "a b", "b c", "<s> b"):
        assert bow(model, context) == pytest.approx(0.5), context
    assert model.log10_prob[0][ngram.BOS] == ngram.LOG10_ZERO


def test_pruning_renormalises_by_hand():
    """prune (0, 1, 1): trigrams seen once and bigrams with adjusted count 1 go, except
    contexts and suffixes of kept trigrams ("<s> a b" and "b c </s>" keep "<s> a",
    "a b", "b c", "c </s>").  "<s> b" and "b </s>" are pruned, so
        bow(<s>) = (1 - p(a|<s>)) / (1 - p(a)) = 0.575 / 0.81667 = 0.70408
        p(b|<s>) = bow(<s>) p(b) = 0.18776
    and "a b" keeps no trigram extension: bow(a b) = 1.
    """
    model = toy_model(prune=(0, 1, 1))
    assert model.sizes() == [6, 4, 2]
    assert bow(model, "<s>") == pytest.approx(0.575 / (1 - (0.5 / 6 + 0.1)))
    assert bow(model, "b") == pytest.approx(0.575 / (1 - (0.5 / 6 + 0.1)))
    assert prob(model, "<s> b") == pytest.approx(0.575 / (1 - (0.5 / 6 + 0.1)) * (1 / 6 + 0.1))
    assert bow(model, "a") == pytest.approx((1 - 0.63333333) / (1 - (1 / 6 + 0.1)))
    assert bow(model, "<s> a") == pytest.approx(0.5)
    assert bow(model, "a b") == pytest.approx(1.0)
    assert prob(model, "<s> a b") == pytest.approx(0.81666667)


def test_arpa_round_trip_by_hand(tmp_path):
    model = toy_model(prune=(0, 1, 1))
    path = tmp_path / "toy.arpa"
    write_arpa(model, path)
    text = path.read_text()
    assert text.startswith("\\data\\\nngram 1=6\nngram 2=4\nngram 3=2\n")
    assert "-99.00000\t<s>\t" in text and text.endswith("\\end\\\n")
    arpa = ArpaModel(path)
    assert 10 ** arpa.log10_prob("b", ["<s>", "a"]) == pytest.approx(0.81666667, rel=1e-4)
    # "a b c" was pruned: bow(a b) = 1, then p(c|b) = 0.425
    assert 10 ** arpa.log10_prob("c", ["a", "b"]) == pytest.approx(0.425, rel=1e-4)
    # "<s> b" was pruned: bow(<s>) p(b)
    assert 10 ** arpa.log10_prob("b", ["<s>"]) == pytest.approx(0.70408 * 0.26667, rel=1e-3)


def random_model(order: int, prune=(), seed: int = 0, words: int = 12, sentences: int = 300):
    rng = random.Random(seed)
    vocabulary = list(ngram.SPECIAL_WORDS) + [f"w{i}" for i in range(words)]
    weights = [1 / (i + 1) for i in range(words)]  # Zipf-like, so counts of 1-4 all occur
    corpus = [[3 + rng.choices(range(words), weights)[0] for _ in range(rng.randint(1, 8))] for _ in range(sentences)]
    corpus += [[0, 3, 0]]  # <unk> as a word
    tokens = encode_corpus(corpus)
    return estimate(count_ngrams(tokens, order, len(vocabulary)), vocabulary, prune), vocabulary


@pytest.mark.parametrize("order,prune", [(2, ()), (3, ()), (3, (0, 1, 1)), (4, (0, 0, 1, 2))])
def test_every_context_sums_to_one(tmp_path, order, prune):
    """The written model is a distribution over the predicted words in every context
    (pruned or not), with discounts from the count-of-counts formula."""
    model, vocabulary = random_model(order, prune)
    assert model.discounts[-1] != ngram.DISCOUNT_FALLBACK
    path = tmp_path / "lm.arpa"
    write_arpa(model, path, digits=7)
    arpa = ArpaModel(path)
    predicted = [w for w in vocabulary if w != "<s>"]
    contexts = {(), ("<s>",)} | {k[:-1] for k in arpa.prob if len(k) > 1} | {("w1", "w2", "w3")[: order - 1]}
    for context in contexts:
        if context and context[-1] == "</s>":
            continue
        total = sum(10 ** arpa.log10_prob(w, context) for w in predicted)
        assert total == pytest.approx(1.0, abs=2e-5), context


def test_kenlm_reads_the_arpa_as_written(tmp_path):
    """KenLM (in flashlight-text, the decoder's LM) scores like the ARPA semantics."""
    from livespeech.lm import load_kenlm

    model, vocabulary = random_model(3, (0, 1, 1), seed=3)
    path = tmp_path / "lm.arpa"
    write_arpa(model, path)
    arpa = ArpaModel(path)
    words = vocabulary[3:]
    kenlm = load_kenlm(path, words)
    rng = random.Random(1)
    for _ in range(50):
        sentence = [rng.choice(words) for _ in range(rng.randint(1, 6))]
        state, context = kenlm.start(False), ["<s>"]
        for w in sentence:
            state, score = kenlm.score(state, words.index(w))
            assert score == pytest.approx(arpa.log10_prob(w, context), abs=1e-4)
            context.append(w)
        assert kenlm.finish(state)[1] == pytest.approx(arpa.log10_prob("</s>", context), abs=1e-4)


def test_bad_options():
    with pytest.raises(ngram.EstimationError):
        count_ngrams(np.array([1, 9, 2]), 3, 5)
    with pytest.raises(ngram.EstimationError):
        count_ngrams(np.array([1, 3, 2]), 0, 5)
    tokens = encode_corpus([[3]])
    with pytest.raises(ngram.EstimationError):
        estimate(count_ngrams(tokens, 2, 4), ["a", "b", "c", "d"])


def test_perplexity():
    assert ngram.perplexity([-1.0, -1.0]) == pytest.approx(10.0)
    assert math.isinf(ngram.perplexity([]))


def test_livespeech_train_lm_builds_and_attaches(tmp_path, tiny_model_dir, capsys):
    """The command end to end on a small text: vocabulary, files, report, attaching."""
    from livespeech.bundle import load_bundle
    from livespeech.lexicon import read_lexicon
    from training.cli import main

    text = tmp_path / "text" / "toy" / "train.txt"
    text.parent.mkdir(parents=True)
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to", "Dr.", "Smith", "at", "5:30"]
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(400)) + "\nzyzzyva once\n")
    dev = tmp_path / "text" / "toy" / "dev.txt"
    dev.write_text("The cat sat on the mat.\nA dog ran to the unknownword.\n")
    extra = tmp_path / "names.txt"
    extra.write_text("Ada\n")
    out = tmp_path / "lm"
    assert main(["lm", "--out", str(out), "--text", str(text), "--dev", str(dev), "--words", str(extra)]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = json.loads((out / "lm.json").read_text())
    lexicon = read_lexicon(out / "lexicon.txt")
    # spoken forms ("doctor", "five thirty"), the bundled phrase sets' words and --words; not singletons
    assert {"doctor", "smith", "five", "thirty", "lights", "seven", "ada"} <= set(lexicon) and "zyzzyva" not in lexicon
    assert "Dr." not in lexicon and len(lexicon) == report["words"] == summary["words"]
    toy = report["dev"]["toy"]
    assert toy["sentences"] == 2 and toy["words"] == 12 and toy["oov_rate"] == pytest.approx(1 / 12, abs=1e-4)
    assert 1 < toy["perplexity"] < 100
    assert report["arpa_bytes"] == (out / "lm.arpa.gz").stat().st_size and report["user_word_log10prob"] < 0
    assert main(["lm", "--attach", str(out), "--model", str(tiny_model_dir)]) == 0
    bundle = load_bundle(tiny_model_dir)
    assert bundle.language_model is not None and bundle.language_model.info["perplexity"]["toy"] == toy["perplexity"]


def test_livespeech_train_lm_errors(tmp_path, capsys):
    from training.cli import main

    assert main(["lm", "--out", str(tmp_path / "lm"), "--text", str(tmp_path / "none*.txt")]) == 1
    assert "no text file" in capsys.readouterr().err
    assert main(["lm", "--attach", str(tmp_path)]) == 1
    assert main(["lm", "--attach", str(tmp_path), "--model", str(tmp_path)]) == 1
    assert "no language model built" in capsys.readouterr().err
    assert main(["lm", "--binary-of", str(tmp_path), "--build-binary", str(tmp_path / "no-such-program")]) == 1
    assert "not an executable build_binary" in capsys.readouterr().err


def test_kenlm_binary_of_a_built_lm(tmp_path, tiny_model_dir, capsys):
    """``lm --binary-of``: KenLM's binary of an LM built before, recorded in lm.json,
    attached with it, and scoring as the ARPA does.  Needs KenLM's build_binary
    (``livespeech-train lm --compile-build-binary``)."""
    from livespeech.bundle import load_bundle
    from livespeech.lexicon import read_lexicon
    from livespeech.lm import load_kenlm
    from training.cli import main
    from training.kenlm_binary import find_build_binary

    program = find_build_binary()
    if program is None:
        pytest.skip("no KenLM build_binary here")
    text = tmp_path / "text" / "toy" / "train.txt"
    text.parent.mkdir(parents=True)
    rng = random.Random(1)
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "to"]
    text.write_text("\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(2, 9))) for _ in range(300)) + "\n")
    dev = text.with_name("dev.txt")
    dev.write_text("the cat sat on a mat\n")
    out = tmp_path / "lm"
    assert main(["lm", "--out", str(out), "--text", str(text), "--dev", str(dev), "--build-binary", "/bin/false"]) == 1
    assert "build_binary failed" in capsys.readouterr().err and not (out / "lm.bin").exists()
    assert main(["lm", "--out", str(out), "--text", str(text), "--dev", str(dev), "--build-binary", str(program)]) == 0
    (out / "lm.bin").unlink()
    assert main(["lm", "--binary-of", str(out), "--build-binary", str(program)]) == 0
    report = json.loads((out / "lm.json").read_text())
    assert report["binary_bytes"] == (out / "lm.bin").stat().st_size and set(report["load_s"]) == {"arpa", "binary"}
    assert main(["lm", "--attach", str(out), "--model", str(tiny_model_dir)]) == 0
    files = load_bundle(tiny_model_dir).language_model
    assert files.binary == tiny_model_dir / "lm.bin"
    lexicon = read_lexicon(files.lexicon)
    arpa, binary = load_kenlm(files.arpa, lexicon), load_kenlm(files.binary, lexicon)
    for sentence in (["the", "cat", "sat"], ["dog", "ran", "to", "a", "mat"]):
        a, b = arpa.start(False), binary.start(False)
        for word in sentence:
            (a, score_a), (b, score_b) = arpa.score(a, lexicon.index(word)), binary.score(b, lexicon.index(word))
            assert score_a == pytest.approx(score_b, abs=1e-5)
