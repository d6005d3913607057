"""How late a model emits words: raw emission times against where the speech is.

A unidirectional CTC model emits a character some steps after it hears it, so word
times taken from emission steps are late.  This measures by how much, on FSDD
(single spoken digits, real speech) where the word's true span is known from the
signal itself: each recording is padded with ``--pad-s`` of silence on both sides
(so neither end is clamped), the speech onset and offset are the first and last 10 ms
frames within ``--threshold-db`` of the loudest, and the model's word (greedy
decoding, delay correction off) is compared with them, on the files where it heard
exactly the right digit.

    nice -n 19 .venv/bin/python bench/word_delay.py                     # base, FSDD test split
    nice -n 19 .venv/bin/python bench/word_delay.py --model digits --files 600

Prints one JSON object: per model, the files used, and the median and mean (seconds)
of start - onset, end - offset and their average (the delay to take off word times:
``emission_delay_s`` of a model's config.json, or ``DEFAULT_EMISSION_DELAY_S`` in
livespeech/bundle.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from livespeech.audio import read_audio  # noqa: E402
from livespeech.bundle import load_bundle  # noqa: E402
from livespeech.features import SAMPLE_RATE  # noqa: E402
from livespeech.recognizer import Recognizer, transcribe_blocks  # noqa: E402
from livespeech.registry import find_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FRAME = SAMPLE_RATE // 100  # 10 ms


def speech_span(audio: np.ndarray, threshold_db: float) -> tuple[float, float]:
    """Onset and offset of the speech in ``audio`` (seconds): the first and last 10 ms
    frame whose energy is within ``threshold_db`` of the loudest frame's."""
    n = len(audio) // FRAME
    energy = (audio[: n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1)
    db = 10 * np.log10(energy + 1e-12)
    loud = np.flatnonzero(db >= db.max() - threshold_db)
    return loud[0] * FRAME / SAMPLE_RATE, (loud[-1] + 1) * FRAME / SAMPLE_RATE


def measure(model: str, files: list[Path], pad_s: float, threshold_db: float) -> dict:
    torch.set_num_threads(1)
    bundle = load_bundle(find_model(model))
    recognizer = Recognizer(bundle, emission_delay_s=0.0)  # raw emission times
    pad = np.zeros(int(pad_s * SAMPLE_RATE), np.float32)
    starts, ends = [], []
    for path in files:
        audio = read_audio(path)
        onset, offset = speech_span(audio, threshold_db)
        recognizer.reset()
        words = transcribe_blocks(recognizer, [np.concatenate([pad, audio, pad])], keep_log_probs=False).words
        if [w.word for w in words] != [DIGITS[int(path.name.split("_")[0])]]:
            continue  # misheard: its times say nothing about the delay
        starts.append(words[0].start_s - pad_s - onset)
        ends.append(words[0].end_s - pad_s - offset)
    both = [(a + b) / 2 for a, b in zip(starts, ends)]

    def summary(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 4), "mean": round(statistics.fmean(values), 4),
                "p10": round(float(np.percentile(values, 10)), 4), "p90": round(float(np.percentile(values, 90)), 4)}

    return {"files_used": len(starts), "files": len(files), "seconds_per_step": bundle.seconds_per_step,
            "start_minus_onset_s": summary(starts), "end_minus_offset_s": summary(ends), "delay_s": summary(both)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["base"], help="model names or folders (default base)")
    parser.add_argument("--files", type=int, default=300, help="FSDD files: the test split (takes 0-4) first (default 300)")
    parser.add_argument("--pad-s", type=float, default=0.5, help="silence added before and after each file, seconds (default 0.5)")
    parser.add_argument("--threshold-db", type=float, default=30.0, help="speech: frames within this of the loudest (default 30 dB)")
    args = parser.parse_args()
    paths = sorted(FSDD.glob("*.wav"), key=lambda p: (int(p.stem.split("_")[2]) >= 5, p.name))[: args.files]
    print(json.dumps({"data": str(FSDD), "pad_s": args.pad_s, "threshold_db": args.threshold_db,
                      "models": {m: measure(m, paths, args.pad_s, args.threshold_db) for m in args.model}}, indent=2))


if __name__ == "__main__":
    main()
