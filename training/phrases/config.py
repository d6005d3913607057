"""What ``livespeech-train phrases`` needs: the phrase pipeline's own options, and
its fine-tuning options as a :class:`training.config.TrainConfig`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from livespeech.model import ModelDims
from training.config import TrainConfig

# The TrainConfig fields ``livespeech-train phrases`` takes from the command line
# (``--steps`` sets ``max_steps``); the others keep the fine-tuning defaults.
FINE_TUNING_FIELDS = ("max_steps", "lr", "warmup_steps", "batch_frames", "freq_warp", "augment", "threads")


def fine_tuning_defaults() -> TrainConfig:
    """The training options of a phrase model: a short schedule (800 steps, 50 of
    warm-up, the last half decaying) at a peak learning rate of 5e-4, with vocal
    tract length perturbation (``freq_warp`` 0.15, i.e. +-15 %) and checkpoints
    every 2 minutes. Waveform ``augment`` stays off: it makes fine-tuning about 2.3x
    slower, and VTLP alone gives most of its gain on unseen speakers (see
    models/digits/MODEL_CARD.md). The first epoch goes from the shortest batch to the
    longest (``sortagrad``), as when the bundled phrase models were measured: phrase
    clips are of one kind and length, unlike the corpora of ``fit --init-from``."""
    return TrainConfig(max_steps=800, lr=5e-4, warmup_steps=50, decay_fraction=0.5, freq_warp=0.15, checkpoint_minutes=2.0,
                       sortagrad=True)


@dataclass
class PhraseTrainConfig:
    """Everything ``livespeech-train phrases`` needs.

    Args:
        phrases: phrase set, a bundled name or a file.
        name: the model's name (its folder in ``install_dir``).
        base: model to fine-tune (name or folder; default the bundled ``base``).
        recordings: folder-per-phrase recordings (``livespeech record``).
        corpora: extra training corpora (``KIND:PATH``, optional ``*N`` repeat).
        eval: extra labelled evaluation corpora (an utterance whose text is a phrase
            is in-set, any other text out-of-set).
        work_dir: synthesis, training run, reports (default ``runs/phrases-NAME``).
        synth_dir: synthetic corpora, shareable between runs of the same phrase set
            (default ``WORK_DIR/synth``).
        install_dir: where the model folder goes (default the user's model folder).
        takes: synthetic training utterances per phrase (default 60).
        distractors: synthetic out-of-set training utterances (default 400).
        calibration_takes, calibration_distractors: the calibration set (defaults 12, 200).
        eval_takes, eval_distractors: the held-out-voice evaluation set (defaults 10, 150).
        recordings_repeat: times the recordings are repeated in training (default 5).
        max_false_reject: in-set calibration utterances the threshold may reject (default 0.01).
        engines: synthesis engines for random voices (default: every one installed).
        workers: synthesis processes (default 2).
        seed: seed of texts, voices and training (default 1).
        force: replace an installed model of the same name.
        fine_tuning: the training options (default :func:`fine_tuning_defaults`);
            :meth:`train_config` fills in the corpora, run folder, base model, seed and
            what follows from them.
    Raises:
        ValueError: a name that is not a plain folder name, a size that is not
            positive, or ``max_false_reject`` outside [0, 1).
    """

    phrases: str
    name: str
    base: str = "base"
    recordings: list[str] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)
    eval: list[str] = field(default_factory=list)
    work_dir: str = ""
    synth_dir: str = ""
    install_dir: str = ""
    takes: int = 60
    distractors: int = 400
    calibration_takes: int = 12
    calibration_distractors: int = 200
    eval_takes: int = 10
    eval_distractors: int = 150
    recordings_repeat: int = 5
    max_false_reject: float = 0.01
    engines: list[str] = field(default_factory=list)
    workers: int = 2
    seed: int = 1
    force: bool = False
    fine_tuning: TrainConfig = field(default_factory=fine_tuning_defaults)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"--out must be a plain model name (no '/', not starting with '.'), got {self.name!r}")
        sizes = {"takes": self.takes, "calibration_takes": self.calibration_takes, "eval_takes": self.eval_takes,
                 "steps": self.fine_tuning.max_steps, "batch_frames": self.fine_tuning.batch_frames, "workers": self.workers}
        for key, value in sizes.items():
            if value <= 0:
                raise ValueError(f"--{key.replace('_', '-')} must be positive, got {value}")
        if not 0 <= self.max_false_reject < 1:
            raise ValueError(f"--max-false-reject must be in [0, 1), got {self.max_false_reject}")

    @classmethod
    def from_options(cls, phrases: str, name: str, **options) -> PhraseTrainConfig:
        """A config from flat options, as the command line gives them: the
        :data:`FINE_TUNING_FIELDS` change :func:`fine_tuning_defaults`, the others are
        this class's fields.

        Raises:
            TypeError: an unknown option.
            ValueError: a bad value (see the class).
        """
        tuned = {k: options.pop(k) for k in FINE_TUNING_FIELDS if k in options}
        return cls(phrases, name, fine_tuning=replace(fine_tuning_defaults(), **tuned), **options)

    @property
    def work(self) -> Path:
        """The work folder: synthesis, training run, staging and report."""
        return Path(self.work_dir or f"runs/phrases-{self.name}")

    @property
    def synth(self) -> Path:
        """The folder of the synthetic corpora."""
        return Path(self.synth_dir) if self.synth_dir else self.work / "synth"

    def train_config(self, dims: ModelDims, init_from: Path, train: list[str]) -> TrainConfig:
        """The fine-tuning run: :attr:`fine_tuning` on the corpora ``train``
        (``KIND:PATH*N`` specs) in ``WORK_DIR/run``, starting from the model at
        ``init_from`` with its dimensions ``dims``, seeded with :attr:`seed`; the
        learning rate decays to a twentieth of its peak, ten log lines in all, no
        evaluation during the run."""
        steps = self.fine_tuning.max_steps
        return replace(self.fine_tuning, train=list(train), run_dir=str(self.work / "run"), init_from=str(init_from),
                       stack=dims.stack, hidden=dims.hidden, layers=dims.layers, dropout=dims.dropout,
                       frontend=dims.frontend, conv_channels=dims.channels, head_steps=dims.head_steps,
                       lr_min=self.fine_tuning.lr / 20, seed=self.seed, eval_every=10 * steps, log_every=max(1, steps // 10))
