"""Progress and metrics of a training run: a rich progress bar (loss, learning rate,
utterances per second, ETA) when stderr is a terminal, JSON lines in
``RUN_DIR/metrics.jsonl`` always, and TensorBoard event files when the
``tensorboard`` package is installed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


class Reporter:
    """Receives training events from rank 0 and writes them everywhere they belong.

    Args:
        run_dir: the run folder (metrics.jsonl, tensorboard/).
        total_steps: steps of the whole run, for the progress bar's ETA.
        start_step: the step the run starts or resumes at.
        log: a function for text lines when there is no terminal (default: stderr).
    """

    def __init__(self, run_dir: Path, total_steps: int, start_step: int = 0, log=None, enabled: bool = True):
        self.enabled = enabled
        self.metrics = Path(run_dir) / "metrics.jsonl"
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.t0, self.start_step = time.time(), start_step
        self.frames = self.utterances = 0
        self.bar = self.task = self.tensorboard = None
        if not enabled:
            return
        self._truncate(start_step)
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task("steps", total=total_steps, completed=start_step, info="")
            self.bar.start()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(Path(run_dir) / "tensorboard"))
        except ImportError:
            pass

    def _truncate(self, start_step: int) -> None:
        """Drop the rows past ``start_step``: a resumed run repeats the steps between its
        last checkpoint and the interruption, and must not log them twice."""
        if not self.metrics.exists():
            return
        lines = self.metrics.read_text(encoding="utf-8").splitlines()
        kept = []
        for line in lines:
            try:
                if json.loads(line).get("step", 0) > start_step:
                    continue
            except json.JSONDecodeError:
                continue  # a line cut short by the interruption
            kept.append(line)
        if len(kept) != len(lines):
            from livespeech.output import write_atomic

            write_atomic(self.metrics, "".join(line + "\n" for line in kept), force=True)

    def step(self, step: int, loss: float, lr: float, frames: int, utterances: int, frame_seconds: float) -> dict:
        """Record one optimiser step; returns the running throughput figures."""
        self.frames += frames
        self.utterances += utterances
        elapsed = max(time.time() - self.t0, 1e-9)
        row = {"step": step, "loss": round(loss, 4), "lr": lr, "utt_per_s": round(self.utterances / elapsed, 1),
               "audio_s_per_s": round(self.frames * frame_seconds / elapsed, 1)}
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=f"loss {loss:.3f}  lr {lr:.2e}  {row['utt_per_s']:.0f} utt/s")
        if self.tensorboard is not None:
            self.tensorboard.add_scalar("train/loss", loss, step)
            self.tensorboard.add_scalar("train/lr", lr, step)
        return row

    def write(self, row: dict, echo: bool = True) -> None:
        """Append a JSON line to metrics.jsonl (and print it when there is no progress bar)."""
        if not self.enabled:
            return
        with open(self.metrics, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if echo and self.bar is None:
            self.log(json.dumps(row))
        if self.tensorboard is not None and "eval" in row:
            for name, result in row["eval"].items():
                self.tensorboard.add_scalar(f"{name}/cer", result["cer"], row["step"])

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        if self.tensorboard is not None:
            self.tensorboard.close()
