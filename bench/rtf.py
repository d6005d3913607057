"""Real-time factor of streaming recognition on one CPU thread.

RTF = recognition time / audio duration (lower is faster; 0.05 means a minute of
audio takes 3 s).  Model loading and file reading are not counted; features, model
and decoding are, exactly as `livespeech transcribe` reports in `processing_s`.

    .venv/bin/python bench/rtf.py                       # FSDD test split + assets/samples
    .venv/bin/python bench/rtf.py --model base --chunk-ms 100 FILE...

Prints one JSON object: files, audio seconds, RTF per set, threads, machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livespeech.audio import read_audio  # noqa: E402
from livespeech.bundle import load_bundle  # noqa: E402
from livespeech.recognizer import Recognizer, transcribe_blocks  # noqa: E402
from livespeech.registry import find_model  # noqa: E402

FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"


def measure(recognizer: Recognizer, signals: list[np.ndarray], chunk_ms: int) -> dict:
    audio = processing = 0.0
    for samples in signals:
        recognizer.reset()
        result = transcribe_blocks(recognizer, [samples], chunk_ms)
        audio += result.audio_s
        processing += result.processing_s
    return {"files": len(signals), "audio_s": round(audio, 2), "processing_s": round(processing, 3), "rtf": round(processing / audio, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--model", default=None)
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bundle = load_bundle(find_model(args.model))
    recognizer = Recognizer(bundle)
    sets = {}
    if args.files:
        sets["files"] = [read_audio(p) for p in args.files]
    else:
        if FSDD.exists():
            sets["fsdd_test"] = [read_audio(p) for p in sorted(FSDD.glob("*.wav")) if int(p.stem.split("_")[2]) < 5]
        samples = [read_audio(p) for p in sorted((ROOT / "assets" / "samples").glob("*.wav"))]
        sets["assets"] = samples
        sets["long_60s"] = [np.concatenate([np.concatenate([s, np.zeros(8000, np.float32)]) for s in samples] * 10)[: 60 * 16000]]
    measure(recognizer, sets[next(iter(sets))][:5], args.chunk_ms)  # warm-up
    t0 = time.perf_counter()
    results = {name: measure(recognizer, signals, args.chunk_ms) for name, signals in sets.items()}
    print(json.dumps({"model": bundle.name, "parameters": sum(p.numel() for p in bundle.model.parameters()),
                      "chunk_ms": args.chunk_ms, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
                      "cpus": os.cpu_count(), "torch": torch.__version__, "wall_s": round(time.perf_counter() - t0, 2), "results": results}, indent=2))


if __name__ == "__main__":
    main()
