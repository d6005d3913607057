"""Does a 2-process DDP run (gloo, CPU) follow the loss curve of a 1-process run?

Builds a small synthetic corpus (espeak-ng), trains the same model twice for the
same number of steps with the same global batch: once in one process
(``--batch-frames 2B``) and once with torchrun in two (``--batch-frames B`` each),
and compares the smoothed loss curves.  "Within noise" is judged against a third
run: the one-process run again with another seed (other initial weights, batches and
augmentation), whose gap to the first is what chance alone gives.

    .venv/bin/python bench/ddp_curve.py [--steps 300] [--out runs/ddp-curve]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def losses(run_dir: Path) -> dict[int, float]:
    """Training loss per step of a run, from its metrics.jsonl."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


def smooth(curve: dict[int, float], window: int = 20) -> dict[int, float]:
    """A loss curve averaged over the last ``window`` steps at each step."""
    steps = sorted(curve)
    return {s: sum(curve[t] for t in steps[max(0, i - window + 1) : i + 1]) / len(steps[max(0, i - window + 1) : i + 1])
            for i, s in enumerate(steps)}


def main() -> None:
    """Build the corpus, run the three trainings and print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-frames", type=int, default=1500, help="frames per process in the 2-process run")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "ddp-curve")
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    corpus = args.out / "corpus"
    subprocess.run([sys.executable, "-m", "training", "synth", "--out", str(corpus), "--utterances", "600", "--seed", "7",
                    "--workers", "2"], env=env, check=True, stdout=subprocess.DEVNULL)
    common = ["fit", "--train", f"{corpus}/manifest.jsonl", "--hidden", "128", "--layers", "2", "--max-steps", str(args.steps),
              "--warmup-steps", "30", "--log-every", "1", "--eval-every", "1000000", "--cache-dir", str(args.out / "cache")]
    one, reseeded, two = args.out / "one", args.out / "one-reseeded", args.out / "two"
    for run_dir, seed in ((one, 1337), (reseeded, 2024)):
        subprocess.run([sys.executable, "-m", "training", *common, "--run-dir", str(run_dir), "--seed", str(seed),
                        "--batch-frames", str(2 * args.batch_frames)], env=env, check=True, stderr=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training", *common,
                    "--run-dir", str(two), "--batch-frames", str(args.batch_frames)], env=env, check=True, stderr=subprocess.DEVNULL)
    a, r, b = smooth(losses(one)), smooth(losses(reseeded)), smooth(losses(two))
    steps = sorted(set(a) & set(b) & set(r))
    ddp_gap, seed_gap = mean_gap(a, b, steps), mean_gap(a, r, steps)
    checkpoints = {s: {"one_process": round(a[s], 3), "one_process_reseeded": round(r[s], 3), "two_processes": round(b[s], 3)}
                   for s in steps[:: max(1, len(steps) // 10)]}
    print(json.dumps({"steps": len(steps), "mean_abs_gap_ddp": round(ddp_gap, 4), "mean_abs_gap_seed": round(seed_gap, 4),
                      "within_noise": ddp_gap <= 1.5 * seed_gap, "loss_drop_one": round(a[steps[0]] - a[steps[-1]], 3),
                      "curve": checkpoints}, indent=2))


def mean_gap(a: dict[int, float], b: dict[int, float], steps: list[int]) -> float:
    """Mean absolute difference of two smoothed loss curves over ``steps``."""
    return sum(abs(a[s] - b[s]) for s in steps) / len(steps)


if __name__ == "__main__":
    main()
