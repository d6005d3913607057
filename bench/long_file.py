"""A long file through `livespeech transcribe`: wall time, real-time factor, peak memory.

Writes a WAV of ``--minutes`` (default 120) of 16 kHz PCM_16 speech-like audio into a
temporary folder (the bundled samples in turn at varying gain, each followed by a
pause long enough to end an utterance), block by block, so the writer's own memory
stays small. Then runs ``livespeech transcribe --format json`` on it in a child
process and takes the child's peak resident memory from the kernel (``os.wait4``'s
``ru_maxrss``). The same is done for a 10-second file of the same audio: the
difference is what the length costs (torch alone takes most of the baseline).

    nice -n 19 .venv/bin/python bench/long_file.py              # two hours: a few minutes
    .venv/bin/python bench/long_file.py --minutes 10 --model base

Prints one JSON object: audio and wall seconds, RTF (wall and recognition only),
peak RSS of the long and the short run, in MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from livespeech.audio import read_audio
from livespeech.features import SAMPLE_RATE
from machine import cpu_model  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent

PAUSE_S = 0.9  # silence after each sample, seconds (the endpoint is 0.6 s)
NOISE = 1e-3  # background noise amplitude (about -60 dBFS), so pauses are not digital zero
BASELINE_S = 10.0  # length of the short comparison file, seconds


def speech_cycle() -> np.ndarray:
    """The bundled samples at 16 kHz, each followed by a pause, float32 (n,)."""
    pause = np.zeros(round(PAUSE_S * SAMPLE_RATE), np.float32)
    return np.concatenate([part for path in sorted((ROOT / "assets" / "samples").glob("*.wav"))
                           for part in (read_audio(path), pause)])


def write_speechlike(path: Path, seconds: float, seed: int = 0) -> None:
    """Write ``seconds`` of speech-like 16 kHz PCM_16 audio to ``path``, one cycle of
    samples at a time (memory: one cycle, about 12 s)."""
    rng = np.random.default_rng(seed)
    cycle, left = speech_cycle(), round(seconds * SAMPLE_RATE)
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, "PCM_16") as f:
        while left > 0:
            block = cycle[:left] * rng.uniform(0.4, 1.0) + NOISE * rng.standard_normal(min(left, len(cycle)))
            f.write(np.clip(block, -1.0, 1.0).astype(np.float32))
            left -= len(block)


def transcribe(path: Path, model: str | None, out_dir: Path) -> dict:
    """Run ``livespeech transcribe --format json PATH`` in a child process; its wall
    time (seconds), peak RSS (MB) and JSON row.

    Raises:
        RuntimeError: the command failed (its stderr is in the message).
    """
    command = [sys.executable, "-m", "livespeech", "transcribe", "--format", "json", str(path)]
    command += ["--model", model] if model else []
    stdout, stderr = out_dir / f"{path.stem}.json", out_dir / f"{path.stem}.err"
    with open(stdout, "w") as out, open(stderr, "w") as err:
        t0 = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"exit {child.returncode}: {stderr.read_text().strip()[-500:]}")
    rss_bytes = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)  # Linux reports KiB
    return {"wall_s": wall, "peak_rss_mb": rss_bytes / 2**20, "row": json.loads(stdout.read_text())}


def main() -> None:
    """Write the long and the short file, transcribe both and print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=120.0, help="length of the long file (default 120)")
    parser.add_argument("--model", default=None, help="model name or folder (default: livespeech's default)")
    args = parser.parse_args()
    if not args.minutes > 0:
        parser.error("--minutes must be positive")
    with tempfile.TemporaryDirectory(prefix="livespeech-long-") as tmp:
        tmp = Path(tmp)
        long_path, short_path = tmp / "long.wav", tmp / "short.wav"
        t0 = time.perf_counter()
        write_speechlike(long_path, args.minutes * 60)
        write_s = time.perf_counter() - t0
        write_speechlike(short_path, BASELINE_S)
        short = transcribe(short_path, args.model, tmp)
        long = transcribe(long_path, args.model, tmp)
        file_mb = long_path.stat().st_size / 2**20
    row = long["row"]
    audio_s = row["duration_s"]
    print(json.dumps({
        "audio_s": audio_s, "file_mb": round(file_mb, 1), "decoded_float32_mb": round(audio_s * SAMPLE_RATE * 4 / 2**20, 1),
        "write_s": round(write_s, 1), "wall_s": round(long["wall_s"], 1), "rtf_wall": round(long["wall_s"] / audio_s, 4),
        "processing_s": row["processing_s"], "rtf_recognition": round(row["processing_s"] / audio_s, 4),
        "words": len(row["words"]), "peak_rss_mb": round(long["peak_rss_mb"], 1),
        "baseline": {"audio_s": short["row"]["duration_s"], "wall_s": round(short["wall_s"], 2),
                     "peak_rss_mb": round(short["peak_rss_mb"], 1)},
        "rss_growth_mb": round(long["peak_rss_mb"] - short["peak_rss_mb"], 1), "cpu": cpu_model(), "cpus": os.cpu_count(),
    }, indent=2))


if __name__ == "__main__":
    main()
