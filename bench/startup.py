"""Start-up times: `livespeech transcribe` of a one-second file, and the live view
from launch until it listens; plus what importing the command line costs.

- transcribe: wall time of ``livespeech transcribe ONE_SECOND.wav`` (target <= 3 s),
  start to exit.
- live: ``livespeech --input FILE`` runs in a pseudo-terminal (120x40) with
  ``LIVESPEECH_READY_FILE`` set; the time from launch until the app touches that file
  (its recognizer worker has started listening), then ``q`` and the time to exit.
- imports: ``python -X importtime -c "import livespeech.cli"`` (must stay free of
  torch, numpy, textual: ``--help`` and usage errors are instant), and where the time
  of the transcribe command's imports goes, by top-level package.

    nice -n 19 .venv/bin/python bench/startup.py [--runs 5]
    nice -n 19 .venv/bin/python bench/startup.py --model models/mymodel --decoder greedy beam   # what loading the LM adds

``--model`` runs the commands with that model; ``--decoder`` runs them once per
decoder (``--decoder greedy`` / ``beam``), so a model with a language model shows what
loading it adds.

Prints one JSON object; times are medians of ``--runs`` runs, in seconds.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections import defaultdict
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "weather.wav"  # 16 kHz, 2.1 s
HEAVY = ("torch", "torchaudio", "numpy", "textual", "rich", "soundfile", "sounddevice", "safetensors")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
TERMINAL = (40, 120)  # rows, columns


def livespeech_command() -> list[str]:
    """The ``livespeech`` console script beside this Python, else ``python -m livespeech``."""
    script = Path(sys.executable).with_name("livespeech")
    return [str(script)] if script.exists() else [sys.executable, "-m", "livespeech"]


def one_second_file(folder: Path) -> Path:
    """The first second of a bundled sample, as a 16 kHz WAV in ``folder``."""
    data, rate = sf.read(SAMPLE, dtype="float32")
    path = folder / "one_second.wav"
    sf.write(path, data[:rate], rate)
    return path


def time_transcribe(command: list[str], path: Path, options: tuple[str, ...] = ()) -> float:
    """Seconds from launching ``livespeech transcribe PATH`` to its exit.

    Raises:
        RuntimeError: the command failed.
    """
    t0 = time.perf_counter()
    p = subprocess.run([*command, "transcribe", *options, str(path)], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"transcribe exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return elapsed


def time_live(command: list[str], path: Path, folder: Path, timeout: float = 60.0, options: tuple[str, ...] = ()) -> tuple[float, float]:
    """Seconds from launching ``livespeech --input PATH`` in a pseudo-terminal until it
    listens, and from pressing ``q`` until it has exited.

    Raises:
        RuntimeError: it exited early or did not get ready within ``timeout`` seconds.
    """
    ready = folder / "ready"
    ready.unlink(missing_ok=True)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL, 0, 0))
    env = dict(os.environ, LIVESPEECH_READY_FILE=str(ready), TERM=os.environ.get("TERM", "xterm-256color"))
    t0 = time.perf_counter()
    child = subprocess.Popen([*command, *options, "--input", str(path)], stdin=slave, stdout=slave, stderr=slave, env=env,
                             cwd=folder, start_new_session=True)
    os.close(slave)
    screen = bytearray()
    try:
        while not ready.exists():
            _drain(master, screen, 0.005)
            if child.poll() is not None:
                raise RuntimeError(f"the live view exited {child.returncode}: {screen.decode(errors='replace')[-300:]!r}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"not listening after {timeout} s")
        listening = time.perf_counter() - t0
        time.sleep(0.5)  # let it draw a few frames before quitting
        _drain(master, screen, 0.0)
        t1 = time.perf_counter()
        os.write(master, b"q")
        while child.poll() is None:
            _drain(master, screen, 0.005)
            if time.perf_counter() - t1 > 10:
                raise RuntimeError("still running 10 s after q")
        return listening, time.perf_counter() - t1
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        os.close(master)


def _drain(fd: int, into: bytearray, wait_s: float) -> None:
    """Read what the terminal has written (it blocks when nobody reads)."""
    while select.select([fd], [], [], wait_s)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child has closed the terminal
            return
        if not chunk:
            return
        into += chunk
        wait_s = 0.0


def import_times(module: str) -> list[tuple[int, int, int, str]]:
    """``-X importtime`` of importing ``module``: (self us, cumulative us, depth, name) rows."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    rows = []
    for line in p.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            rows.append((int(m[1]), int(m[2]), len(m[3]) // 2, m[4]))
    return rows


def import_report(module: str) -> dict:
    """Cumulative import time of ``module`` (ms), heavy packages it pulls in, and the
    top-level packages that cost the most (ms, self times summed)."""
    rows = import_times(module)
    by_package: dict[str, int] = defaultdict(int)
    for own, _, _, name in rows:
        by_package[name.split(".")[0]] += own
    total = next((cumulative for _, cumulative, _, name in rows if name == module), 0)
    top = sorted(by_package.items(), key=lambda kv: -kv[1])[:6]
    return {"module": module, "total_ms": round(total / 1000, 1),
            "heavy_imported": sorted({name.split(".")[0] for *_, name in rows} & set(HEAVY)),
            "top_packages_ms": {k: round(v / 1000, 1) for k, v in top}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each measurement (median reported; default 5)")
    parser.add_argument("--model", help="model name or folder (default: the default model)")
    parser.add_argument("--decoder", nargs="+", choices=("greedy", "beam"), default=[None],
                        help="measure with each of these decoders (default: the model's default)")
    args = parser.parse_args()
    command = livespeech_command()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="livespeech-startup-") as tmp:
        folder = Path(tmp)
        path = one_second_file(folder)
        for decoder in args.decoder:
            options = (*(("--model", args.model) if args.model else ()), *(("--decoder", decoder) if decoder else ()))
            transcribe, live = [], []
            for _ in range(args.runs):  # taking turns, so the machine's load falls on both alike
                transcribe.append(time_transcribe(command, path, options))
                live.append(time_live(command, SAMPLE, folder, options=options))
            rows[decoder or "default"] = {
                "transcribe_one_second_s": round(statistics.median(transcribe), 2),
                "transcribe_runs_s": [round(t, 2) for t in transcribe],
                "live_until_listening_s": round(statistics.median(t for t, _ in live), 2),
                "live_runs_s": [round(t, 2) for t, _ in live],
                "live_quit_s": round(statistics.median(q for _, q in live), 2),
            }
    print(json.dumps({
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
        "model": args.model, "runs": args.runs,
        **(rows.pop("default") if list(rows) == ["default"] else {"decoders": rows}),
        "imports": [import_report("livespeech.cli"), import_report("livespeech.transcribe"), import_report("livespeech.ui.app")],
        "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
