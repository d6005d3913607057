"""Unidirectional LSTM-CTC acoustic model (Graves et al., 2006; Sak et al., 2015).

log-mel (100 frames/s) -> global mean/variance normalisation -> stacking of
``stack`` consecutive frames (causal striding) -> LSTM stack -> linear -> log-softmax
over the vocabulary, blank = 0.

Shape legend: B batch, T input frames, S = T // stack output steps, F = n_mels,
H hidden units, V vocabulary size.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass

import torch
from torch import nn

SHORT_CALL_STEPS = 16  # streaming calls up to this many steps run the LSTM without oneDNN


@contextmanager
def _without_onednn():
    """Run the LSTM without oneDNN: for a few steps at batch 1 its per-call set-up
    costs more than the arithmetic (measured: 3.1 ms vs 0.75 ms for 3 steps, 3x320)."""
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


@dataclass(frozen=True)
class ModelDims:
    """Sizes of a :class:`CTCModel`; stored in config.json so loading rebuilds the model.

    Args:
        n_mels: input features per frame (default 80).
        stack: frames stacked into one LSTM step (default 3, i.e. 30 ms steps).
        hidden: LSTM units per layer (default 320).
        layers: LSTM layers (default 3).
        vocab_size: output tokens including the blank (default 29).
        dropout: dropout between LSTM layers during training (default 0.1).
    """

    n_mels: int = 80
    stack: int = 3
    hidden: int = 320
    layers: int = 3
    vocab_size: int = 29
    dropout: float = 0.1

    # Largest sizes accepted (a config.json is untrusted input; far above any streaming model).
    LIMITS = {"n_mels": 512, "stack": 16, "hidden": 4096, "layers": 16, "vocab_size": 4096}

    def __post_init__(self) -> None:
        for name, high in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
                raise ValueError(f"model dimension {name} must be an integer in [1, {high}], got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def parameter_count(self) -> int:
        """Numbers in the model's state dict, computed without building it: per LSTM layer
        4H(I + H) weights and 8H biases (I = n_mels * stack for the first layer, H after),
        the output layer's H * V + V, and the 2 * n_mels normalisation statistics."""
        H = self.hidden
        lstm = sum(4 * H * ((self.n_mels * self.stack if layer == 0 else H) + H) + 8 * H for layer in range(self.layers))
        return lstm + H * self.vocab_size + self.vocab_size + 2 * self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StreamState:
    """State carried between :meth:`CTCModel.infer` calls.

    Attributes:
        leftover: raw (unnormalised) input frames not yet stacked, shape (B, r, F), r < stack.
        h, c: LSTM hidden and cell state, each shape (layers, B, H).
    """

    leftover: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor


class CTCModel(nn.Module):
    """Streaming LSTM-CTC model.

    Feature statistics (``feature_mean``, ``feature_std``, shape (F,)) are buffers saved
    with the weights, so the model takes raw log-mel and normalises it with fixed,
    global statistics, which a stream can use from its first frame.
    """

    def __init__(self, dims: ModelDims = ModelDims()):
        super().__init__()
        self.dims = dims
        self.register_buffer("feature_mean", torch.zeros(dims.n_mels))
        self.register_buffer("feature_std", torch.ones(dims.n_mels))
        self.lstm = nn.LSTM(
            input_size=dims.n_mels * dims.stack,
            hidden_size=dims.hidden,
            num_layers=dims.layers,
            batch_first=True,
            dropout=dims.dropout if dims.layers > 1 else 0.0,
        )
        self.output = nn.Linear(dims.hidden, dims.vocab_size)
        self._init_forget_gates()

    def _init_forget_gates(self) -> None:
        """Forget-gate biases start at 1 (Jozefowicz et al., 2015), so early gradients
        flow through time; PyTorch orders the gates input, forget, cell, output."""
        H = self.dims.hidden
        with torch.no_grad():
            for name, bias in self.lstm.named_parameters():
                if name.startswith("bias_ih"):
                    bias[H : 2 * H].fill_(1.0)
                elif name.startswith("bias_hh"):
                    bias[H : 2 * H].fill_(0.0)

    @property
    def frames_per_step(self) -> int:
        """Input frames (10 ms each) per output step."""
        return self.dims.stack

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        """Apply the global mean/variance normalisation, any shape (..., F)."""
        return (features - self.feature_mean) / self.feature_std

    def _stack(self, features: torch.Tensor) -> torch.Tensor:
        B, T, F = features.shape
        S = T // self.dims.stack
        return features[:, : S * self.dims.stack].reshape(B, S, F * self.dims.stack)

    def _logits(self, stacked: torch.Tensor, hc=None):
        hidden, hc = self.lstm(stacked, hc)  # (B, S, H)
        return torch.log_softmax(self.output(hidden), dim=-1), hc  # (B, S, V)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, normalized: bool = False):
        """Whole-utterance forward pass for training and evaluation.

        Args:
            features: log-mel, shape (B, T, F), padded after each utterance's length.
            lengths: valid frames per utterance, shape (B,).
            normalized: True when ``features`` are already normalised (training
                normalises before SpecAugment).
        Returns:
            (log_probs, out_lengths): log-probabilities, shape (B, S, V), and valid
            steps per utterance, shape (B,), ``out_lengths = lengths // stack``.
        """
        x = features if normalized else self.normalize(features)
        log_probs, _ = self._logits(self._stack(x))
        return log_probs, torch.div(lengths, self.dims.stack, rounding_mode="floor")

    def initial_state(self, batch_size: int = 1) -> StreamState:
        """A fresh :class:`StreamState` for ``batch_size`` streams."""
        p = self.feature_mean  # a plain tensor also in a quantised model (whose weights are methods)
        zeros = p.new_zeros(self.dims.layers, batch_size, self.dims.hidden)
        return StreamState(p.new_zeros(batch_size, 0, self.dims.n_mels), zeros, zeros.clone())

    def infer(self, features: torch.Tensor, state: StreamState | None = None):
        """Streaming forward pass over the next frames of each stream.

        Running :meth:`infer` over consecutive chunks, carrying the state, gives the
        log-probabilities of :meth:`forward` on the concatenated frames.

        Args:
            features: the next log-mel frames, shape (B, t, F), any t >= 0.
            state: the state returned by the previous call, or None for a new stream.
        Returns:
            (log_probs, state): log-probabilities of the steps completed by these
            frames, shape (B, s, V), and the new state.
        """
        if state is None:
            state = self.initial_state(features.shape[0])
        frames = torch.cat([state.leftover, features], dim=1)  # (B, r + t, F), raw
        stacked = self._stack(self.normalize(frames))
        used = stacked.shape[1] * self.dims.stack
        if stacked.shape[1] == 0:
            empty = frames.new_zeros(frames.shape[0], 0, self.dims.vocab_size)
            return empty, StreamState(frames, state.h, state.c)
        with _without_onednn() if stacked.shape[1] <= SHORT_CALL_STEPS else nullcontext():
            log_probs, (h, c) = self._logits(stacked, (state.h, state.c))
        return log_probs, StreamState(frames[:, used:], h, c)
