"""Speed options of streaming recognition, each measured for speed and accuracy.

For the default model: fp32 against int8 dynamic quantisation of the LSTM and output
layer (``torch.ao.quantization.quantize_dynamic``), one against two threads, and
chunks of 50, 100 and 200 ms; for untrained models of the same size, 2, 3 and 4
stacked frames per LSTM step (speed only: accuracy needs a trained model each).

RTF = recognition time / audio duration, as in ``bench/rtf.py``, from the process's
CPU time (fair on a busy machine for one thread; with two threads it adds both
threads' time) and from wall time (what a user waits, on an idle machine). Accuracy: FSDD test
split exact digit words, and CER on the held-out slt sentences when the corpus is
there (see models/base/MODEL_CARD.md for the command that builds it).

    .venv/bin/python bench/speed_options.py [--model base] [--limit 300]

Prints a markdown table.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import jiwer  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from livespeech.audio import read_audio  # noqa: E402
from livespeech.bundle import Bundle, load_bundle  # noqa: E402
from livespeech.model import CTCModel  # noqa: E402
from livespeech.recognizer import Recognizer, transcribe_blocks  # noqa: E402
from livespeech.registry import find_model  # noqa: E402
from livespeech.text import normalize  # noqa: E402
from training.data import read_corpus  # noqa: E402
from machine import cpu_model  # noqa: E402  (bench/machine.py)

ROOT = Path(__file__).resolve().parent.parent

FSDD = ROOT.parent / "shared" / "data" / "fsdd"
SLT = ROOT / "corpus" / "slt_sentences" / "manifest.jsonl"


def int8(bundle: Bundle) -> Bundle:
    """The bundle with its LSTM and output layer dynamically quantised to int8
    (weights int8, activations quantised per call; PyTorch dynamic quantisation)."""
    model = torch.ao.quantization.quantize_dynamic(bundle.model, {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    return dataclasses.replace(bundle, model=model)


def load_sets(limit: int) -> dict[str, list[tuple[np.ndarray, str]]]:
    """Evaluation sets as lists of (16 kHz samples, reference text)."""
    sets = {}
    if FSDD.exists():
        sets["fsdd"] = [(read_audio(Path(u.audio)), u.text) for u in read_corpus(f"fsdd-test:{FSDD}")[:limit]]
    if SLT.exists():
        sets["slt"] = [(read_audio(Path(u.audio)), u.text) for u in read_corpus(str(SLT))[:limit]]
    return sets


def run(bundle: Bundle, data: list[tuple[np.ndarray, str]], chunk_ms: int) -> tuple[float, float, list[str]]:
    """(RTF from CPU time, RTF from wall time, hypotheses) of streaming recognition
    over ``data``."""
    recognizer = Recognizer(bundle)
    audio = cpu = wall = 0.0
    hypotheses = []
    for samples, _ in data:
        recognizer.reset()
        c0, t0 = time.process_time(), time.perf_counter()
        transcript = transcribe_blocks(recognizer, [samples], chunk_ms)
        cpu += time.process_time() - c0
        wall += time.perf_counter() - t0
        audio += transcript.audio_s
        hypotheses.append(transcript.text)
    return cpu / audio, wall / audio, hypotheses


def accuracy(name: str, data, hypotheses: list[str]) -> str:
    """FSDD: percent exact; other sets: CER in percent."""
    refs = [normalize(text) for _, text in data]
    if name == "fsdd":
        return f"{100 * np.mean([r == h for r, h in zip(refs, hypotheses)]):.1f} % exact"
    return f"CER {100 * jiwer.cer(refs, [h or '-' for h in hypotheses]):.2f} %"


def option_rows(bundle: Bundle, sets: dict) -> list[list[str]]:
    """One row per option of the trained model: name, RTF per set, accuracy per set."""
    options = [("fp32, 1 thread, 100 ms", bundle, 1, 100), ("int8, 1 thread, 100 ms", int8(bundle), 1, 100),
               ("fp32, 2 threads, 100 ms", bundle, 2, 100), ("fp32, 1 thread, 50 ms", bundle, 1, 50),
               ("fp32, 1 thread, 200 ms", bundle, 1, 200)]
    rows = []
    for label, variant, threads, chunk_ms in options:
        torch.set_num_threads(threads)
        run(variant, next(iter(sets.values()))[:5], chunk_ms)  # warm-up
        cells = [label]
        for name, data in sets.items():
            cpu, wall, hyps = run(variant, data, chunk_ms)
            cells += [f"{cpu:.4f} / {wall:.4f}", accuracy(name, data, hyps)]
        rows.append(cells)
    torch.set_num_threads(1)
    return rows


def stack_rows(bundle: Bundle, data: list[tuple[np.ndarray, str]]) -> list[list[str]]:
    """RTF of untrained models like ``bundle``'s LSTM with 2, 3 and 4 stacked frames
    (the stacking front end, whichever front end ``bundle`` has)."""
    rows = []
    for stack in (2, 3, 4):
        dims = dataclasses.replace(bundle.model.dims, stack=stack, frontend="stack")
        variant = dataclasses.replace(bundle, model=CTCModel(dims).eval())
        run(variant, data[:5], 100)
        cpu, wall, _ = run(variant, data, 100)
        rows.append([f"stack {stack} ({10 * stack} ms steps), untrained", f"{cpu:.4f} / {wall:.4f}"])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table of ``header`` and ``rows``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main() -> None:
    """Measure every speed option and print the markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=300, help="utterances per set (default 300)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_bundle(find_model(args.model))
    sets = load_sets(args.limit)
    if not sets:
        sys.exit("speed_options: no evaluation audio (../shared/data/fsdd, corpus/slt_sentences)")
    header = ["option"] + [f"{name} {what}" for name in sets for what in ("RTF CPU / wall", "accuracy")]
    print(f"model {bundle.name}, {sum(p.numel() for p in bundle.model.parameters()):,} parameters, torch {torch.__version__}, "
          f"{cpu_model()}\n")
    print(table(header, option_rows(bundle, sets)))
    print()
    print(table(["frame stacking", f"{next(iter(sets))} RTF CPU / wall (1 thread)"], stack_rows(bundle, next(iter(sets.values())))))


if __name__ == "__main__":
    main()
