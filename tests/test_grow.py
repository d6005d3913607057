"""Widening a trained model keeps what it computes (training/grow.py)."""

import pytest
import torch

from livespeech.model import CTCModel, ModelDims
from training.grow import add_head, can_add_head, can_widen, dims_of_state, widen_state

SMALL = ModelDims(n_mels=16, stack=2, hidden=12, layers=3, vocab_size=7)
WIDE = ModelDims(n_mels=16, stack=2, hidden=20, layers=3, vocab_size=7)
CONV_SMALL = ModelDims(n_mels=16, stack=4, hidden=12, layers=3, vocab_size=7, frontend="conv", channels=4)
CONV_WIDE = ModelDims(n_mels=16, stack=4, hidden=20, layers=3, vocab_size=7, frontend="conv", channels=4)


def _trained_like(dims: ModelDims) -> CTCModel:
    torch.manual_seed(3)
    model = CTCModel(dims)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)  # far from the default initialisation, as trained weights are
        model.feature_mean.normal_()
        model.feature_std.uniform_(0.5, 2.0)
    return model.eval()


HEADED = ModelDims(n_mels=16, stack=2, hidden=12, layers=3, vocab_size=7, head_steps=4)


@pytest.mark.parametrize("dims", [SMALL, CONV_SMALL, HEADED])
def test_dims_are_read_off_the_state(dims):
    assert dims_of_state(_trained_like(dims).state_dict()) == dims


@pytest.mark.parametrize("narrow, broad", [(SMALL, WIDE), (CONV_SMALL, CONV_WIDE)])
def test_wide_model_computes_what_the_narrow_one_did(narrow, broad):
    small = _trained_like(narrow)
    wide = CTCModel(broad).eval()
    wide.load_state_dict(widen_state(small.state_dict(), narrow, broad))
    x, lengths = torch.randn(2, 41, 16), torch.tensor([41, 30])
    with torch.no_grad():
        expected, n1 = small(x, lengths)
        got, n2 = wide(x, lengths)
        state, pieces = None, []
        for start in range(0, 41, 5):  # streaming, 5 frames a chunk, carrying the state
            piece, state = wide.infer(x[:1, start : start + 5], state)
            pieces.append(piece)
        streamed = torch.cat(pieces, dim=1)
    assert torch.equal(n1, n2)
    assert torch.allclose(expected, got, atol=1e-5)
    assert torch.allclose(streamed, expected[:1], atol=1e-5)


def test_new_units_learn_from_the_first_steps():
    small = _trained_like(SMALL)
    wide = CTCModel(WIDE)
    wide.load_state_dict(widen_state(small.state_dict(), SMALL, WIDE))
    log_probs, _ = wide(torch.randn(1, 20, 16), torch.tensor([20]))
    log_probs[..., 1].sum().backward()
    assert wide.output.weight.grad[:, SMALL.hidden :].abs().sum() > 0  # read-out of the new units


def test_growth_is_reproducible_from_its_seed():
    state = _trained_like(SMALL).state_dict()
    a, b = widen_state(state, SMALL, WIDE, seed=5), widen_state(state, SMALL, WIDE, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("change", [{"layers": 4}, {"stack": 3}, {"vocab_size": 8}, {"hidden": 12}, {"hidden": 8},
                                    {"stack": 4, "frontend": "conv", "hidden": 20}])
def test_only_more_hidden_units_can_be_grown(change):
    other = ModelDims(**{**SMALL.to_dict(), **change})
    assert not can_widen(SMALL, other)
    with pytest.raises(ValueError):
        widen_state(_trained_like(SMALL).state_dict(), SMALL, other)


def test_a_start_of_another_shape_is_refused_with_the_options_it_needs(tiny_model_dir):
    """fit --init-from a model it can neither load nor widen says which sizes to give."""
    from types import SimpleNamespace

    from training.train import build_model

    config = SimpleNamespace(init_from=str(tiny_model_dir), seed=0)  # the tiny model: 2 layers of 32
    with pytest.raises(ValueError, match="give --hidden 32 --layers 2"):
        build_model(config, ModelDims(hidden=24, layers=2), [], None, say=lambda line: None)
    assert build_model(config, ModelDims(hidden=32, layers=2), [], None, say=lambda line: None).dims.hidden == 32


def test_init_from_a_run_folder_starts_from_its_last_checkpoint(tmp_path, tiny_model_dir):
    """fit --init-from runs/NAME (a run folder: last.pt, no config.json) takes last.pt's weights."""
    from types import SimpleNamespace

    from livespeech.bundle import load_bundle
    from training.train import build_model, save_checkpoint

    state = {k: v + 1.0 for k, v in load_bundle(tiny_model_dir).model.state_dict().items()}
    save_checkpoint(tmp_path / "run" / "last.pt", {"model": state, "step": 7})
    config = SimpleNamespace(init_from=str(tmp_path / "run"), seed=0)
    model = build_model(config, ModelDims(hidden=32, layers=2), [], None, say=lambda line: None)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="neither a model folder .config.json. nor a run folder .last.pt."):
        build_model(SimpleNamespace(init_from=str(tmp_path / "empty"), seed=0), ModelDims(hidden=32, layers=2), [], None,
                    say=lambda line: None)


def test_a_model_given_a_context_head_computes_what_it_did():
    plain = _trained_like(SMALL)
    headed = CTCModel(HEADED).eval()
    headed.load_state_dict(add_head(plain.state_dict(), HEADED, seed=1))
    x, lengths = torch.randn(2, 41, 16), torch.tensor([41, 30])
    with torch.no_grad():
        expected, _ = plain(x, lengths)
        got, _ = headed(x, lengths)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    log_probs, _ = headed(x, lengths)
    log_probs[..., 1].sum().backward()
    assert headed.head.outer.weight.grad.abs().sum() > 0  # the zero start learns from the first step


@pytest.mark.parametrize("change", [{"hidden": 20}, {"layers": 2}, {"head_steps": 0}])
def test_a_head_is_added_only_to_the_same_model_without_one(change):
    other = ModelDims(**{**HEADED.to_dict(), **change})
    assert not can_add_head(SMALL, other)
    with pytest.raises(ValueError, match="context head"):
        add_head(_trained_like(SMALL).state_dict(), other)
    assert not can_add_head(HEADED, HEADED) and not can_widen(HEADED, ModelDims(**{**HEADED.to_dict(), "hidden": 20}))


def test_fit_init_from_adds_the_head_asked_for(tiny_model_dir):
    """fit --init-from a model without a head --head-steps K: the model with a head, computing the same."""
    from types import SimpleNamespace

    from livespeech.bundle import load_bundle
    from training.train import build_model

    lines = []
    model = build_model(SimpleNamespace(init_from=str(tiny_model_dir), seed=0), ModelDims(hidden=32, layers=2, head_steps=3), [],
                        None, say=lines.append).eval()
    plain = load_bundle(tiny_model_dir).model
    x = torch.randn(1, 30, 80) * 3 - 6
    with torch.no_grad():
        torch.testing.assert_close(model(x, torch.tensor([30]))[0], plain(x, torch.tensor([30]))[0], atol=1e-6, rtol=0)
    assert model.dims.head_steps == 3 and "context head of 3 steps" in lines[-1]
