"""Unidirectional LSTM-CTC acoustic model (Graves et al., 2006; Sak et al., 2015).

log-mel (100 frames/s) -> global mean/variance normalisation -> front end -> LSTM stack
-> [context head] -> linear -> log-softmax over the vocabulary, blank = 0.

Two front ends turn ``stack`` input frames into one LSTM step:

- ``stack``: the frames side by side (causal striding);
- ``conv``: two causal 3 x 3 convolutions with stride 2 in time and frequency, a ReLU
  after each and a layer norm (:class:`CausalConvSubsampling`), ``stack`` = 4: a 40 ms
  step that reads its own four frames and the three before them.

The optional context head (``head_steps`` K > 0, :class:`ContextHead`) is a residual
feed-forward layer over the last K outputs of the LSTM stack, so each step's output reads
the top layer's current output and the K - 1 before it directly.

Shape legend: B batch, T input frames, S = T // stack output steps, F = n_mels,
H hidden units, V vocabulary size, C convolution channels, K head steps.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn
from torch.nn import functional

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
        frontend: ``stack`` (frames side by side, default) or ``conv``
            (:class:`CausalConvSubsampling`, which needs ``stack`` 4).
        channels: convolution channels of the ``conv`` front end (default 32).
        head_steps: LSTM outputs read by the :class:`ContextHead` (its current step and
            the ``head_steps - 1`` before it); 0 (default): no head, the output layer
            reads the top LSTM layer.
    """

    n_mels: int = 80
    stack: int = 3
    hidden: int = 320
    layers: int = 3
    vocab_size: int = 29
    dropout: float = 0.1
    frontend: str = "stack"
    channels: int = 32
    head_steps: int = 0

    # Largest sizes accepted (a config.json is untrusted input; far above any streaming model).
    LIMITS = {"n_mels": 512, "stack": 16, "hidden": 4096, "layers": 16, "vocab_size": 4096, "channels": 512}
    HEAD_LIMIT = 32
    FRONTENDS = ("stack", "conv")

    def __post_init__(self) -> None:
        for name, high in self.LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= high:
                raise ValueError(f"model dimension {name} must be an integer in [1, {high}], got {value!r}")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.head_steps, int) or isinstance(self.head_steps, bool) or not 0 <= self.head_steps <= self.HEAD_LIMIT:
            raise ValueError(f"head_steps must be an integer in [0, {self.HEAD_LIMIT}], got {self.head_steps!r}")
        if self.frontend not in self.FRONTENDS:
            raise ValueError(f"front end must be one of {', '.join(self.FRONTENDS)}, got {self.frontend!r}")
        if self.frontend == "conv" and self.stack != CausalConvSubsampling.STRIDE:
            raise ValueError(f"the conv front end takes {CausalConvSubsampling.STRIDE} frames per step, not stack {self.stack}")

    @property
    def lstm_input_size(self) -> int:
        """Features per step into the first LSTM layer: n_mels * stack, or the conv front
        end's C * F'' (F'' the bands left after two stride-2 convolutions)."""
        if self.frontend == "conv":
            return self.channels * CausalConvSubsampling.bands_out(self.n_mels)
        return self.n_mels * self.stack

    def parameter_count(self) -> int:
        """Numbers in the model's state dict, computed without building it: per LSTM layer
        4H(I + H) weights and 8H biases (I = :attr:`lstm_input_size` for the first layer,
        H after), the output layer's H * V + V, the conv front end's 9C + C + 9C^2 + C
        convolution weights and biases and 2 C F'' layer-norm weights and biases, the
        context head's 2 K H layer-norm and K H^2 + H + H^2 + H linear weights and biases,
        and the 2 * n_mels normalisation statistics."""
        H = self.hidden
        lstm = sum(4 * H * ((self.lstm_input_size if layer == 0 else H) + H) + 8 * H for layer in range(self.layers))
        C = self.channels
        conv = 9 * C + C + 9 * C * C + C + 2 * self.lstm_input_size if self.frontend == "conv" else 0
        K = self.head_steps
        head = 2 * K * H + K * H * H + H + H * H + H if K else 0
        return lstm + conv + head + H * self.vocab_size + self.vocab_size + 2 * self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StreamState:
    """State carried between :meth:`CTCModel.infer` calls.

    Attributes:
        leftover: raw (unnormalised) input frames after the last step, shape (B, r, F), r < stack.
        h, c: LSTM hidden and cell state, each shape (layers, B, H).
        context: normalised frames just before ``leftover`` that the next step also reads,
            shape (B, k, F): k = :attr:`CausalConvSubsampling.CONTEXT` for the conv front end
            (zeros at the start of a stream), 0 for stacking.
        history: the top LSTM layer's last outputs, which the context head's next steps
            also read, shape (B, K - 1, H) (zeros at the start of a stream; (B, 0, H)
            without a head).
    """

    leftover: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    context: torch.Tensor
    history: torch.Tensor


class CausalConvSubsampling(nn.Module):
    """Four log-mel frames into one step with two 3 x 3 convolutions of stride 2 (in time
    and frequency), each followed by a ReLU, causal in time: a convolution's output reads
    the last frame of its own stride and the two before it, so step s reads input frames
    4s - 3 ... 4s + 3 and nothing later. Frequency is zero-padded by one band each side.
    A layer norm over each step's C * F'' features (Ba et al., 2016) centres the ReLU
    outputs for the LSTM: on FSDD (a 2 x 128 LSTM, 400 steps, two seeds) it brought the
    training loss from 1.14 and 1.35 to 0.97 and 1.14.

    The 2-D convolutional subsampling of end-to-end recognizers (e.g. ESPnet's
    ``Conv2dSubsampling``; Dong et al., 2018, "Speech-Transformer"), made causal so that
    it streams: a stream starts with :attr:`CONTEXT` zero (normalised) frames of context.

    Args:
        n_mels: input bands F.
        channels: channels C of both convolutions.
    """

    STRIDE = 4  # input frames per output step
    CONTEXT = 3  # input frames before a step's own that it reads

    def __init__(self, n_mels: int, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(1, channels, kernel_size=3, stride=2, padding=(0, 1))
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=(0, 1))
        self.norm = nn.LayerNorm(channels * self.bands_out(n_mels))
        for conv in (self.conv1, self.conv2):
            # He et al., 2015: keeps the mean square of ReLU outputs near the input's (PyTorch's default
            # leaves a tenth of it, which slows a new model's first layer)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    @staticmethod
    def bands_out(n_mels: int) -> int:
        """Bands left after the two convolutions: each maps F to (F - 1) // 2 + 1."""
        return ((n_mels - 1) // 2) // 2 + 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Steps of normalised frames that carry their context.

        Args:
            frames: shape (B, CONTEXT + 4 S, F): the context, then the steps' own frames.
        Returns:
            features per step, shape (B, S, C * F''), channel-major, layer-normalised.
        """
        y = functional.relu(self.conv1(frames.unsqueeze(1)))  # (B, C, 2 S + 1, F')
        z = functional.relu(self.conv2(y))  # (B, C, S, F'')
        return self.norm(z.permute(0, 2, 1, 3).flatten(2))


class ContextHead(nn.Module):
    """A residual feed-forward layer over the last K outputs of the LSTM stack:

        y_s = h_s + W2 relu(W1 LayerNorm([h_{s-K+1}; ...; h_s]) + b1) + b2

    Fully connected layers after the LSTMs gave CLDNN 4-6 % relative (Sainath et al.,
    2015, "Convolutional, long short-term memory, fully connected deep neural networks");
    here the layer also reads K - 1 earlier steps, as a causal TDNN layer does (Peddinti
    et al., 2015), so the output need not come through the LSTM's memory alone. W2 and
    b2 start at zero: a model given a head computes what it did without one
    (:func:`training.grow.add_head`), and W2 learns from the first step because the
    ReLU's outputs are not zero.

    Args:
        hidden: units H of the top LSTM layer (and of the layer's hidden units).
        steps: K, the steps read (the current one and K - 1 before it).
    """

    def __init__(self, hidden: int, steps: int):
        super().__init__()
        self.steps = steps
        self.norm = nn.LayerNorm(steps * hidden)
        self.inner = nn.Linear(steps * hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, history: torch.Tensor, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The head's outputs for new steps, and the history the next call needs.

        Args:
            history: the K - 1 top-layer outputs before ``hidden``, shape (B, K - 1, H).
            hidden: the top layer's outputs of S new steps, shape (B, S, H).
        Returns:
            (outputs, history): shape (B, S, H), and the last K - 1 top-layer outputs,
            shape (B, K - 1, H).
        """
        S = hidden.shape[1]
        if S == 0:
            return hidden, history
        full = torch.cat([history, hidden], dim=1)  # (B, K - 1 + S, H)
        windows = full.unfold(1, self.steps, 1)  # (B, S, H, K): step s reads full[s : s + K]
        windows = windows.transpose(2, 3).flatten(2)  # (B, S, K H), oldest step first
        y = hidden + self.outer(functional.relu(self.inner(self.norm(windows))))
        return y, full[:, S:]


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
        self.frontend = CausalConvSubsampling(dims.n_mels, dims.channels) if dims.frontend == "conv" else None
        self.lstm = nn.LSTM(
            input_size=dims.lstm_input_size,
            hidden_size=dims.hidden,
            num_layers=dims.layers,
            batch_first=True,
            dropout=dims.dropout if dims.layers > 1 else 0.0,
        )
        self.head = ContextHead(dims.hidden, dims.head_steps) if dims.head_steps else None
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

    @property
    def context_frames(self) -> int:
        """Input frames before its own that a step reads (0 for stacking)."""
        return CausalConvSubsampling.CONTEXT if self.frontend is not None else 0

    def _steps(self, context: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """LSTM inputs (B, S, I) of normalised frames (B, T, F), S = T // stack, after
        ``context`` (B, context_frames, F)."""
        B, T, F = features.shape
        S = T // self.dims.stack
        if self.frontend is not None:
            return self.frontend(torch.cat([context, features[:, : S * self.dims.stack]], dim=1))
        return features[:, : S * self.dims.stack].reshape(B, S, F * self.dims.stack)

    def _logits(self, stacked: torch.Tensor, hc, history: torch.Tensor):
        """Log-probabilities (B, S, V) of LSTM inputs (B, S, I), with the LSTM state
        ``hc`` (None: zeros) and the head's ``history`` (B, K - 1, H); returns them with
        the new LSTM state and history."""
        hidden, hc = self.lstm(stacked, hc)  # (B, S, H)
        if self.head is not None:
            hidden, history = self.head(history, hidden)
        return torch.log_softmax(self.output(hidden), dim=-1), hc, history  # (B, S, V)

    def _empty_history(self, like: torch.Tensor, batch_size: int) -> torch.Tensor:
        """The head's history at the start of a stream: zeros, shape (B, K - 1, H)."""
        return like.new_zeros(batch_size, max(0, self.dims.head_steps - 1), self.dims.hidden)

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
        steps = self._steps(x.new_zeros(x.shape[0], self.context_frames, x.shape[2]), x)
        log_probs, _, _ = self._logits(steps, None, self._empty_history(x, x.shape[0]))
        return log_probs, torch.div(lengths, self.dims.stack, rounding_mode="floor")

    def initial_state(self, batch_size: int = 1) -> StreamState:
        """A fresh :class:`StreamState` for ``batch_size`` streams."""
        p = self.feature_mean  # a plain tensor also in a quantised model (whose weights are methods)
        zeros = p.new_zeros(self.dims.layers, batch_size, self.dims.hidden)
        context = p.new_zeros(batch_size, self.context_frames, self.dims.n_mels)
        return StreamState(p.new_zeros(batch_size, 0, self.dims.n_mels), zeros, zeros.clone(), context,
                           self._empty_history(p, batch_size))

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
        used = frames.shape[1] // self.dims.stack * self.dims.stack
        if used == 0:
            empty = frames.new_zeros(frames.shape[0], 0, self.dims.vocab_size)
            return empty, replace(state, leftover=frames)
        normalized = self.normalize(frames[:, :used])
        steps = self._steps(state.context, normalized)
        with _without_onednn() if steps.shape[1] <= SHORT_CALL_STEPS else nullcontext():
            log_probs, (h, c), history = self._logits(steps, (state.h, state.c), state.history)
        context = torch.cat([state.context, normalized], dim=1)[:, normalized.shape[1] :] if self.frontend is not None else state.context
        return log_probs, StreamState(frames[:, used:], h, c, context, history)
