"""Beam search over words with a lexicon and an n-gram LM (livespeech.beam,
livespeech.lm, livespeech.lexicon): hand-built emissions, streaming equals offline,
user words, and bad language model files."""

from __future__ import annotations

import gzip
import json
import random
import shutil

import pytest
import torch

from livespeech.beam import BeamOptions, BeamSearchDecoder, DecoderChoice, load_beam_decoder, word_decoder_for
from livespeech.bundle import load_bundle, save_bundle
from livespeech.features import FeatureConfig
from livespeech.decoding import greedy_ids
from livespeech.lexicon import LexiconError, read_lexicon, read_word_list, spelling, write_lexicon
from livespeech.lm import LanguageModelError, LanguageModelFiles, attach, language_model_files, load_kenlm, with_unigrams
from livespeech.recognizer import EndpointConfig, Recognizer, transcribe_blocks
from livespeech.text import Vocabulary
from tests.conftest import make_model, speechlike
from training import ngram

V = Vocabulary()
STEP_S = 0.03
CORPUS = ["turn the lights on", "turn the lights off", "the cat sat on the mat", "lights on in the kitchen",
          "turn on the kitchen lights", "the cat is in the kitchen", "a cap on the mat", "the lights are on"]


def build_lm(folder, corpus=CORPUS, order=3, name="lm.arpa.gz"):
    """A toy LM and lexicon of ``corpus`` in ``folder``; their LanguageModelFiles."""
    words = sorted({w for s in corpus for w in s.split()})
    vocabulary = [*ngram.SPECIAL_WORDS, *words]
    ids = {w: i for i, w in enumerate(vocabulary)}
    tokens = ngram.encode_corpus([[ids[w] for w in s.split()] for s in corpus])
    model = ngram.estimate(ngram.count_ngrams(tokens, order, len(vocabulary)), vocabulary)
    folder.mkdir(parents=True, exist_ok=True)
    ngram.write_arpa(model, folder / name)
    write_lexicon(words, folder / "lexicon.txt")
    return LanguageModelFiles(folder / name, folder / "lexicon.txt", user_word_log10prob=-2.0)


def emissions(text: str, sharp: float = 8.0, confusions: dict | None = None, faint: dict | None = None) -> torch.Tensor:
    """Log-probabilities, shape (S, V), that spell ``text``: each character for one
    step, then a blank.  ``confusions`` maps a position in ``text`` to a second
    character as likely as the first; ``faint`` maps a position to a character the
    blank after it half hides (the model half heard it)."""
    rows = []
    for i, char in enumerate(text):
        row = torch.zeros(len(V))
        row[V.tokens.index(char)] = sharp
        if confusions and i in confusions:
            row[V.tokens.index(confusions[i])] = sharp
        blank = torch.eye(len(V))[0] * sharp
        if faint and i in faint:
            blank[V.tokens.index(faint[i])] = sharp / 2
        rows += [row, blank]
    return torch.stack(rows).log_softmax(-1)


def decode(decoder: BeamSearchDecoder, log_probs: torch.Tensor, chunks=None):
    decoder.reset()
    for piece in (chunks or [log_probs]):
        decoder.update(piece)
    return decoder.finish()


@pytest.fixture
def toy(tmp_path):
    return build_lm(tmp_path / "lm")


def test_known_words_win_over_non_words(toy):
    """Greedy spells "turn the lighs on" (the t half heard); the lexicon has no
    "lighs", and the LM likes "lights" after "turn the"."""
    decoder = load_beam_decoder(toy, V, STEP_S, BeamOptions(lm_weight=2.0, word_score=0.0))
    log_probs = emissions("turn the lighs on", faint={12: "t"})
    assert V.decode(t for t, _ in greedy_ids(log_probs)) == "turn the lighs on"
    text, words = decode(decoder, log_probs)
    assert text == "turn the lights on"
    assert [w.word for w in words] == text.split()


def test_language_model_settles_what_the_sound_leaves_open(toy):
    """"the ca? sat": t and p equally likely; only "cat" is followed by "sat" in the text."""
    decoder = load_beam_decoder(toy, V, STEP_S, BeamOptions(lm_weight=1.0))
    text, _ = decode(decoder, emissions("the cat sat", confusions={6: "p"}))
    assert text == "the cat sat"
    text, _ = decode(decoder, emissions("a cat on the mat", confusions={4: "p"}))
    assert text == "a cap on the mat"


def test_word_times_come_from_the_hypothesis_steps(toy):
    decoder = load_beam_decoder(toy, V, STEP_S)
    _, words = decode(decoder, emissions("turn the lights on"))
    # each character takes two steps (itself and a blank): "turn" is characters 0-3, steps 0-6
    assert [(w.word, round(w.start_s / STEP_S), round(w.end_s / STEP_S)) for w in words] == [
        ("turn", 0, 7), ("the", 10, 15), ("lights", 18, 29), ("on", 32, 35)]


def test_partial_text_is_the_best_hypothesis_so_far(toy):
    decoder = load_beam_decoder(toy, V, STEP_S)
    log_probs = emissions("turn the lights on")
    decoder.reset()
    assert decoder.text == ""
    decoder.update(log_probs[:12])  # steps 0-11: "turn t" (a character every other step)
    assert decoder.text == "turn t"
    decoder.update(log_probs[12:])
    assert decoder.text == "turn the lights on"
    assert decoder.finish()[0] == "turn the lights on"


def test_unknown_word_from_a_word_list_becomes_reachable(toy, tmp_path):
    log_probs = emissions("turn the zorblax on")
    plain, _ = decode(load_beam_decoder(toy, V, STEP_S), log_probs)
    assert "zorblax" not in plain
    word_list = tmp_path / "words.txt"
    word_list.write_text("# my words\nZorblax\n")
    extra = read_word_list(word_list)
    assert extra == ["zorblax"]
    decoder = load_beam_decoder(toy, V, STEP_S, extra_words=extra)
    assert decode(decoder, log_probs)[0] == "turn the zorblax on"
    assert decode(decoder, emissions("turn the lights on"))[0] == "turn the lights on"


@pytest.mark.parametrize("name", ["lm.arpa.gz", "lm.arpa"])
def test_added_words_are_unigrams_of_the_lm(tmp_path, name):
    files = build_lm(tmp_path / "lm", name=name)
    words = read_lexicon(files.lexicon)
    out = tmp_path / ("plus" + name[2:])
    with_unigrams(files.arpa, ["zorblax", "quux"], -2.5, out)
    arpa = ngram.ArpaModel(files.arpa)
    before, after = load_kenlm(files.arpa, words), load_kenlm(out, words + ["zorblax", "quux"])
    zorblax, quux = len(words), len(words) + 1
    # p(zorblax | <s>) = bow(<s>) p(zorblax)
    assert after.score(after.start(False), zorblax)[1] == pytest.approx(-2.5 + arpa.backoff[("<s>",)], abs=1e-4)
    # p(quux | <s> the) = bow(<s> the) bow(the) p(quux)
    state, _ = after.score(after.start(False), words.index("the"))
    expected = -2.5 + arpa.backoff.get(("<s>", "the"), 0.0) + arpa.backoff.get(("the",), 0.0)
    assert after.score(state, quux)[1] == pytest.approx(expected, abs=1e-4)
    for word in ("turn", "the", "kitchen"):  # known words score as before
        i = words.index(word)
        assert after.score(after.start(False), i)[1] == pytest.approx(before.score(before.start(False), i)[1])


def random_log_probs(steps: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, len(V), generator=g) * 3
    x[:, 0] += 3  # mostly blanks, like a CTC model
    return x.log_softmax(-1)


@pytest.mark.parametrize("seed", range(6))
def test_streaming_equals_offline_for_any_chunking(toy, seed):
    decoder = load_beam_decoder(toy, V, STEP_S, BeamOptions(beam_size=8, lm_weight=0.5))
    log_probs = random_log_probs(300, seed)
    whole = decode(decoder, log_probs)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, 300), rng.randint(1, 60)))
    chunks = [log_probs[a:b] for a, b in zip([0, *cuts], [*cuts, 300])]
    assert decode(decoder, log_probs, chunks) == whole
    assert decode(decoder, log_probs, list(log_probs.split(1))) == whole


def test_same_words_as_torchaudio_ctc_decoder(toy, tmp_path):
    """The trie built here equals ctc_decoder's: same words on the same emissions."""
    from torchaudio.models.decoder import ctc_decoder

    options = BeamOptions(beam_size=8, lm_weight=1.0, word_score=0.2)
    tokens = ["-", "|", *V.tokens[2:]]
    reference = ctc_decoder(str(toy.lexicon), tokens, lm=str(toy.arpa), beam_size=8, beam_size_token=options.beam_size_token,
                            beam_threshold=options.beam_threshold, lm_weight=1.0, word_score=0.2, blank_token="-", sil_token="|")
    ours = load_beam_decoder(toy, V, STEP_S, options)
    for seed in range(4):
        log_probs = torch.cat([random_log_probs(120, seed), emissions(" ")])  # ends on a word boundary, as ours closes
        expected = " ".join(reference(log_probs.unsqueeze(0))[0][0].words)
        assert decode(ours, log_probs)[0] == expected


# ----------------------------------------------------------------------------- the recognizer


@pytest.fixture
def lm_model(tiny_model_dir, tmp_path):
    """The tiny random model folder with the toy LM attached."""
    files = build_lm(tmp_path / "built")
    attach(tiny_model_dir, files.arpa, files.lexicon, {"decoder": BeamOptions(lm_weight=0.5).to_dict(), "user_word_log10prob": -3.0})
    return tiny_model_dir


@pytest.mark.parametrize("chunk_ms", [10, 30, 1000])
def test_recognizer_streaming_equals_offline_with_beam_search(lm_model, chunk_ms):
    bundle = load_bundle(lm_model)
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5)
    audio = speechlike(3.0, seed=4)

    def run(chunk):
        recognizer = Recognizer(bundle, endpoint, word_decoder_for(bundle))
        return transcribe_blocks(recognizer, [audio], chunk)

    reference, result = run(100), run(chunk_ms)
    assert reference.text and set(reference.text.split()) <= set(read_lexicon(bundle.language_model.lexicon))
    assert [(u.text, u.words, u.start_s, u.end_s) for u in result.utterances] == \
           [(u.text, u.words, u.start_s, u.end_s) for u in reference.utterances]


def test_greedy_characters_still_come_with_each_chunk(lm_model):
    bundle = load_bundle(lm_model)
    recognizer = Recognizer(bundle, EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5), word_decoder_for(bundle))
    greedy = Recognizer(bundle, EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5))
    audio = speechlike(2.0, seed=1)
    for start in range(0, len(audio), 1600):
        a, b = recognizer.accept(audio[start : start + 1600]), greedy.accept(audio[start : start + 1600])
        assert a.emissions == b.emissions


# ----------------------------------------------------------------------------- choosing, bad files


def test_decoder_choice(lm_model):
    bundle = load_bundle(lm_model)
    assert isinstance(word_decoder_for(bundle), BeamSearchDecoder)
    assert word_decoder_for(bundle, DecoderChoice("greedy")) is None
    decoder = word_decoder_for(bundle, DecoderChoice(beam_size=3, lm_weight=0.1))
    assert decoder.options.beam_size == 3 and decoder.options.lm_weight == 0.1


def test_no_language_model(tiny_model_dir):
    bundle = load_bundle(tiny_model_dir)  # (the lm_model fixture is not used here: this folder has no LM)
    assert bundle.language_model is None and word_decoder_for(bundle) is None
    with pytest.raises(LanguageModelError, match="no language model"):
        word_decoder_for(bundle, DecoderChoice("beam"))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-100])


def _garble_keep_size(path):
    start = b"\\data\\\nnot an arpa\n"
    path.write_bytes(start + b"x" * (path.stat().st_size - len(start)))


def _bad_lexicon_keep_size(path):
    data = path.read_bytes()
    path.write_bytes(b"tur\tt u r n |\n" + data[14:])


@pytest.mark.parametrize("key, damage, message", [
    ("arpa", lambda p: p.unlink(), "missing"),
    ("arpa", _truncate, "truncated"),
    ("arpa", _garble_keep_size, "not a valid language model|not an ARPA|corrupt gzip"),
    ("lexicon", _truncate, "truncated"),
    ("lexicon", _bad_lexicon_keep_size, "line 1"),
])
def test_bad_files_warn_then_decode_greedily_or_fail_when_asked(lm_model, key, damage, message):
    config = json.loads((lm_model / "config.json").read_text())
    path = lm_model / config["language_model"][key]
    damage(path)
    bundle = load_bundle(lm_model)  # the weights are fine: the model still loads
    warnings = []
    assert word_decoder_for(bundle, warn=warnings.append) is None
    assert len(warnings) == 1 and str(path) in warnings[0] and "greedily" in warnings[0]
    with pytest.raises(LanguageModelError, match=message) as error:
        word_decoder_for(bundle, DecoderChoice("beam"))
    assert str(error.value).startswith(str(path))


def test_bad_config_entries(tmp_path):
    (tmp_path / "lm.arpa").write_text("x")
    for entry in ({"arpa": "../lm.arpa", "arpa_bytes": 1, "lexicon": "l", "lexicon_bytes": 1},
                  {"arpa": "lm.arpa", "arpa_bytes": "1", "lexicon": "l", "lexicon_bytes": 1}, "lm.arpa"):
        with pytest.raises(LanguageModelError, match="config.json"):
            language_model_files(tmp_path, {"language_model": entry})
    assert language_model_files(tmp_path, {}) is None


def test_word_lists(tmp_path):
    def words(content: bytes):
        path = tmp_path / "w.txt"
        path.write_bytes(content)
        return read_word_list(path)

    assert words("Ada Lovelace\nR2D2 # a robot\n\nada\n".encode()) == ["ada", "lovelace", "r", "two", "d"]
    for content, message in ((b"", "no words"), (b"# only a comment\n", "no words"), (b"\x00\x01\x02abc", "binary"),
                             (b"\xff\xfe caf\xe9", "UTF-8"), (b"a\n" * 600_000, "bytes")):
        with pytest.raises(LexiconError, match=message):
            words(content)
    with pytest.raises(LexiconError, match="cannot read"):
        read_word_list(tmp_path / "missing.txt")


def test_lexicon_files(tmp_path):
    path = tmp_path / "lexicon.txt"
    write_lexicon(["don't", "a"], path)
    assert path.read_text() == "don't\td o n ' t |\na\ta |\n" and spelling("ab") == "a b |"
    assert read_lexicon(path) == ["don't", "a"]
    for text, message in (("", "empty"), ("a\ta |\na\ta |\n", "twice"), ("a b |\n", "line 1"), ("ab\ta c |\n", "line 1")):
        path.write_text(text)
        with pytest.raises(LexiconError, match=message):
            read_lexicon(path)
    with pytest.raises(LexiconError):
        write_lexicon(["caf\u00e9"], path)


def test_gzip_arpa_has_two_members(toy):
    raw = toy.arpa.read_bytes()
    text = gzip.decompress(raw).decode()
    assert text.startswith("\\data\\") and "\\2-grams:" in text
    assert raw.count(b"\x1f\x8b\x08") >= 2  # a second gzip member starts after the unigrams


def test_models_listing_marks_language_models(lm_model, monkeypatch):
    from livespeech import registry

    monkeypatch.setattr(registry, "model_dirs", lambda: [("user", lm_model.parent)])
    entries = {e.name: e for e in registry.list_models()}
    assert entries[lm_model.name].language_model


def test_attach_copies_and_lists(tmp_path, tiny_model_dir):
    files = build_lm(tmp_path / "built")
    attach(tiny_model_dir, files.arpa, files.lexicon, {"decoder": {}})
    config = json.loads((tiny_model_dir / "config.json").read_text())["language_model"]
    assert config["arpa"] == "lm.arpa.gz" and config["arpa_bytes"] == files.arpa.stat().st_size
    assert language_model_files(tiny_model_dir, {"language_model": config}).lexicon == tiny_model_dir / "lexicon.txt"
    shutil.rmtree(tmp_path / "built")
    assert load_bundle(tiny_model_dir).language_model is not None


# ----------------------------------------------------------------------------- the command line


def livespeech(*args):
    from tests.test_cli import livespeech as run

    return run(*args)


def one_error_line(p, status: int, *needles: str) -> str:
    lines = p.stderr.strip().splitlines()
    assert p.returncode == status and len(lines) == 1 and lines[0].startswith("livespeech: error:"), p.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_transcribe_with_beam_search(lm_model, write_audio):
    audio = write_audio("clip.wav", speechlike(1.5, seed=2), 16000)
    beam = livespeech("transcribe", "--model", lm_model, "--format", "json", audio)
    assert beam.returncode == 0 and beam.stderr == ""
    words = read_lexicon(lm_model / "lexicon.txt")
    row = json.loads(beam.stdout)
    assert set(row["text"].split()) <= set(words) and [w["word"] for w in row["words"]] == row["text"].split()
    chunked = livespeech("transcribe", "--model", lm_model, "--format", "json", "--chunk-ms", "10", "--lm-weight", "0.5", audio)
    assert json.loads(chunked.stdout)["text"] == row["text"]
    greedy = livespeech("transcribe", "--model", lm_model, "--decoder", "greedy", audio)
    assert greedy.returncode == 0 and greedy.stdout != beam.stdout


def test_command_line_errors(lm_model, write_audio, tmp_path):
    audio = write_audio("clip.wav", speechlike(0.5), 16000)
    config = json.loads((lm_model / "config.json").read_text())["language_model"]
    _truncate(lm_model / config["arpa"])
    quiet = livespeech("transcribe", "--model", lm_model, audio)  # not asked for: one warning, greedy text
    lines = quiet.stderr.strip().splitlines()
    assert quiet.returncode == 0 and len(lines) == 1 and lines[0].startswith("livespeech: warning:")
    assert "truncated" in lines[0] and "greedily" in lines[0]
    one_error_line(livespeech("transcribe", "--model", lm_model, "--decoder", "beam", audio), 1, str(lm_model / config["arpa"]), "truncated")
    one_error_line(livespeech("transcribe", "--model", lm_model, "--beam-size", "4", audio), 1, "truncated")
    plain = save_bundle(tmp_path / "plain", make_model(), FeatureConfig(), Vocabulary(), {"name": "plain"}, "")
    one_error_line(livespeech("transcribe", "--model", plain, "--decoder", "beam", audio), 1, "no language model")
    for content, needle in ((b"", "no words"), (b"\x00\x01binary", "binary"), (b"word\n" * 300_000, "at most")):
        (tmp_path / "words.txt").write_bytes(content)
        one_error_line(livespeech("transcribe", "--model", lm_model, "--words", tmp_path / "words.txt", audio), 2, "--words", needle)
    one_error_line(livespeech("transcribe", "--decoder", "greedy", "--lm-weight", "1", audio), 2, "beam search")
    one_error_line(livespeech("transcribe", "--lm-weight", "-1", audio), 2)


def test_attach_lists_a_binary_and_drops_it_when_attached_without(tmp_path, tiny_model_dir):
    files = build_lm(tmp_path / "built")
    binary = tmp_path / "built" / "lm.bin"
    binary.write_bytes(b"not a kenlm binary")
    attach(tiny_model_dir, files.arpa, files.lexicon, {"decoder": {}}, binary)
    entry = json.loads((tiny_model_dir / "config.json").read_text())["language_model"]
    assert entry["binary"] == "lm.bin" and entry["binary_bytes"] == len(b"not a kenlm binary")
    assert language_model_files(tiny_model_dir, {"language_model": entry}).binary == tiny_model_dir / "lm.bin"
    attach(tiny_model_dir, files.arpa, files.lexicon, {**entry, "decoder": {}})  # a new LM without a binary
    entry = json.loads((tiny_model_dir / "config.json").read_text())["language_model"]
    assert "binary" not in entry and language_model_files(tiny_model_dir, {"language_model": entry}).binary is None


def test_binary_is_read_unless_words_are_added(toy):
    """The binary (here garbage, so reading it fails) serves plain beam search; added
    words need the ARPA, so a search with words never touches the binary."""
    garbage = toy.arpa.parent / "lm.bin"
    garbage.write_bytes(b"\x00" * 4096)
    files = LanguageModelFiles(toy.arpa, toy.lexicon, garbage, user_word_log10prob=-2.0)
    with pytest.raises(LanguageModelError, match="lm.bin: not a valid language model"):
        load_beam_decoder(files, V, STEP_S)
    decoder = load_beam_decoder(files, V, STEP_S, extra_words=["kettle"])
    assert "kettle" in decoder.words


def test_bundled_binary_scores_exactly_as_its_arpa():
    """models/base/lm.bin is KenLM's lossless binary of lm.arpa.gz: every score of
    random word sequences (known words, <unk>, sentence ends) is the same."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "models" / "base"
    config = json.loads((folder / "config.json").read_text())
    files = language_model_files(folder, config)
    if files is None or files.binary is None:
        pytest.skip("the bundled base lists no KenLM binary")
    words = read_lexicon(files.lexicon) + ["qqqzzz"]  # the last: unknown to the LM
    arpa, binary = load_kenlm(files.arpa, words), load_kenlm(files.binary, words)
    rng = random.Random(7)
    for _ in range(300):
        sequence = [rng.randrange(200) if rng.random() < 0.7 else rng.randrange(len(words)) for _ in range(rng.randint(1, 8))]
        a, b = arpa.start(False), binary.start(False)
        for i in sequence:
            (a, score_a), (b, score_b) = arpa.score(a, i), binary.score(b, i)
            assert score_a == pytest.approx(score_b, abs=1e-5)
        assert arpa.finish(a)[1] == pytest.approx(binary.finish(b)[1], abs=1e-5)
