"""The CTC training loop.

One process on CPU or one GPU:

    livespeech-train fit --train corpus/train/manifest.jsonl fsdd:../shared/data/fsdd*3 \\
        --dev corpus/dev/manifest.jsonl --run-dir runs/base --max-steps 20000

Several GPUs or machines (DistributedDataParallel; rank 0 logs, evaluates and saves):

    torchrun --standalone --nproc_per_node 4 -m training fit --train ... --run-dir runs/base

The same command resumes: when ``RUN_DIR/last.pt`` exists the run continues from it
(model, optimizer, step, sampler position and RNG state), so an interrupted run, even
one killed with SIGKILL, loses at most ``checkpoint_minutes`` of work.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from livespeech.atomic import atomic_path
from livespeech.decoding import greedy_text
from livespeech.features import FeatureConfig
from livespeech.model import CTCModel
from livespeech.text import BLANK, Vocabulary
from training.augment import NoiseFloor, frequency_warp, spec_augment
from training.config import TrainConfig
from training.grow import add_head, can_add_head, can_widen, dims_of_state, widen_state
from training.data import (AugmentedCopy, AugmentedTrainingSet, BucketBatchSampler, FeatureCache, TrainingSet, check_training_set,
                           collate, read_corpus)


def parse_corpus_spec(spec: str) -> tuple[str, int]:
    """``PATH*3`` -> (``PATH``, 3); a plain spec repeats once."""
    head, star, count = spec.rpartition("*")
    if star and count.isdigit():
        return head, int(count)
    return spec, 1


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warm-up, constant, then cosine decay to ``lr_min`` over the last
    ``decay_fraction`` of ``max_steps`` (keeps the rate high for most of the run)."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    decay_start = int(config.max_steps * (1 - config.decay_fraction))
    if step < decay_start:
        return config.lr
    progress = min(1.0, (step - decay_start) / max(1, config.max_steps - decay_start))
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1 + math.cos(math.pi * progress))


class Distributed:
    """Rank and world size from the torchrun environment (RANK, LOCAL_RANK, WORLD_SIZE)."""

    def __init__(self, device_kind: str):
        self.enabled = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if self.enabled:
            backend = "nccl" if device_kind == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, flag: bool, device: str = "cpu") -> bool:
        """Rank 0's value of ``flag`` on every rank (so all ranks checkpoint together).

        The tensor lives on the process's ``device``: NCCL broadcasts only CUDA tensors, gloo CPU ones.
        """
        if not self.enabled:
            return flag
        value = torch.tensor([int(flag)], device=device)
        torch.distributed.broadcast(value, src=0)
        return bool(value.item())

    def close(self) -> None:
        if self.enabled:
            torch.distributed.destroy_process_group()


def pick_device(config: TrainConfig) -> str:
    if config.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but no CUDA device is available")
    return config.device


def load_caches(specs: list[str], cache_dir: Path, features: FeatureConfig, log, training: bool = False,
                augmented: bool = False, seed: int = 0, strict: bool = False) -> list[tuple[FeatureCache, int]]:
    """Feature caches of the given corpora, each with its repeat count; with
    ``augmented``, a corpus repeated N times becomes N caches, one per
    :class:`training.data.AugmentedCopy`, each heard once.

    Raises:
        ValueError: ``training`` corpora holding evaluation data (``check_training_set``),
            or unreadable audio (:func:`report_dropped`).
    """
    caches = []
    for spec in specs:
        path, repeat = parse_corpus_spec(spec)
        utterances = read_corpus(path)
        if training:
            check_training_set(utterances, path)
        log(f"features of {path}: {len(utterances)} utterances" + (f", {repeat} augmented copies" if augmented else ""))
        if augmented:
            new = [(FeatureCache(utterances, cache_dir, features, transform=AugmentedCopy(k, seed)), 1) for k in range(repeat)]
        else:
            new = [(FeatureCache(utterances, cache_dir, features), repeat)]
        report_dropped(path, len(utterances), new[0][0].dropped, log, strict)
        caches += new
    return caches


def report_dropped(source: str, total: int, dropped: list[tuple[str, str]], log, strict: bool = False) -> None:
    """Say how many utterances of a corpus were left out for unreadable audio, naming
    the first few; with ``strict``, refuse them.

    Raises:
        ValueError: ``strict`` and some audio could not be read, or none of it could.
    """
    if not dropped:
        return
    examples = "; ".join(f"{audio}: {reason}" for audio, reason in dropped[:3])
    message = f"{source}: {len(dropped)} of {total} utterances left out, their audio could not be read (e.g. {examples})"
    if strict or len(dropped) == total:
        raise ValueError(message)
    log(message)


def global_statistics(caches: list[tuple[FeatureCache, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-band mean and std over all training frames (caches weighted by frame count)."""
    total, mean, square = 0, 0.0, 0.0
    for cache, _ in caches:
        m, s = cache.statistics()
        n = len(cache.frames)
        mean, square, total = mean + m * n, square + (s**2 + m**2) * n, total + n
    mean, square = mean / total, square / total
    return mean, (square - mean**2).clamp_min(1e-8).sqrt()


def evaluate_cer(model: CTCModel, cache: FeatureCache, vocabulary: Vocabulary, device: str, batch_frames: int = 20000) -> dict:
    """Greedy CER and WER (jiwer) of a model on a feature cache."""
    import jiwer

    model.eval()
    hypotheses, references = [], []
    order = sorted(range(len(cache)), key=cache.length)
    sampler = BucketBatchSampler([cache.length(i) for i in order], batch_frames)
    with torch.inference_mode():
        for batch in sampler:
            items = [(cache.features(order[i]), torch.zeros(1, dtype=torch.long)) for i in batch]
            x, lengths, _, _ = collate(items)
            log_probs, out_lengths = model(x.to(device), lengths.to(device))
            hypotheses += greedy_text(log_probs.float().cpu(), out_lengths.cpu(), vocabulary)
            references += [cache.utterances[order[i]].text for i in batch]
    model.train()
    hypotheses = [h if h.strip() else "<empty>" for h in hypotheses]
    return {"cer": jiwer.cer(references, hypotheses), "wer": jiwer.wer(references, hypotheses), "utterances": len(references)}


def save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically (:func:`livespeech.atomic.atomic_path`): a temporary file
    beside it, then a rename over the old checkpoint, which an interrupted save leaves
    intact. Makes the folder if missing.

    Raises:
        OSError: the folder cannot be made or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """A checkpoint written by :func:`save_checkpoint`, loaded with ``weights_only=True``:
    tensors and plain Python values only, so a user-supplied file cannot run code.

    Raises:
        ValueError: the file is not such a checkpoint (with its path).
    """
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as error:
        raise ValueError(f"{path}: not a livespeech training checkpoint ({str(error).splitlines()[0][:200]})") from None


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state()[1].tolist(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.seed(0)
    np.random.set_state(("MT19937", np.asarray(state["numpy"], dtype=np.uint32), 0, 0, 0.0))
    torch.set_rng_state(state["torch"])


def build_data(config: TrainConfig, features: FeatureConfig, vocabulary: Vocabulary, stack: int, dist: Distributed, say):
    """Feature caches, the training set, its batch sampler and the dev caches."""
    cache_dir = Path(config.cache_dir or Path(config.run_dir) / "cache")
    train_caches = load_caches(config.train, cache_dir, features, say, training=True, strict=config.strict)
    train_caches += load_caches(config.train_augmented, cache_dir, features, say, training=True, augmented=True, seed=config.seed,
                                strict=config.strict)
    dev_caches = [c for c, _ in load_caches(config.dev, cache_dir, features, say, strict=config.strict)]
    joins = {"join_fraction": config.join_fraction, "seed": config.seed,
             "gap_frames": (round(config.join_gap_min_s / features.frame_seconds), round(config.join_gap_max_s / features.frame_seconds))}
    if config.augment:
        dataset = AugmentedTrainingSet(train_caches, vocabulary, stack, config.augmentation(), features, config.noise_dir, **joins)
    else:
        dataset = TrainingSet(train_caches, vocabulary, stack, **joins)
    if len(dataset) == 0:
        raise ValueError("the training corpora hold no usable utterances")
    lengths = [dataset.length(i) for i in range(len(dataset))]
    sampler = BucketBatchSampler(lengths, config.batch_frames, config.seed, dist.world_size, dist.rank, config.first_epoch_sorted())
    if len(sampler) == 0:
        raise ValueError(f"too little training data for {dist.world_size} process(es): lower --batch-frames")
    return train_caches, dataset, sampler, dev_caches


def build_model(config: TrainConfig, dims, train_caches, checkpoint: dict | None, say) -> CTCModel:
    """A new model (global feature statistics from the training data), a fine-tuning
    start (``init_from``), or the checkpoint's model."""
    model = CTCModel(dims)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
    elif config.init_from:
        state = _initial_weights(config.init_from)
        start = dims_of_state(state, dims.dropout)
        if can_widen(start, dims):
            state = widen_state(state, start, dims, config.seed)
            say(f"initialised from {config.init_from}, widened from {start.hidden} to {dims.hidden} units per layer")
        elif can_add_head(start, dims):
            state = add_head(state, dims, config.seed)
            say(f"initialised from {config.init_from}, with a context head of {dims.head_steps} steps added")
        elif start != dims:
            raise ValueError(f"--init-from {config.init_from} is {start.layers} LSTM layers of {start.hidden} over {start.n_mels} "
                             f"log-mel bands x {start.stack} ({start.frontend} front end), not {dims.layers} of {dims.hidden} over "
                             f"{dims.n_mels} x {dims.stack} ({dims.frontend}): give --hidden {start.hidden} --layers {start.layers} "
                             f"--stack {start.stack} --frontend {start.frontend} --head-steps {start.head_steps} (a larger --hidden widens it; "
                             f"--head-steps K adds a context head to a model without one)")
        else:
            say(f"initialised from {config.init_from}")
        model.load_state_dict(state, strict=True)
    else:
        mean, std = global_statistics(train_caches)
        model.feature_mean.copy_(mean)
        model.feature_std.copy_(std)
    return model


def build_optimizer(model: CTCModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr)


def train_step(model: CTCModel, trainable, optimizer, batch, config: TrainConfig, lr: float, device: str, autocast,
               noise_floor: NoiseFloor | None = None) -> tuple[float, float]:
    """One optimiser step on a collated batch; returns (loss, gradient norm)."""
    x, lengths, targets, target_lengths = batch
    if noise_floor is not None:
        x, lengths = noise_floor(x, lengths)
    x, lengths = x.to(device), lengths.to(device)
    if config.freq_warp > 0:
        x = frequency_warp(x, config.freq_warp)
    x = model.normalize(x)  # (B, T, F)
    if config.spec_augment:
        x = spec_augment(x, lengths, config.freq_masks, config.freq_width, config.time_masks, config.time_fraction)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast:
        log_probs, out_lengths = trainable(x, lengths, normalized=True)  # (B, S, V)
    loss = F.ctc_loss(log_probs.float().transpose(0, 1), targets.to(device), out_lengths, target_lengths.to(device),
                      blank=BLANK, reduction="mean", zero_infinity=True)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss.item(), float(grad_norm)


def fit(config: TrainConfig, log=None) -> Path:
    """Train (or resume) a model; returns the run folder.

    Raises:
        ValueError: no training data, or a bad option.
    """
    from training.report import Reporter

    if not config.train and not config.train_augmented:
        raise ValueError("no training data: give --train CORPUS...")
    device = pick_device(config)
    dist = Distributed(device)
    if device == "cuda":
        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(device)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed + dist.rank)
    random.seed(config.seed + dist.rank)
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: None)
    say = log if dist.is_main else (lambda *_: None)

    vocabulary, features = Vocabulary(), FeatureConfig()
    dims = config.dims(len(vocabulary), features.n_mels)
    train_caches, dataset, sampler, dev_caches = build_data(config, features, vocabulary, dims.stack, dist, say)
    say(f"{len(dataset)} training utterances, {len(sampler)} batches per epoch on each of {dist.world_size} process(es), device {device}")
    last = run_dir / "last.pt"
    checkpoint = load_checkpoint(last) if last.exists() else None
    model = build_model(config, dims, train_caches, checkpoint, say).to(device)
    optimizer = build_optimizer(model, config)
    step, epoch, batch_in_epoch, best = 0, 0, 0, float("inf")
    if checkpoint is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        step, epoch, batch_in_epoch, best = checkpoint["step"], checkpoint["epoch"], checkpoint["batch_in_epoch"], checkpoint["best"]
        set_rng_state(checkpoint["rng"][dist.rank] if dist.rank < len(checkpoint["rng"]) else checkpoint["rng"][0])
        say(f"resumed from {last} at step {step}")
    trainable = model
    if dist.enabled:
        trainable = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)
    if config.compile and device.startswith("cuda"):
        trainable = torch.compile(trainable)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()
    reporter = Reporter(run_dir, config.max_steps, step, log, enabled=dist.is_main)
    noise_floor = None
    if config.p_noise_floor > 0:
        noise_floor = NoiseFloor(features, config.p_noise_floor, (config.noise_floor_db_min, config.noise_floor_db_max),
                                 config.max_lead_in_s, config.max_tail_s, seed=config.seed)

    def checkpoint_state() -> dict:
        rngs = [None] * dist.world_size
        if dist.enabled:
            torch.distributed.all_gather_object(rngs, rng_state())
        else:
            rngs = [rng_state()]
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch,
                "batch_in_epoch": batch_in_epoch, "best": best, "rng": rngs, "config": config.to_dict(),
                "vocabulary": list(vocabulary.tokens), "features": features.to_dict()}

    def weights_only_state(step: int) -> dict:
        return {"model": model.state_dict(), "step": step, "config": config.to_dict(),
                "vocabulary": list(vocabulary.tokens), "features": features.to_dict()}

    last_save = time.time()
    model.train()
    while step < config.max_steps:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        batches = list(sampler)
        # The loader's own generator seeds its workers, so making it leaves the global RNG
        # (SpecAugment, dropout) alone and a resumed run draws what an uninterrupted one does.
        loader_rng = torch.Generator().manual_seed(config.seed + 1000 * epoch + dist.rank)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches[batch_in_epoch:], collate_fn=collate,
                                             num_workers=config.workers, generator=loader_rng)
        for index, batch in enumerate(loader, start=batch_in_epoch):
            loss, grad_norm = train_step(model, trainable, optimizer, batch, config, lr_at(step, config), device, autocast, noise_floor)
            step, batch_in_epoch = step + 1, index + 1
            row = reporter.step(step, loss, lr_at(step - 1, config), int(batch[1].sum()) * dist.world_size,
                                len(batches[index]) * dist.world_size, features.frame_seconds)
            if step % config.log_every == 0:
                reporter.write({**row, "epoch": epoch, "grad_norm": round(grad_norm, 3)})
            if step % config.eval_every == 0 and dist.is_main and dev_caches:
                results = {f"dev{i}": evaluate_cer(model, c, vocabulary, device) for i, c in enumerate(dev_caches)}
                reporter.write({"step": step, "eval": results})
                mean_cer = sum(r["cer"] for r in results.values()) / len(results)
                if mean_cer < best:
                    best = mean_cer
                    save_checkpoint(run_dir / "best.pt", {**weights_only_state(step), "eval": results})
            if config.snapshot_every > 0 and step % config.snapshot_every == 0 and dist.is_main:
                save_checkpoint(run_dir / "snapshots" / f"step-{step:07d}.pt", weights_only_state(step))
            due = time.time() - last_save > config.checkpoint_minutes * 60
            due = due or (config.checkpoint_every > 0 and step % config.checkpoint_every == 0)
            if dist.agree(due or step >= config.max_steps, device):
                state = checkpoint_state()
                if dist.is_main:
                    save_checkpoint(last, state)
                last_save = time.time()
            if step >= config.max_steps:
                break
        else:
            epoch, batch_in_epoch = epoch + 1, 0
    reporter.close()
    dist.close()
    return run_dir


def _initial_weights(source: str) -> dict:
    """Weights of a model folder (safetensors), a training run folder (its ``last.pt``:
    a folder with ``last.pt`` and no ``config.json``) or a training checkpoint.

    Raises:
        ValueError: a folder that is neither; a file that is not a checkpoint.
        OSError: no such file.
        livespeech.bundle.ModelError: a broken model folder.
    """
    path = Path(source)
    if path.is_dir() and not (path / "config.json").exists():
        if not (path / "last.pt").exists():
            raise ValueError(f"--init-from {source}: neither a model folder (config.json) nor a run folder (last.pt)")
        return load_checkpoint(path / "last.pt")["model"]
    if path.is_dir():
        from livespeech.bundle import load_bundle

        return load_bundle(path).model.state_dict()
    return load_checkpoint(path)["model"]
