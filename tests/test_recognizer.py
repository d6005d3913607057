import numpy as np
import pytest

from livespeech.recognizer import FLUSH_PADDING_S, EndpointConfig, Recognizer, transcribe_blocks
from tests.conftest import speechlike


def run(bundle, audio, chunk_ms, endpoint=EndpointConfig()):
    return transcribe_blocks(Recognizer(bundle, endpoint), [audio], chunk_ms)


@pytest.mark.parametrize("model", ["tiny_bundle", "tiny_conv_bundle"])
@pytest.mark.parametrize("state_reset_s", [0.0, 1.0, 60.0])
@pytest.mark.parametrize("chunk_ms", [10, 30, 250, 1000])
def test_text_does_not_depend_on_chunk_size(request, model, chunk_ms, state_reset_s):
    tiny_bundle = request.getfixturevalue(model)
    # A short endpoint makes the random model commit often, so endpoints and state
    # resets inside chunks are exercised (0: a reset at every endpoint; 60: never).
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5, state_reset_s=state_reset_s)
    audio = speechlike(3.0, seed=4)
    reference = run(tiny_bundle, audio, 100, endpoint)
    result = run(tiny_bundle, audio, chunk_ms, endpoint)
    assert result.text == reference.text
    assert [(u.start_s, u.end_s, u.text) for u in result.utterances] == [(u.start_s, u.end_s, u.text) for u in reference.utterances]


@pytest.mark.parametrize("model", ["tiny_bundle", "tiny_conv_bundle"])
@pytest.mark.parametrize("state_reset_s", [0.0, 60.0])
def test_model_state_is_carried_across_endpoints_until_state_reset_s(request, model, state_reset_s):
    """Each utterance's log-probabilities are the model's over the whole stream (state
    carried) or over the stream from the utterance's first step (state reset)."""
    import torch

    tiny_bundle = request.getfixturevalue(model)

    from livespeech.features import log_mel

    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5, state_reset_s=state_reset_s)
    audio = speechlike(2.0, seed=1)
    utterances = run(tiny_bundle, audio, 100, endpoint).utterances
    assert len(utterances) > 2
    padded = np.concatenate([audio, np.zeros(round(FLUSH_PADDING_S * 16000), np.float32)])  # as flush() feeds it
    features = log_mel(torch.from_numpy(padded), tiny_bundle.features)[None]
    step = tiny_bundle.seconds_per_step
    with torch.inference_mode():
        whole, _ = tiny_bundle.model.infer(features)
        for u in utterances:
            first, last = round(u.start_s / step), round(u.end_s / step)
            if state_reset_s:
                expected = whole[0, first:last]
            else:
                expected = tiny_bundle.model.infer(features[:, first * tiny_bundle.model.dims.stack :])[0][0, : last - first]
            assert torch.allclose(u.log_probs, expected, atol=1e-5)


def test_utterance_log_probs_cover_its_steps(tiny_bundle):
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5)
    result = run(tiny_bundle, speechlike(2.0, seed=1), 100, endpoint)
    for u in result.utterances:
        steps = round((u.end_s - u.start_s) / tiny_bundle.seconds_per_step)
        assert u.log_probs.shape == (steps, len(tiny_bundle.vocabulary))


def test_log_probs_can_be_dropped_for_long_transcripts(tiny_bundle):
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5)
    audio = speechlike(2.0, seed=1)
    kept = run(tiny_bundle, audio, 100, endpoint)
    dropped = transcribe_blocks(Recognizer(tiny_bundle, endpoint), [audio], 100, keep_log_probs=False)
    assert dropped.utterances == kept.utterances and dropped.audio_s == kept.audio_s  # log_probs: compare=False
    assert len(kept.utterances) > 1 and all(u.log_probs.numel() == 0 for u in dropped.utterances)


def test_endpoint_resets_state_exactly(tiny_bundle):
    """Text after a forced endpoint equals recognising that audio from a fresh state."""
    rec = Recognizer(tiny_bundle, EndpointConfig(endpoint_s=100, max_utterance_s=0.6))
    audio = speechlike(1.2, seed=2)
    whole = transcribe_blocks(rec, [audio], 100)
    assert whole.audio_s == pytest.approx(1.2)
    assert all(u.end_s - u.start_s <= 0.6 + 1e-6 for u in whole.utterances)


def test_chunk_result_fields(tiny_bundle):
    rec = Recognizer(tiny_bundle)
    r = rec.accept(np.zeros(1600, np.float32))
    assert r.features.shape == (8, 80)  # 1600 samples: frames 0-7 complete before the padding
    assert r.audio_s == pytest.approx(0.1)
    assert r.processing_s >= 0
    assert isinstance(r.partial, str)


def test_reset_starts_over(tiny_bundle):
    audio = speechlike(1.0, seed=3)
    rec = Recognizer(tiny_bundle)
    a = transcribe_blocks(rec, [audio], 100)
    b = transcribe_blocks(rec, [audio], 100)
    assert a.text == b.text and b.audio_s == pytest.approx(1.0)


@pytest.mark.parametrize("name, seconds", [("fsdd_3_theo_0", 0.2), ("fsdd_7_jackson_1", 0.3), ("fsdd_9_nicolas_2", 0.25)])
def test_word_times_are_corrected_for_the_delay_and_lie_within_the_audio(name, seconds):
    """A 0.2 s file once got a word at 0.21-0.27 s: emission times, late and unclamped."""
    from livespeech.audio import read_audio
    from livespeech.bundle import load_bundle
    from livespeech.registry import find_model
    from tests.conftest import ROOT

    bundle = load_bundle(find_model("base"))
    audio = read_audio(ROOT / "assets" / "samples" / f"{name}.wav")[: int(seconds * 16000)]  # cut right after the word
    late = transcribe_blocks(Recognizer(bundle, emission_delay_s=0.0), [audio])
    result = transcribe_blocks(Recognizer(bundle), [audio])
    assert result.text == late.text and result.words
    assert all(0.0 <= w.start_s <= w.end_s <= result.audio_s for w in result.words)
    assert result.words[0].start_s == pytest.approx(max(0.0, late.words[0].start_s - bundle.emission_delay_s))
    assert bundle.emission_delay_s > 0


def with_config(model_dir, **changes):
    """Rewrite the folder's config.json with ``changes`` on top of its first version (kept beside it)."""
    import json

    original = model_dir / "config.original.json"
    if not original.exists():
        original.write_text((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**json.loads(original.read_text()), **changes}))


@pytest.mark.parametrize("key, default, good, bad", [
    ("emission_delay_s", 0.05, (0.12, 0), (-0.1, 5, "0.1", True)),
    ("blank_penalty", 0.0, (3.0, 0), (-0.5, 11, "1", False)),
    ("state_reset_s", 0.0, (5.0, 0), (-1, 4000, "5", True)),
])
def test_decoding_settings_from_the_config_are_checked(tiny_model_dir, key, default, good, bad):
    from livespeech.bundle import ModelError, load_bundle

    assert getattr(load_bundle(tiny_model_dir), key) == default
    for value in good:
        with_config(tiny_model_dir, **{key: value})
        assert getattr(load_bundle(tiny_model_dir), key) == value
    for value in bad:
        with_config(tiny_model_dir, **{key: value})
        with pytest.raises(ModelError, match=key):
            load_bundle(tiny_model_dir)


def test_blank_penalty_from_the_config_reaches_text_and_endpoints(tiny_model_dir):
    import torch

    from livespeech.bundle import load_bundle

    audio = speechlike(2.0, seed=5)
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5)
    texts = {}
    for value in (0, 3.0):
        with_config(tiny_model_dir, blank_penalty=value)
        bundle = load_bundle(tiny_model_dir)
        with torch.no_grad():
            bundle.model.output.bias[0] += 3.0  # make blank win often, as in a trained model
        texts[value] = run(bundle, audio, 100, endpoint).text
        assert run(bundle, audio, 30, endpoint).text == texts[value]  # the endpoints follow the same best tokens
    assert len(texts[3.0].replace(" ", "")) > len(texts[0].replace(" ", ""))


def test_state_reset_s_is_the_models_unless_the_endpoint_config_says_otherwise(tiny_model_dir):
    from livespeech.bundle import load_bundle

    audio = speechlike(2.0, seed=1)
    short = {"endpoint_s": 0.09, "max_utterance_s": 0.5}
    fresh, carried = (run(load_bundle(tiny_model_dir), audio, 100, EndpointConfig(**short, state_reset_s=s)).utterances for s in (0.0, 60.0))
    assert [u.text for u in fresh] != [u.text for u in carried] or any(
        not np.allclose(a.log_probs, b.log_probs) for a, b in zip(fresh, carried))
    with_config(tiny_model_dir, state_reset_s=60.0)
    bundle = load_bundle(tiny_model_dir)
    for endpoint, expected in ((EndpointConfig(**short), carried), (EndpointConfig(**short, state_reset_s=0.0), fresh)):
        got = run(bundle, audio, 100, endpoint).utterances
        assert [u.text for u in got] == [u.text for u in expected]
        assert all(np.allclose(a.log_probs, b.log_probs) for a, b in zip(got, expected))
