"""The training loop as a user runs it: resume after kill -9, DDP with gloo, GPU when present."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT
from tests.test_training import _tiny_corpus

# The repository first, then whatever PYTHONPATH already held (packages installed with --target).
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])), OMP_NUM_THREADS="1")


def _fit_args(manifest, run_dir, *extra):
    return ["fit", "--train", str(manifest), "--run-dir", str(run_dir), "--hidden", "32", "--layers", "1",
            "--max-steps", "40", "--warmup-steps", "5", "--lr", "3e-3", "--batch-frames", "1200", "--log-every", "1",
            "--checkpoint-every", "10", "--eval-every", "100000", "--device", "cpu", *extra]


def _losses(run_dir):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r}


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    manifest = _tiny_corpus(tmp_path)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    args = lambda run: _fit_args(manifest, run, "--max-steps", "400")  # noqa: E731 - long enough to be killed mid-run
    subprocess.run([sys.executable, "-m", "training", *args(straight)], env=ENV, check=True, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "training", *args(killed)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not (killed / "metrics.jsonl").exists() or max(_losses(killed), default=0) < 22):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoint_step = torch.load(killed / "last.pt", weights_only=False)["step"]
    assert checkpoint_step % 10 == 0 and 10 <= checkpoint_step < 400, checkpoint_step
    subprocess.run([sys.executable, "-m", "training", *args(killed)], env=ENV, check=True, capture_output=True)
    a, b = _losses(straight), _losses(killed)
    assert max(b) == 400
    for step in range(checkpoint_step + 1, 401):
        assert b[step] == pytest.approx(a[step], rel=1e-5, abs=1e-6), step


@pytest.mark.slow
def test_two_process_gloo_ddp(tmp_path):
    manifest = _tiny_corpus(tmp_path)
    run_dir = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "training"]
    p = subprocess.run(torchrun + _fit_args(manifest, run_dir, "--max-steps", "20", "--batch-frames", "150"), env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    state = torch.load(run_dir / "last.pt", weights_only=False)
    assert state["step"] == 20 and len(state["rng"]) == 2
    losses = _losses(run_dir)
    assert losses[20] < losses[1]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_training_loop_on_gpu(tmp_path, compile):
    from training.config import TrainConfig
    from training.train import fit

    manifest = _tiny_corpus(tmp_path)
    config = TrainConfig(train=[str(manifest)], run_dir=str(tmp_path / "gpu"), hidden=32, layers=1, max_steps=30, warmup_steps=5,
                         lr=3e-3, batch_frames=1200, device="cuda", eval_every=100000, log_every=1, compile=compile)
    fit(config)
    state = torch.load(tmp_path / "gpu" / "last.pt", weights_only=False)
    assert state["step"] == 30
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    losses = _losses(tmp_path / "gpu")
    assert losses[30] < losses[1]
