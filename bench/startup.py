"""Start-up times: `livespeech transcribe` of a one-second file, and the live view
from launch until it listens; plus what importing the command line costs.

- transcribe: wall time of ``livespeech transcribe ONE_SECOND.wav``, start to exit
  (target <= 2 s on a 2-core machine), and its CPU time (user + system), which other
  work on a busy machine inflates less than the wall time.
- live: ``livespeech --input FILE`` runs in a pseudo-terminal (120x40); the time from
  launch until its status bar shows "playing" (the state it shows once its recognizer
  worker runs on the file), then ``q`` and the time to exit.
- split: where the transcribe time goes, in a child process doing what the command
  does, step by step: Python's start, importing the command line, parsing and the usage
  checks, the imports of the command (torch...), loading the model, the recognizer and
  the first 100 ms chunk, the rest of the file, and leaving (``os._exit`` as the
  command does).  The steps add up to about the transcribe time.
- imports: ``python -X importtime -c "import livespeech.cli"`` (must stay free of
  torch, numpy, textual: ``--help`` and usage errors are instant), and where the time
  of the transcribe command's imports goes, by top-level package.
- usage (``--usage``, alone): how long a few usage errors take, against Python's bare
  start (``python -c pass``); the target is under 0.5 s.

    nice -n 19 .venv/bin/python bench/startup.py [--runs 5] [--no-live]
    nice -n 19 .venv/bin/python bench/startup.py --usage [--runs 5]
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
import resource
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
from machine import cpu_model  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets" / "samples" / "weather.wav"  # 16 kHz, 2.1 s
HEAVY = ("torch", "torchaudio", "numpy", "textual", "rich", "soundfile", "sounddevice", "safetensors")
USAGE_ERRORS = (  # (name, arguments): each must exit 2; {file} is an existing file
    ("input_and_device", ("--input", "x.wav", "--device", "0")),
    ("chunk_ms_too_large", ("transcribe", "--chunk-ms", "60000", "x.wav")),
    ("output_dir_is_a_file", ("transcribe", "--output-dir", "{file}", "x.wav")),
    ("greedy_with_beam_options", ("transcribe", "--decoder", "greedy", "--beam-size", "8", "x.wav")),
    ("no_such_phrase_set", ("classify", "--phrases", "no-such-set", "x.wav")),
    ("live_no_such_phrase_set", ("--phrases", "no-such-set")),
    ("record_max_seconds", ("record", "digits", "--max-seconds", "0.1")),
)
SPLIT_CHILD = r"""
import time
stamps = {"start": time.time()}
import json, os, sys
from livespeech import cli
stamps["import_cli"] = time.time()
args = cli.build_parser().parse_args(sys.argv[1:])
choice = cli._decoder_choice(args)
stamps["usage_checks"] = time.time()
from livespeech import transcribe
from livespeech.audio import read_audio
from livespeech.output import render
from livespeech.recognizer import Recognizer, transcribe_blocks
stamps["imports"] = time.time()
bundle = cli._load(args)
word_decoder = cli._word_decoder(bundle, choice)
stamps["model_load"] = time.time()
audio = read_audio(args.files[0], sample_rate=bundle.features.sample_rate)
recognizer = Recognizer(bundle, word_decoder=word_decoder)
chunk = bundle.features.sample_rate * args.chunk_ms // 1000
recognizer.accept(audio[:chunk])
stamps["first_chunk"] = time.time()
transcript = transcribe_blocks(recognizer, [audio[chunk:]], args.chunk_ms)  # continues the stream begun above
sys.stdout.write(render(args.files[0], transcript, args.format))
stamps["rest_of_file"] = time.time()
sys.stderr.write(json.dumps(stamps) + "\n")
cli._exit_now(0)
"""
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
TERMINAL = (40, 120)  # rows, columns
PLAYING = b"playing"  # the live view's status bar once its worker runs on an --input file


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


def time_transcribe(command: list[str], path: Path, options: tuple[str, ...] = ()) -> tuple[float, float]:
    """Seconds from launching ``livespeech transcribe PATH`` to its exit, and the CPU
    seconds (user + system) it used.

    Raises:
        RuntimeError: the command failed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([*command, "transcribe", *options, str(path)], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"transcribe exited {p.returncode}: {p.stderr.strip()[-300:]}")
    return elapsed, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def time_live(command: list[str], path: Path, folder: Path, timeout: float = 60.0, options: tuple[str, ...] = ()) -> tuple[float, float]:
    """Seconds from launching ``livespeech --input PATH`` in a pseudo-terminal until its
    status bar shows "playing" (its recognizer worker runs), and from pressing ``q``
    until it has exited.

    Raises:
        RuntimeError: it exited early or did not get ready within ``timeout`` seconds.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *TERMINAL, 0, 0))
    env = dict(os.environ, TERM=os.environ.get("TERM", "xterm-256color"))
    t0 = time.perf_counter()
    child = subprocess.Popen([*command, *options, "--input", str(path)], stdin=slave, stdout=slave, stderr=slave, env=env,
                             cwd=folder, start_new_session=True)
    os.close(slave)
    screen = bytearray()
    try:
        while PLAYING not in screen:  # the terminal output, escape sequences and all: the word is drawn whole
            _drain(master, screen, 0.005)
            if child.poll() is not None:
                raise RuntimeError(f"the live view exited {child.returncode}: {screen.decode(errors='replace')[-300:]!r}")
            if time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"not playing after {timeout} s")
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


def time_split(path: Path, options: tuple[str, ...] = ()) -> dict[str, float]:
    """Seconds of each step of ``transcribe PATH`` (see the module docstring), run in a
    child process that does what the command does, with time stamps between the steps.

    Raises:
        RuntimeError: the child failed.
    """
    launched = time.time()
    p = subprocess.run([sys.executable, "-c", SPLIT_CHILD, "transcribe", *options, str(path)], capture_output=True, text=True,
                       cwd=ROOT)
    ended = time.time()
    if p.returncode != 0:
        raise RuntimeError(f"split child exited {p.returncode}: {p.stderr.strip()[-300:]}")
    stamps = json.loads(p.stderr.strip().splitlines()[-1])
    names, times = ["python_start", *list(stamps)[1:], "exit"], [launched, *stamps.values(), ended]
    return {f"{name}_s": b - a for name, a, b in zip(names, times, times[1:])}


def time_usage(command: list[str], args: tuple[str, ...]) -> float:
    """Seconds a usage error takes, start to exit.

    Raises:
        RuntimeError: it did not exit with status 2.
    """
    t0 = time.perf_counter()
    p = subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - t0
    if p.returncode != 2:
        raise RuntimeError(f"{' '.join(args)} exited {p.returncode}, not 2: {p.stderr.strip()[-300:]}")
    return elapsed


def usage_report(command: list[str], runs: int) -> dict:
    """Median seconds of each of ``USAGE_ERRORS`` and of ``python -c pass``, taking turns."""
    times: dict[str, list[float]] = defaultdict(list)
    with tempfile.NamedTemporaryFile(prefix="livespeech-startup-") as existing:
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            times["python_bare"].append(time.perf_counter() - t0)
            for name, args in USAGE_ERRORS:
                times[name].append(time_usage(command, tuple(a.format(file=existing.name) for a in args)))
    return {name: round(statistics.median(values), 3) for name, values in times.items()}


def import_times(module: str) -> list[tuple[int, int, int, str]]:
    """``-X importtime`` of importing ``module``: (self us, cumulative us, depth, name) rows."""
    p = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True,
                       cwd=ROOT)
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
    parser.add_argument("--usage", action="store_true", help="only time usage errors (see the module docstring)")
    parser.add_argument("--no-live", action="store_true", help="leave the live view out")
    args = parser.parse_args()
    command = livespeech_command()
    load_before = round(os.getloadavg()[0], 2)
    if args.usage:
        print(json.dumps({"command": Path(command[0]).name if len(command) == 1 else " ".join(command[1:]), "runs": args.runs,
                          "usage_error_s": usage_report(command, args.runs), "target_s": 0.5, "cpu": cpu_model(), "cpus": os.cpu_count(),
                          "load_1min": [load_before, round(os.getloadavg()[0], 2)]}, indent=2))
        return
    rows = {}
    with tempfile.TemporaryDirectory(prefix="livespeech-startup-") as tmp:
        folder = Path(tmp)
        path = one_second_file(folder)
        for decoder in args.decoder:
            options = (*(("--model", args.model) if args.model else ()), *(("--decoder", decoder) if decoder else ()))
            transcribe, live, splits = [], [], defaultdict(list)
            for _ in range(args.runs):  # taking turns, so the machine's load falls on all alike
                transcribe.append(time_transcribe(command, path, options))
                for step, seconds in time_split(path, options).items():
                    splits[step].append(seconds)
                if not args.no_live:
                    live.append(time_live(command, SAMPLE, folder, options=options))
            rows[decoder or "default"] = {
                "transcribe_one_second_s": round(statistics.median(t for t, _ in transcribe), 2),
                "transcribe_runs_s": [round(t, 2) for t, _ in transcribe],
                "transcribe_cpu_s": round(statistics.median(c for _, c in transcribe), 2),
                "transcribe_split_s": {step: round(statistics.median(values), 3) for step, values in splits.items()},
                **({"live_until_listening_s": round(statistics.median(t for t, _ in live), 2),
                    "live_runs_s": [round(t, 2) for t, _ in live],
                    "live_quit_s": round(statistics.median(q for _, q in live), 2)} if live else {}),
            }
    print(json.dumps({
        "command": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
        "model": args.model, "runs": args.runs,
        **(rows.pop("default") if list(rows) == ["default"] else {"decoders": rows}),
        "imports": [import_report("livespeech.cli"), import_report("livespeech.transcribe"),
                    *(() if args.no_live else (import_report("livespeech.ui.app"),))],
        "cpu": cpu_model(), "cpus": os.cpu_count(), "load_1min": [load_before, round(os.getloadavg()[0], 2)],  # at the start and the end
    }, indent=2))


if __name__ == "__main__":
    main()
