import pytest
import torch

from livespeech.model import CTCModel, ModelDims
from tests.conftest import make_model


@pytest.mark.parametrize("stack, layers", [(1, 2), (3, 2), (4, 2), (3, 3), (4, 5)])  # (4, 5): the larger configuration's shape
@pytest.mark.parametrize("seed", range(3))
def test_chunked_infer_equals_forward(stack, layers, seed):
    model = make_model(seed, stack=stack, layers=layers)
    g = torch.Generator().manual_seed(seed)
    T = 97
    x = torch.randn(2, T, 80, generator=g) * 3 - 6
    whole, lengths = model(x, torch.tensor([T, T]))
    assert lengths.tolist() == [T // stack] * 2
    state, outs, i = None, [], 0
    sizes = torch.randint(0, 12, (100,), generator=g).tolist()
    for n in sizes:
        if i >= T:
            break
        out, state = model.infer(x[:, i : i + n], state)
        outs.append(out)
        i += n
    chunked = torch.cat(outs, dim=1)
    assert chunked.shape == whole.shape
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-5)


def test_log_probs_normalised():
    model = make_model()
    lp, _ = model(torch.randn(1, 30, 80), torch.tensor([30]))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(1, 10))


def test_padding_does_not_change_valid_steps():
    model = make_model()
    x = torch.randn(1, 30, 80)
    a, _ = model(x, torch.tensor([30]))
    padded = torch.cat([x, torch.zeros(1, 12, 80)], dim=1)
    b, n = model(padded, torch.tensor([30]))
    torch.testing.assert_close(b[:, : int(n)], a)


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"layers": -1}, {"stack": 1.5}, {"dropout": 1.0}])
def test_bad_dims(bad):
    with pytest.raises(ValueError):
        ModelDims(**bad)


def test_statistics_are_buffers():
    names = {n for n, _ in CTCModel().named_buffers()}
    assert names == {"feature_mean", "feature_std"}
