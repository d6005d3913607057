"""Training throughput in seconds of audio per second, per model size and device.

Times full optimiser steps (SpecAugment, forward, CTC loss, backward, AdamW) on
batches of random features shaped like real ones (60 s of audio per batch in
utterances of 3 s), after warm-up steps.  CUDA runs in bf16 autocast when present.

    .venv/bin/python bench/train_throughput.py [--steps 20] [--threads 2] [--device cuda] [--batch-utterances 20 120] [--compile]
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext

import torch

from livespeech.model import CTCModel, ModelDims
from machine import cpu_model  # bench/machine.py
from training.config import TrainConfig
from training.train import build_optimizer, train_step

SIZES = [(256, 2), (320, 3), (384, 3), (512, 3)]


def measure(hidden: int, layers: int, device: str, steps: int, B: int = 20, compile: bool = False) -> dict:
    """Seconds per full optimiser step and seconds of audio per second for one model size on ``device``, on random batches of ``B`` 3 s utterances."""
    config = TrainConfig(hidden=hidden, layers=layers)
    model = CTCModel(ModelDims(hidden=hidden, layers=layers)).to(device)
    optimizer = build_optimizer(model, config)
    T, L = 300, 40  # B utterances of 3 s, 40 characters each
    batch = (torch.randn(B, T, 80) - 6, torch.full((B,), T), torch.randint(1, 29, (B, L)), torch.full((B,), L))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else nullcontext()
    trainable = torch.compile(model) if compile else model
    for _ in range(3):
        train_step(model, trainable, optimizer, batch, config, 1e-3, device, autocast)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(model, trainable, optimizer, batch, config, 1e-3, device, autocast)
    if device == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    return {"hidden": hidden, "layers": layers, "parameters": sum(p.numel() for p in model.parameters()), "device": device,
            "batch_s": B * T / 100, "compiled": compile, "step_s": round(elapsed / steps, 4), "audio_s_per_s": round(steps * B * T / 100 / elapsed, 1)}


def main() -> None:
    """Parse the options, measure every size and print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--device", choices=["all", "cpu", "cuda"], default="all", help="all: the CPU and CUDA when present")
    parser.add_argument("--batch-utterances", type=int, nargs="+", default=[20], metavar="B",
                        help="utterances of 3 s per batch (default 20, 60 s of audio; GPUs want more)")
    parser.add_argument("--compile", action="store_true", help="also measure each size under torch.compile")
    parser.add_argument("--sizes", nargs="+", metavar="HxL", help="only these sizes, e.g. 320x3 (default: all of SIZES)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    devices = [d for d in devices if args.device in ("all", d)]
    modes = [False, True] if args.compile else [False]
    sizes = [tuple(int(n) for n in size.split("x")) for size in args.sizes] if args.sizes else SIZES
    rows = [measure(h, l, d, args.steps, b, c) for d in devices for h, l in sizes for b in args.batch_utterances for c in modes]
    print(json.dumps({"machine": cpu_model(), "threads": torch.get_num_threads(),
                      "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "torch": torch.__version__,
                      "results": rows}, indent=2))


if __name__ == "__main__":
    main()
