"""Training configuration: one dataclass, filled from defaults, a TOML file and
command-line flags (in that order), and stored in every checkpoint."""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from livespeech.model import ModelDims


@dataclass
class TrainConfig:
    """Everything a training run needs; ``--help`` lists each field with its default."""

    # data: corpora as KIND:PATH or paths (see training.data.read_corpus), each may end in *N to repeat it N times
    train: list[str] = field(default_factory=list)
    # corpora heard N times (CORPUS*N), each copy differently augmented: copy 1 as recorded, the others at speed
    # 0.9 / 1.1 / 1.0 in turn with reverberation, telephone band, noise and gain (training.data.AugmentedCopy)
    train_augmented: list[str] = field(default_factory=list)
    dev: list[str] = field(default_factory=list)
    strict: bool = False  # refuse corpora with unreadable audio (default: leave those utterances out, naming them)
    run_dir: str = "runs/default"  # checkpoints, feature cache, metrics.jsonl
    cache_dir: str = ""  # feature cache; defaults to RUN_DIR/cache
    # model
    stack: int = 3  # input frames per LSTM step (the conv front end takes 4)
    frontend: str = field(default="stack", metadata={
        "choices": ("stack", "conv"), "help": "stack: frames side by side; conv: two causal 3x3 convolutions of stride 2 (--stack 4)"})
    conv_channels: int = 32  # channels of the conv front end
    hidden: int = 320
    layers: int = 3
    dropout: float = 0.1
    # a residual feed-forward layer over the last K LSTM outputs (livespeech.model.ContextHead); 0: none
    head_steps: int = 0
    init_from: str = field(default="", metadata={"help": "start from a model folder, a run folder (its last.pt) or a checkpoint (fine-tuning)"})
    # optimisation
    lr: float = 1.5e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 500
    max_steps: int = 20_000
    decay_fraction: float = 0.3  # the last fraction of steps decays the learning rate (cosine) to lr_min
    lr_min: float = 5e-5
    batch_frames: int = 6000  # frames per batch, padding included (6000 = 60 s)
    grad_clip: float = 5.0
    # SortaGrad: the first epoch from the shortest batch to the longest (helps a new model leave CTC's all-blank
    # plateau); None: on when training from scratch, off when fine-tuning (init_from), where it would feed a
    # trained model one corpus of short clips after another for a whole epoch
    sortagrad: bool | None = field(default=None, metadata={"help": "on when training from scratch, off with --init-from"})
    freq_warp: float = 0.0  # vocal tract length perturbation of log-mel: largest relative warp (e.g. 0.15; 0 off)
    # SpecAugment (Park et al., 2019)
    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_fraction: float = 0.05
    # low-level noise under and before each utterance, in the log-mel domain (training.augment.NoiseFloor)
    p_noise_floor: float = 0.5  # probability per utterance (0 off)
    noise_floor_db_min: float = -90.0  # noise RMS range, dBFS
    noise_floor_db_max: float = -45.0
    max_lead_in_s: float = 1.0  # longest noise-only stretch before the speech, seconds
    max_tail_s: float = 0.3  # and after it
    # a share of the examples joins two utterances of one speaker with a pause between them (training.data.TrainingSet),
    # as a recognizer that keeps the model's state across pauses hears them (0 off)
    join_fraction: float = 0.0
    join_gap_min_s: float = 0.2  # shortest and longest pause, seconds
    join_gap_max_s: float = 2.0
    # on-the-fly waveform augmentation (training.augment.AugmentConfig); off: cached features only
    augment: bool = False
    p_speed: float = 0.5
    p_reverb: float = 0.2
    p_telephone: float = 0.2
    p_noise: float = 0.3
    p_gain: float = 0.5
    noise_dir: str = ""  # a folder of noise recordings (default: synthetic coloured noise)
    workers: int = 0  # DataLoader worker processes
    # logistics
    seed: int = 1337
    device: str = "auto"  # auto, cpu, cuda
    compile: bool = False  # torch.compile on CUDA
    threads: int = 0  # CPU threads (0: torch's default)
    eval_every: int = 1000
    log_every: int = 50
    checkpoint_minutes: float = 5.0
    checkpoint_every: int = 0  # also checkpoint every N steps (0: by time only)
    snapshot_every: int = 0  # keep the weights every N steps in RUN_DIR/snapshots/ (for export --average; 0: off)

    def dims(self, vocab_size: int, n_mels: int) -> ModelDims:
        """The model dimensions of this run for a vocabulary and feature size."""
        return ModelDims(n_mels=n_mels, stack=self.stack, hidden=self.hidden, layers=self.layers, vocab_size=vocab_size,
                         dropout=self.dropout, frontend=self.frontend, channels=self.conv_channels,
                         head_steps=self.head_steps)

    def first_epoch_sorted(self) -> bool:
        """Whether the first epoch goes from the shortest batch to the longest (``sortagrad``;
        by default only for a model trained from scratch)."""
        return self.sortagrad if self.sortagrad is not None else not self.init_from

    def augmentation(self):
        """The :class:`training.augment.AugmentConfig` of this run."""
        from training.augment import AugmentConfig

        return AugmentConfig(p_speed=self.p_speed, p_reverb=self.p_reverb, p_telephone=self.p_telephone,
                             p_noise=self.p_noise, p_gain=self.p_gain)

    def to_dict(self) -> dict:
        """The options as plain values (stored in every checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        """A config from stored or TOML values; missing options keep their defaults.

        Raises:
            ValueError: an unknown option.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training option(s): {sorted(unknown)}")
        return cls(**data)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config FILE.toml`` and one ``--FIELD`` flag per config field."""
    parser.add_argument("--config", type=Path, help="TOML file with training options (flags override it)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()
        if f.type in ("bool", bool, "bool | None"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"(default {f.metadata.get('help', default)})")
        elif f.type in ("list[str]",):
            parser.add_argument(flag, nargs="+", default=None, metavar="CORPUS", help="corpora: KIND:PATH or PATH, optional *N repeat")
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            help_text = f"{f.metadata['help']} " if "help" in f.metadata else ""
            parser.add_argument(flag, type=kind, default=None, choices=f.metadata.get("choices"), help=f"{help_text}(default {default!r})")


def from_arguments(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the TOML file, then the flags that were given.

    Raises:
        ValueError: an unreadable TOML file or unknown option in it.
    """
    data: dict = {}
    if getattr(args, "config", None):
        try:
            data.update(tomllib.loads(Path(args.config).read_text(encoding="utf-8")))
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ValueError(f"{args.config}: {error}") from None
    for f in fields(TrainConfig):
        value = getattr(args, f.name, None)
        if value is not None:
            data[f.name] = value
    return TrainConfig.from_dict(data)
