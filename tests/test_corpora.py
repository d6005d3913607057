"""Training corpora for real people: speechocean762 and its held-out speakers, Asterisk's
prompts, natural-text prompts that never repeat an evaluation sentence, spoken-form
text, Kokoro's voice pool, augmented copies, and the guard that keeps evaluation data
out of training."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livespeech.features import FeatureConfig
from training.data import AugmentedCopy, FeatureCache, Utterance, check_training_set, read_corpus, read_speechocean
from training.natural import evaluation_sentences, mixed_prompts, natural_prompts, spoken_sentence
from training.spoken import expand, speakable, spoken_form, spoken_words
from tests.conftest import ROOT, speechlike

SHARED = ROOT.parent / "shared" / "data"
SO762 = SHARED / "speechocean762"
TEXT = SHARED / "text"


def _so762(folder: Path) -> Path:
    rows = [
        {"audio": "audio/SPEAKER0001/1.ogg", "text": "we call it bear", "speaker": "0001", "split": "train", "heldout": None},
        {"audio": "audio/SPEAKER0002/2.ogg", "text": "two six four eight", "speaker": "0002", "split": "test", "heldout": "dev"},
        {"audio": "audio/SPEAKER0003/3.ogg", "text": "kate loves china", "speaker": "0003", "split": "test", "heldout": "test"},
    ]
    folder.mkdir(parents=True)
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_speechocean_reader_splits_by_held_out_speakers(tmp_path):
    folder = _so762(tmp_path / "so")
    [train] = read_corpus(f"so762:{folder}")
    [dev] = read_corpus(f"so762-dev:{folder}")
    [test] = read_speechocean(folder, "test")
    assert (train.speaker, train.text, train.extra["split"]) == ("so762:0001", "we call it bear", "train")
    assert dev.speaker == "so762:0002" and dev.extra["heldout"] == "dev"
    assert test.audio == str(folder / "audio/SPEAKER0003/3.ogg") and test.extra["heldout"] == "test"
    with pytest.raises(ValueError, match="dev or test"):
        read_speechocean(folder, "train")


@pytest.mark.skipif(not SO762.exists(), reason="needs ../shared/data/speechocean762")
def test_no_evaluation_speaker_of_speechocean_is_a_training_speaker():
    train = read_corpus(f"so762:{SO762}")
    dev, test = read_corpus(f"so762-dev:{SO762}"), read_corpus(f"so762-test:{SO762}")
    speakers = {name: {u.speaker for u in rows} for name, rows in (("train", train), ("dev", dev), ("test", test))}
    assert (len(train), len(dev), len(test)) == (4000, 500, 500)
    assert (len(speakers["train"]), len(speakers["dev"]), len(speakers["test"])) == (200, 25, 25)
    assert not speakers["train"] & (speakers["dev"] | speakers["test"]) and not speakers["dev"] & speakers["test"]
    check_training_set(train)  # the training side passes the guard; either evaluation side does not
    for rows in (dev, test):
        with pytest.raises(ValueError, match="evaluation utterance"):
            check_training_set(rows)
    # the prepared split files agree with the manifest's field
    assert {u.speaker for u in read_corpus(str(SO762 / "train.jsonl"))} == {s.split(":")[1] for s in speakers["train"]}


def test_training_refuses_evaluation_speakers_takes_and_voices(tmp_path):
    from training.train import load_caches

    folder = _so762(tmp_path / "so")
    with pytest.raises(ValueError, match=r"so762-test.*1 evaluation utterance"):
        load_caches([f"so762-test:{folder}"], tmp_path / "cache", FeatureConfig(), lambda m: None, training=True)
    with pytest.raises(ValueError, match="flite:slt"):
        check_training_set([Utterance("a.wav", "hello", "flite:slt")])
    fsdd = tmp_path / "fsdd" / "recordings"
    fsdd.mkdir(parents=True)
    for name in ("3_theo_0.wav", "3_theo_7.wav"):
        sf.write(fsdd / name, speechlike(0.3), 8000)
    check_training_set(read_corpus(f"fsdd:{fsdd.parent}"))
    with pytest.raises(ValueError, match="held out: test"):
        check_training_set(read_corpus(f"fsdd-test:{fsdd.parent}"))


def test_asterisk_prompts_read_with_their_transcripts(tmp_path, monkeypatch):
    import training.data

    monkeypatch.setattr(training.data, "ASTERISK_TRANSCRIPTS", tmp_path / "not-installed.txt.gz")
    folder = tmp_path / "sounds"
    (folder / "digits").mkdir(parents=True)
    for name in ("agent-pass", "beep", "digits/7"):
        sf.write(folder / f"{name}.wav", speechlike(0.3), 8000)
    text = "; Core Asterisk Sounds\n\nagent-pass: Please enter your password, followed by the pound key.\nbeep: [a beep]\ndigits/7: 7\nmissing: Gone.\n"
    (folder / "core-sounds-en.txt.gz").write_bytes(gzip.compress(text.encode()))
    utterances = read_corpus(f"asterisk:{folder}")
    assert [(Path(u.audio).relative_to(folder).as_posix(), u.text) for u in utterances] == [
        ("agent-pass.wav", "please enter your password followed by the pound key"), ("digits/7.wav", "seven")]
    with pytest.raises(ValueError, match="core-sounds-en.txt"):
        read_corpus(f"asterisk:{tmp_path}")


@pytest.mark.parametrize("written, said", [
    ("Mr. Hale paid $5 on March 9th, 2037.", "mister hale paid five dollars on march ninth twenty thirty seven"),
    ("The telephone was invented by Bell in 1876.", "the telephone was invented by bell in eighteen seventy six"),
    ("Book the table for evening 5:45.", "book the table for evening five forty five"),
    ("‘IF I don’t,’ thought Alice", "if i don't thought alice"),
    ("Rock & roll, 50% off", "rock and roll fifty percent off"),
])
def test_spoken_words_read_written_english_aloud(written, said):
    assert spoken_words(written) == said


def test_spoken_form_scores_oh_as_zero_and_expand_keeps_punctuation():
    assert spoken_form("Call 555-0134.") == "call five five five zero one three four"
    said = " ".join(expand("Dr. Who, at 10:30?").split())
    assert said.startswith("doctor Who, at ten thirty") and said.endswith("?")
    assert speakable("the café") and not speakable("I like THAT") and not speakable("see a/b") and not speakable("北京 is big")


def _text_dir(tmp_path: Path) -> Path:
    """Five sources; the dev side says "the cat sat on the mat", which a training line
    also says in another written form, so it must never become a training prompt."""
    root = tmp_path / "text"
    for name in ("tatoeba", "dialogue", "gutenberg", "commands", "wikitext"):
        (root / name).mkdir(parents=True)
        train = [f"{name} sentence number {i} is here." for i in range(40)] + ["The cat sat on the MAT!", "The cat sat on the mat?"]
        (root / name / "train.txt").write_text("\n".join(train) + "\nA line with a / slash.\n")
        (root / name / "dev.txt").write_text("The cat sat on the mat.\nDev only words here.\n")
    return root


def test_natural_prompts_are_reproducible_and_never_say_an_evaluation_sentence(tmp_path):
    root = _text_dir(tmp_path)
    first = natural_prompts(60, seed=4, text_dir=root)
    assert first == natural_prompts(60, seed=4, text_dir=root) and first != natural_prompts(60, seed=5, text_dir=root)
    said = [spoken_sentence(text) for _, text in first]
    assert len(said) == 60 and len(set(said)) == 60 and all(said)
    assert "the cat sat on the mat" in evaluation_sentences(root)
    assert "the cat sat on the mat" not in said and not any("slash" in s for s in said)
    assert {kind for kind, _ in first} <= {f"text:{n}" for n in ("tatoeba", "dialogue", "gutenberg", "commands", "wikitext")}
    evaluation = natural_prompts(4, seed=1, split="eval", text_dir=root)
    assert {spoken_sentence(t) for _, t in evaluation} <= {"the cat sat on the mat", "dev only words here"}


def test_mixed_prompts_are_mostly_natural_with_generated_numbers_and_commands(tmp_path):
    root = _text_dir(tmp_path)
    prompts = mixed_prompts(100, seed=2, natural_fraction=0.8, text_dir=root)
    kinds = [kind for kind, _ in prompts]
    assert sum(k.startswith("text:") for k in kinds) == 80
    assert set(kinds) - {k for k in kinds if k.startswith("text:")} <= {"digit_word", "digits", "numbers", "times_and_dates", "commands", "names"}
    with pytest.raises(ValueError, match="natural_fraction"):
        mixed_prompts(10, seed=1, natural_fraction=1.5, text_dir=root)
    with pytest.raises(FileNotFoundError, match="--text-dir"):
        natural_prompts(10, seed=1, text_dir=tmp_path / "nowhere")


@pytest.mark.skipif(not TEXT.exists(), reason="needs ../shared/data/text")
def test_shared_training_prompts_never_say_a_dev_sentence():
    held_out = evaluation_sentences(TEXT)
    prompts = mixed_prompts(3000, seed=11, text_dir=TEXT)
    assert len(prompts) >= 2900 and not {spoken_words(text) for _, text in prompts} & held_out


def test_kokoro_voice_pool_mixtures_are_reproducible_and_weighted_to_english(tmp_path):
    from training.synth import kokoro_voice_names, load_kokoro_voice, plan_texts

    names = ["af_heart", "bm_george", "am_adam", "bf_emma", "jf_alpha", "zm_yunxi", "ef_dora", "hf_beta"]
    for k, name in enumerate(names):
        np.full((510, 1, 256), k, np.float32).tofile(tmp_path / f"{name}.bin")
    assert kokoro_voice_names(tmp_path) == tuple(sorted(names))
    assert float(load_kokoro_voice(tmp_path, "bm_george")[0, 0, 0]) == names.index("bm_george")
    texts = [("digits", f"text {i}") for i in range(2000)]
    jobs = [j for b in plan_texts(texts, seed=9, engines=("kokoro",), voice_dir=str(tmp_path)) for j in b.jobs]
    again = [j for b in plan_texts(texts, seed=9, engines=("kokoro",), voice_dir=str(tmp_path)) for j in b.jobs]
    assert jobs == again
    voices = [j.voice for j in jobs]
    mixtures = [v for v in voices if "+" in v]
    assert 0.4 < len(mixtures) / len(voices) < 0.6
    speakers = [name for v in voices for name in v.split("@")[0].split("+")]
    assert set(speakers) == set(names)
    english = sum(s[0] in "ab" for s in speakers) / len(speakers)
    assert 0.7 < english < 0.8  # four English voices weighted 3, four accented weighted 1: 12/16
    with pytest.raises(FileNotFoundError, match="voice packs"):
        kokoro_voice_names(tmp_path / "none")
    (tmp_path / "bad.bin").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="510 x 256"):
        load_kokoro_voice(tmp_path, "bad")


def test_synth_reads_the_written_prompt_and_transcribes_what_is_said():
    from training.synth import plan_texts

    [batch] = plan_texts([("text:tatoeba", "Mr. Smith has 2 dogs."), ("digits", "one two")], seed=1, engines=("espeak",))
    first, second = batch.jobs
    assert (first.text, first.said) == ("mister smith has two dogs", "mister Smith has two dogs.")
    assert (second.text, second.prompt, second.said) == ("one two", "", "one two")
    [batch] = plan_texts([("a", "one"), ("b", "two"), ("c", "three")], seed=1, split="eval", voice=["flite:slt", "flite:kal"])
    assert [j.voice for j in sorted(batch.jobs, key=lambda j: j.index)] == ["slt", "kal", "slt"]
    with pytest.raises(ValueError, match="held-out"):
        plan_texts([("a", "one")], seed=1, voice=["flite:kal", "festival:cmu_us_slt_arctic_hts"])


def test_augmented_copies_are_reproducible_and_differ(tmp_path):
    x = speechlike(1.0)
    assert AugmentedCopy(0)(x, 3) is x
    slow, fast = AugmentedCopy(1, seed=2)(x, 3), AugmentedCopy(2, seed=2)(x, 3)
    assert len(slow) > len(x) > len(fast)  # speed 0.9, then 1.1
    np.testing.assert_array_equal(slow, AugmentedCopy(1, seed=2)(x, 3))
    wav = tmp_path / "a.wav"
    sf.write(wav, x, 16000)
    utterances = [Utterance(str(wav), "a")]
    plain = FeatureCache(utterances, tmp_path / "cache", FeatureConfig())
    copy = FeatureCache(utterances, tmp_path / "cache", FeatureConfig(), transform=AugmentedCopy(1, seed=2))
    assert copy.length(0) > plain.length(0) and len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_headline_sets_lead_with_unseen_real_speakers():
    from training.evaluate import headline_sets

    rows = headline_sets(Path("shared"), Path("slt.jsonl"))
    assert [r.spec for r in rows[:3]] == ["so762-test:shared/speechocean762", "so762-dev:shared/speechocean762", "slt.jsonl"]
    assert rows[3].key == "fsdd-test:shared/fsdd" and rows[4].key.startswith("fsdd-test:shared/fsdd @ -67 dBFS")
    assert len({r.key for r in rows}) == len(rows)
