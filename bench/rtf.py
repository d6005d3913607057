"""Real-time factor of streaming recognition on one CPU thread.

RTF = recognition time / audio duration (lower is faster; 0.05 means a minute of
audio takes 3 s).  Model loading and file reading are not counted; features, model
and decoding are, exactly as `livespeech transcribe` reports in `processing_s`.

    .venv/bin/python bench/rtf.py                       # FSDD test split + assets/samples
    .venv/bin/python bench/rtf.py --model base --chunk-ms 100 FILE...
    .venv/bin/python bench/rtf.py --model base-small base --rounds 3   # models side by side
    .venv/bin/python bench/rtf.py --model models/mymodel --decoders greedy beam --rounds 3

Several models are measured in the same run, taking turns set by set for ``--rounds``
rounds (each model's RTF is its median round), so the same machine load falls on each
of them; ``ratio`` is each model's RTF over the first model's.  Each model is run
with every decoder of ``--decoders`` (default: greedy, and beam search with its
language model when the folder has one); ``beam_over_greedy`` is beam's RTF over
greedy's for the same model (the issue's budget: at most 1.5).

Prints one JSON object: files, audio seconds, RTF per set and model, threads, the CPU model.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from livespeech.audio import read_audio  # noqa: E402
from livespeech.beam import DecoderChoice, word_decoder_for  # noqa: E402
from livespeech.bundle import load_bundle  # noqa: E402
from livespeech.features import SAMPLE_RATE  # noqa: E402
from livespeech.recognizer import Recognizer, transcribe_blocks  # noqa: E402
from livespeech.registry import find_model  # noqa: E402
from machine import cpu_model  # noqa: E402  (bench/machine.py)

ROOT = Path(__file__).resolve().parent.parent

FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


def measure(recognizer: Recognizer, signals: list[np.ndarray], chunk_ms: int) -> dict:
    """Streaming recognition of ``signals`` in ``chunk_ms`` chunks: files, audio and processing seconds, RTF."""
    audio = processing = 0.0
    for samples in signals:
        recognizer.reset()
        result = transcribe_blocks(recognizer, [samples], chunk_ms)
        audio += result.audio_s
        processing += result.processing_s
    return {"files": len(signals), "audio_s": round(audio, 2), "processing_s": round(processing, 3), "rtf": round(processing / audio, 4)}


def main() -> None:
    """Parse the options, measure every model and decoder on every set, print the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--model", nargs="+", default=[None], help="one or more models (names or folders), measured side by side")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every model on every set; the median round is reported")
    parser.add_argument("--decoders", nargs="+", choices=("greedy", "beam"), default=None,
                        help="decoders to run each model with (default: greedy, and beam when the model has a language model)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    systems = []  # (bundle, decoder name)
    for m in args.model:
        bundle = load_bundle(find_model(m))
        for decoder in args.decoders or (["greedy", "beam"] if bundle.language_model else ["greedy"]):
            systems.append((bundle, decoder))
    recognizers = [Recognizer(b, word_decoder=word_decoder_for(b, DecoderChoice(d))) for b, d in systems]
    sets = {}
    if args.files:
        sets["files"] = [read_audio(p) for p in args.files]
    else:
        if FSDD.exists():
            sets["fsdd_test"] = [read_audio(p) for p in sorted(FSDD.glob("*.wav")) if int(p.stem.split("_")[2]) < 5]
        samples = [read_audio(p) for p in sorted((ROOT / "assets" / "samples").glob("*.wav"))]
        sets["assets"] = samples
        sets["long_60s"] = [np.concatenate([np.concatenate([s, np.zeros(SAMPLE_RATE // 2, np.float32)]) for s in samples] * 10)[: 60 * SAMPLE_RATE]]
    for recognizer in recognizers:
        measure(recognizer, sets[next(iter(sets))][:5], args.chunk_ms)  # warm-up
    t0 = time.perf_counter()
    rounds: dict[tuple[int, str], list[dict]] = {}
    for _ in range(args.rounds):
        for name, signals in sets.items():
            for k, recognizer in enumerate(recognizers):
                rounds.setdefault((k, name), []).append(measure(recognizer, signals, args.chunk_ms))
    median = {key: sorted(rows, key=lambda r: r["rtf"])[args.rounds // 2] for key, rows in rounds.items()}
    models = []
    for k, (bundle, decoder) in enumerate(systems):
        results = {name: {**median[(k, name)], "ratio": round(median[(k, name)]["rtf"] / median[(0, name)]["rtf"], 2)} for name in sets}
        greedy = next((j for j, (b, d) in enumerate(systems) if b is bundle and d == "greedy"), None)
        if decoder == "beam" and greedy is not None:
            for name in sets:
                results[name]["beam_over_greedy"] = round(median[(k, name)]["rtf"] / median[(greedy, name)]["rtf"], 3)
        models.append({"model": bundle.name, "decoder": decoder, "parameters": sum(p.numel() for p in bundle.model.parameters()),
                       "results": results})
    print(json.dumps({"chunk_ms": args.chunk_ms, "threads": torch.get_num_threads(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                      "torch": torch.__version__, "rounds": args.rounds, "wall_s": round(time.perf_counter() - t0, 2), "models": models}, indent=2))


if __name__ == "__main__":
    main()
