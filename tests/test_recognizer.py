import numpy as np
import pytest

from livespeech.recognizer import EndpointConfig, Recognizer, transcribe_blocks
from tests.conftest import speechlike


def run(bundle, audio, chunk_ms, endpoint=EndpointConfig()):
    return transcribe_blocks(Recognizer(bundle, endpoint), [audio], chunk_ms)


@pytest.mark.parametrize("chunk_ms", [10, 30, 250, 1000])
def test_text_does_not_depend_on_chunk_size(tiny_bundle, chunk_ms):
    # A short endpoint makes the random model commit often, so resets inside chunks are exercised.
    endpoint = EndpointConfig(endpoint_s=0.09, max_utterance_s=0.5)
    audio = speechlike(3.0, seed=4)
    reference = run(tiny_bundle, audio, 100, endpoint)
    result = run(tiny_bundle, audio, chunk_ms, endpoint)
    assert result.text == reference.text
    assert [(u.start_s, u.end_s, u.text) for u in result.utterances] == [(u.start_s, u.end_s, u.text) for u in reference.utterances]


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
