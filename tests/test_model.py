import pytest
import torch

from livespeech.model import CTCModel, ModelDims
from tests.conftest import make_model


@pytest.mark.parametrize("stack, layers, frontend, head_steps", [(1, 2, "stack", 0), (3, 2, "stack", 0), (4, 2, "stack", 0),
                                                                 (3, 3, "stack", 0), (4, 5, "stack", 0), (4, 2, "conv", 0),
                                                                 (4, 4, "conv", 0), (3, 2, "stack", 1), (3, 2, "stack", 4),
                                                                 (4, 2, "conv", 6)])
@pytest.mark.parametrize("seed", range(3))
def test_chunked_infer_equals_forward(stack, layers, frontend, head_steps, seed):
    model = make_model(seed, stack=stack, layers=layers, frontend=frontend, channels=8, head_steps=head_steps)
    if model.head is not None:
        torch.nn.init.normal_(model.head.outer.weight, std=0.3)  # a trained head: not the zero start
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


@pytest.mark.parametrize("frontend, stack, head_steps", [("stack", 3, 0), ("conv", 4, 0), ("stack", 3, 4)])
def test_padding_does_not_change_valid_steps(frontend, stack, head_steps):
    model = make_model(frontend=frontend, stack=stack, channels=8, head_steps=head_steps)
    x = torch.randn(1, 30, 80)
    a, _ = model(x, torch.tensor([30]))
    padded = torch.cat([x, torch.zeros(1, 12, 80)], dim=1)
    b, n = model(padded, torch.tensor([30]))
    torch.testing.assert_close(b[:, : int(n)], a)


@pytest.mark.parametrize("bad", [{"hidden": 0}, {"layers": -1}, {"stack": 1.5}, {"dropout": 1.0}, {"frontend": "transformer"},
                                 {"frontend": "conv", "stack": 3}, {"frontend": "conv", "stack": 4, "channels": 0},
                                 {"head_steps": -1}, {"head_steps": 33}, {"head_steps": 2.0}, {"head_steps": True}])
def test_bad_dims(bad):
    with pytest.raises(ValueError):
        ModelDims(**bad)


def test_statistics_are_buffers():
    names = {n for n, _ in CTCModel().named_buffers()}
    assert names == {"feature_mean", "feature_std"}


def test_conv_front_end_is_causal():
    """A step of the conv front end reads its own 4 frames and the 3 before them, never a later one."""
    model = make_model(frontend="conv", stack=4, channels=8)
    x = torch.randn(1, 40, 80) * 3 - 6
    a, _ = model(x, torch.tensor([40]))
    later = x.clone()
    later[:, 24:] += torch.randn(1, 16, 80)  # changes frames 24-39: steps 0-5 (frames 0-23) must not move
    b, _ = model(later, torch.tensor([40]))
    torch.testing.assert_close(b[:, :6], a[:, :6])
    assert not torch.allclose(b[:, 6], a[:, 6])
    earlier = x.clone()
    earlier[:, 17] += 5.0  # step 4's own frames are 16-19; step 5 reads 17-23 (4s - 3 ... 4s + 3)
    c, _ = model(earlier, torch.tensor([40]))
    torch.testing.assert_close(c[:, :4], a[:, :4])
    assert not torch.allclose(c[:, 4], a[:, 4]) and not torch.allclose(c[:, 5], a[:, 5])


@pytest.mark.parametrize("dims", [ModelDims(), ModelDims(stack=4, hidden=64, layers=4, frontend="conv", channels=16),
                                  ModelDims(hidden=48, layers=2, head_steps=4)])
def test_parameter_count_matches_the_built_model(dims):
    model = CTCModel(dims)
    assert dims.parameter_count() == sum(t.numel() for t in model.state_dict().values())


def test_conv_front_end_starts_with_the_scale_of_its_input():
    """He initialisation: normalised log-mel in, convolution outputs of about unit mean
    square out (before the layer norm, which hides their scale)."""
    torch.manual_seed(0)
    model = CTCModel(ModelDims(stack=4, hidden=64, layers=1, frontend="conv", channels=16))
    outputs = []
    model.frontend.conv2.register_forward_hook(lambda _module, _inputs, out: outputs.append(out))
    x = torch.randn(2, 400, 80)
    steps = model._steps(x.new_zeros(2, model.context_frames, 80), x)
    assert 0.25 < torch.relu(outputs[0]).pow(2).mean().item() < 4.0  # PyTorch's default initialisation: about 0.03
    torch.testing.assert_close(steps.mean(-1), torch.zeros(2, 100), atol=1e-5, rtol=0)  # layer-normalised


def test_context_head_reads_its_steps_and_no_later_one():
    """With K = 3, output step s reads the top LSTM layer's steps s - 2 ... s: a change
    of the head's input at step 5 moves output steps 5-7 only."""
    model = make_model(head_steps=3)
    torch.nn.init.normal_(model.head.outer.weight, std=0.3)
    hidden = torch.randn(1, 10, 32)
    empty = model._empty_history(hidden, 1)
    a, history = model.head(empty, hidden)
    moved = hidden.clone()
    moved[:, 5] += 1.0
    b, _ = model.head(empty, moved)
    changed = (a - b).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [False] * 5 + [True] * 3 + [False] * 2
    assert torch.equal(history, hidden[:, -2:])
