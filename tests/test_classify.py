"""``livespeech classify``: the JSON contract, errors and exit codes, phrase-model
selection, and the file -> emissions -> phrase path."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from livespeech.bundle import save_bundle
from livespeech.classify import classify_file, file_log_probs, render
from livespeech.features import FeatureConfig
from livespeech.phrases import PhraseResult, PhraseScorer, load_phrase_set, model_for_phrases
from livespeech.recognizer import Recognizer
from livespeech.text import BLANK, Vocabulary
from tests.conftest import FSDD, ROOT, make_model, speechlike


def livespeech(*args, env=None):
    environment = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "livespeech", *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=300)


SAMPLES = ROOT / "assets" / "samples"
DIGIT_SAMPLES = {"fsdd_3_theo_0.wav": "three", "fsdd_7_jackson_1.wav": "seven", "fsdd_9_nicolas_2.wav": "nine"}
SENTENCE_SAMPLES = ("lights_on.wav", "set_a_timer.wav", "weather.wav")  # none of them is a digit


def _clips(write_audio):
    """The bundled samples and a clip of speech-like noise."""
    return sorted(SAMPLES.glob("*.wav")) + [write_audio("noise.wav", speechlike(0.8, seed=3))]


def test_json_lines_follow_the_contract(tiny_model_dir, write_audio):
    clips = _clips(write_audio)
    p = livespeech("classify", "--model", tiny_model_dir, "--phrases", "digits", "--format", "json", "--top", "2", *clips)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["audio"] for r in rows] == [str(c) for c in clips]
    digits = set(load_phrase_set("digits").phrases)
    for row in rows:
        assert set(row) == {"audio", "phrase", "confidence", "top"}
        assert row["phrase"] is None or row["phrase"] in digits
        assert 0.0 <= row["confidence"] <= 1.0 and len(row["top"]) <= 2
        assert all(set(t) == {"phrase", "p"} and t["phrase"] in digits for t in row["top"])
        if row["phrase"] is not None:  # the chosen phrase is the most probable, with its posterior
            assert row["top"][0] == {"phrase": row["phrase"], "p": row["confidence"]}
        else:  # none won
            assert all(t["p"] <= row["confidence"] for t in row["top"])


def test_txt_output_and_failed_files(tiny_model_dir, write_audio, tmp_path):
    good = write_audio("good.wav", speechlike(0.6))
    (tmp_path / "text.wav").write_text("not audio\n" * 40)
    p = livespeech("classify", "--model", tiny_model_dir, "--phrases", "commands", good, tmp_path / "text.wav", tmp_path / "missing.wav")
    assert p.returncode == 1
    errors = p.stderr.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("livespeech: error:") for e in errors) and "Traceback" not in p.stderr
    [line] = p.stdout.splitlines()
    name, _, rest = line.partition(": ")
    phrase, confidence = rest.rsplit(" ", 1)
    assert name == str(good) and (phrase == "(none)" or phrase in load_phrase_set("commands").phrases)
    assert 0 <= float(confidence) <= 1


@pytest.mark.parametrize("args, message", [
    (["--phrases", "nosuch"], "no phrase set named 'nosuch'"),
    (["--phrases", "missing.txt"], "missing.txt: no such file"),
    ([], "--phrases is needed"),
    (["--phrases", "digits", "--format", "srt"], "invalid choice"),
])
def test_usage_errors_are_one_line_exit_2(tiny_model_dir, write_audio, args, message):
    clip = write_audio("clip.wav", speechlike(0.3))
    p = livespeech("classify", "--model", tiny_model_dir, *args, clip)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livespeech: error:") and message in lines[0]


def _silent_model():
    """A model that only ever emits blank: the recognizer hears nothing."""
    model = make_model()
    with torch.no_grad():
        model.output.weight.zero_()
        model.output.bias.fill_(-10.0)
        model.output.bias[BLANK] = 10.0
    return model


def test_phrase_model_named_after_the_set_is_used_by_default(tmp_path, write_audio):
    """Without --model, classify --phrases digits uses the installed model 'digits'
    trained for that set (here one that hears nothing, so the answer is none/1.0/[])."""
    data = tmp_path / "data"
    digits = load_phrase_set("digits")
    info = {"name": "digits", "phrases": {"name": "digits", "phrases": list(digits.phrases), "scorer": {"threshold": -0.5}}}
    save_bundle(data / "livespeech" / "models" / "digits", _silent_model(), FeatureConfig(), Vocabulary(), info, "# digits\n")
    clip = FSDD / "3_theo_1.wav" if FSDD.exists() else write_audio("clip.wav", speechlike(0.8))
    p = livespeech("classify", "--phrases", "digits", "--format", "json", clip, env={"XDG_DATA_HOME": str(data)})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"audio": str(clip), "phrase": None, "confidence": 1.0, "top": []}
    p = livespeech("classify", "--model", "digits", clip, env={"XDG_DATA_HOME": str(data)})  # the model's own set
    assert p.returncode == 0 and p.stdout == "(none) 1.00\n"


@pytest.mark.skipif(model_for_phrases(load_phrase_set("digits")) is None, reason="needs the digits phrase model (models/digits)")
def test_bundled_samples_with_the_digits_model():
    """The real thing: the digit samples are recognised, the sentences rejected."""
    names = [*DIGIT_SAMPLES, *SENTENCE_SAMPLES]
    p = livespeech("classify", "--phrases", "digits", "--format", "json", *[SAMPLES / n for n in names])
    assert p.returncode == 0, p.stderr
    got = {Path(r["audio"]).name: r["phrase"] for r in map(json.loads, p.stdout.splitlines())}
    assert got == {**DIGIT_SAMPLES, **{n: None for n in SENTENCE_SAMPLES}}


def test_file_emissions_join_all_utterances(tiny_bundle, write_audio):
    audio = np.concatenate([speechlike(1.0, seed=1), np.zeros(16000, np.float32), speechlike(1.0, seed=2)])
    path = write_audio("two_parts.wav", audio)
    recognizer = Recognizer(tiny_bundle)
    log_probs, transcript = file_log_probs(recognizer, path)
    assert log_probs.shape == (sum(u.log_probs.shape[0] for u in transcript.utterances), len(tiny_bundle.vocabulary))
    scorer = PhraseScorer(load_phrase_set("digits"), tiny_bundle.vocabulary)
    expected = scorer.score(log_probs) if log_probs.shape[0] else PhraseResult(None, 1.0, ())
    assert classify_file(recognizer, scorer, path) == expected
    chunked = classify_file(recognizer, scorer, path, chunk_ms=37)  # the chunk size changes float rounding only
    assert chunked.phrase == expected.phrase
    assert chunked.confidence == pytest.approx(expected.confidence, rel=1e-5)
    assert [p for p, _ in chunked.top] == [p for p, _ in expected.top]


def test_render():
    result = PhraseResult("one", 0.5, (("one", 0.5),))
    assert render("a.wav", result, "txt", several=False) == "one 0.50\n"
    assert render("a.wav", PhraseResult(None, 0.9, ()), "txt", several=True) == "a.wav: (none) 0.90\n"
    assert json.loads(render("a.wav", result, "json", several=True))["top"] == [{"phrase": "one", "p": 0.5}]
