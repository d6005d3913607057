"""Tune greedy decoding's blank penalty on a dev set (never a test set: the default is
speechocean762's 25 held-out *dev* speakers), and optionally store it in a model folder.

The model's log-probabilities of each utterance are computed once (the whole utterance
in one forward pass, as the streaming model computes them); each penalty is then a
greedy decode with that much taken off blank's log-probability
(``livespeech.decoding.best_tokens``), scored with jiwer's CER and WER.

    .venv/bin/python bench/blank_penalty.py --model base
    .venv/bin/python bench/blank_penalty.py --model models/mymodel --write     # sets config.json's blank_penalty

``--write`` sets ``blank_penalty`` in the folder's ``config.json`` (atomically) to the
value of lowest CER. Prints one JSON object with the CPU model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jiwer
import torch

from machine import cpu_model  # bench/machine.py
from livespeech.atomic import update_json_atomic
from livespeech.audio import read_audio
from livespeech.bundle import BLANK_PENALTY_KEY, CONFIG_FILE, load_bundle
from livespeech.decoding import collapse, best_tokens
from livespeech.features import log_mel
from livespeech.registry import find_model
from training.data import read_corpus


def utterance_log_probs(bundle, spec: str) -> tuple[list[torch.Tensor], list[str]]:
    """Log-probabilities (S, V) and reference text of each utterance of a corpus."""
    log_probs, refs = [], []
    with torch.inference_mode():
        for u in read_corpus(spec):
            features = log_mel(torch.from_numpy(read_audio(Path(u.audio), bundle.features.sample_rate)), bundle.features)
            lp, _ = bundle.model.infer(features[None])
            log_probs.append(lp[0])
            refs.append(u.text)
    return log_probs, refs


def score(bundle, log_probs: list[torch.Tensor], refs: list[str], penalty: float) -> dict:
    """Greedy CER and WER with ``penalty`` taken off blank's log-probability."""
    hyps = [bundle.vocabulary.decode(t for t, _ in collapse(best_tokens(lp, penalty))) for lp in log_probs]
    hyps = [" ".join(h.split()) for h in hyps]
    return {"blank_penalty": penalty, "cer": round(jiwer.cer(refs, hyps), 4), "wer": round(jiwer.wer(refs, hyps), 4)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base", help="model name or folder (default base)")
    p.add_argument("--corpus", default="so762-dev:../shared/data/speechocean762", help="dev corpus spec (default speechocean762's dev speakers)")
    p.add_argument("--penalties", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0, 1.5],
                   help="values to try, natural-log units (default 0 0.25 0.5 0.75 1 1.5)")
    p.add_argument("--write", action="store_true", help="store the best value in the model folder's config.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    folder = find_model(args.model)
    bundle = load_bundle(folder)
    t0 = time.perf_counter()
    log_probs, refs = utterance_log_probs(bundle, args.corpus)
    rows = [score(bundle, log_probs, refs, penalty) for penalty in args.penalties]
    best = min(rows, key=lambda r: (r["cer"], r["blank_penalty"]))
    report = {"cpu": cpu_model(), "model": bundle.name, "corpus": args.corpus, "utterances": len(refs),
              "seconds": round(time.perf_counter() - t0, 1), "results": rows, "best": best}
    if args.write:
        path = Path(folder) / CONFIG_FILE
        update_json_atomic(path, {BLANK_PENALTY_KEY: best["blank_penalty"]})
        report["written"] = str(path)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
