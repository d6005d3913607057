"""Grow a trained model wider without changing what it computes (function-preserving
widening, after Net2WiderNet: Chen, Goodfellow & Shlens, 2016, "Net2Net").

A model of ``hidden`` H_old units per LSTM layer becomes one of H_new > H_old units:

- every old unit keeps its weights and biases, and reads only the old units of its own
  and the previous layer (its weights from the new units are zero);
- the new units start with PyTorch's default initialisation, reading everything;
- nothing reads the new units at first: the next layer's and the output layer's weights
  from them are zero.

So the wider model's log-probabilities equal the narrow model's exactly at the start,
and training grows the new units in: the zero read-out weights get gradients at once
(the new units' outputs are not zero), and the new units' own weights from the next step.
Unlike Net2Net's unit copying, no noise is needed to break symmetry.

A model can also be given a context head (:func:`add_head`,
:class:`livespeech.model.ContextHead`) whose output projection starts at zero, so it too
starts computing what the model did without it.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from livespeech.model import CausalConvSubsampling, CTCModel, ModelDims

GATES = 4  # PyTorch's LSTM stacks the input, forget, cell and output gates in this order


def can_widen(old: ModelDims, new: ModelDims) -> bool:
    """True when ``new`` differs from ``old`` only by more ``hidden`` units (dropout aside)
    and neither has a context head."""
    same = all(getattr(old, k) == getattr(new, k) for k in ("n_mels", "stack", "layers", "vocab_size", "frontend", "channels"))
    return same and new.hidden > old.hidden and old.head_steps == new.head_steps == 0


def can_add_head(old: ModelDims, new: ModelDims) -> bool:
    """True when ``new`` is ``old`` with a context head added (dropout aside)."""
    return old.head_steps == 0 and new.head_steps > 0 and replace(new, head_steps=0, dropout=old.dropout) == old


def add_head(state: dict[str, torch.Tensor], new: ModelDims, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of ``state``'s model with a context head of ``new.head_steps`` steps
    that computes what the model did without it: the head's layer norm and inner layer
    start with PyTorch's default initialisation (from ``seed``), its outer layer at zero.

    Args:
        state: a :class:`CTCModel` state dict without a head.
        new: its dims with ``head_steps`` > 0.
    Returns:
        A state dict for ``CTCModel(new)``.
    Raises:
        ValueError: ``new`` is not ``state``'s model with a head added.
    """
    old = dims_of_state(state, new.dropout)
    if not can_add_head(old, new):
        raise ValueError(f"can only add a context head to a model of the same sizes without one: {old} -> {new}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        headed = CTCModel(new).state_dict()
    headed.update({key: value.clone() for key, value in state.items()})
    return headed


def _gate_rows(H_old: int, H_new: int) -> torch.Tensor:
    """Row indices, in the wide layer's (4 H_new) gate stack, of the old units' rows."""
    return torch.cat([torch.arange(g * H_new, g * H_new + H_old) for g in range(GATES)])


def widen_state(state: dict[str, torch.Tensor], old: ModelDims, new: ModelDims, seed: int = 0) -> dict[str, torch.Tensor]:
    """The state dict of a ``new``-sized model computing what ``state`` (an ``old`` model) does.

    Args:
        state: a :class:`CTCModel` state dict of dims ``old``.
        old, new: the two sizes; ``can_widen(old, new)`` must hold.
        seed: seed of the new units' initial weights (reproducible growth).
    Returns:
        A state dict for ``CTCModel(new)``.
    Raises:
        ValueError: the sizes differ in anything but a larger ``hidden``.
    """
    if not can_widen(old, new):
        raise ValueError(f"can only widen a model's hidden units (same n_mels, front end, layers, vocabulary): {old} -> {new}")
    with torch.random.fork_rng():  # the caller's random state is left as it was
        torch.manual_seed(seed)
        wide = CTCModel(new).state_dict()
    Ho, Hn = old.hidden, new.hidden
    rows = _gate_rows(Ho, Hn)
    for layer in range(new.layers):
        for kind in ("ih", "hh"):
            weight, bias = f"lstm.weight_{kind}_l{layer}", f"lstm.bias_{kind}_l{layer}"
            reads_old = state[weight].shape[1]  # the front end's features, or H_old
            wide[weight][rows] = 0.0  # old units: nothing from the new units ...
            wide[weight][rows, :reads_old] = state[weight]  # ... and their own weights from the old ones
            wide[bias][rows] = state[bias]
    wide["output.weight"].zero_()
    wide["output.weight"][:, :Ho] = state["output.weight"]
    wide["output.bias"] = state["output.bias"].clone()
    for key in (k for k in state if k.startswith("frontend.")):
        wide[key] = state[key].clone()  # the front end does not change
    wide["feature_mean"] = state["feature_mean"].clone()
    wide["feature_std"] = state["feature_std"].clone()
    return wide


def dims_of_state(state: dict[str, torch.Tensor], dropout: float = 0.1) -> ModelDims:
    """The :class:`ModelDims` a :class:`CTCModel` state dict was built with, read off its shapes."""
    n_mels = state["feature_mean"].shape[0]
    conv = "frontend.conv1.weight" in state
    return ModelDims(
        n_mels=n_mels,
        stack=CausalConvSubsampling.STRIDE if conv else state["lstm.weight_ih_l0"].shape[1] // n_mels,
        hidden=state["lstm.weight_hh_l0"].shape[1],
        layers=sum(1 for k in state if k.startswith("lstm.weight_ih_l")),
        vocab_size=state["output.weight"].shape[0],
        dropout=dropout,
        frontend="conv" if conv else "stack",
        channels=state["frontend.conv1.weight"].shape[0] if conv else ModelDims.channels,
        head_steps=state["head.inner.weight"].shape[1] // state["head.inner.weight"].shape[0] if "head.inner.weight" in state else 0,
    )
