"""Live-view benchmark: latency, CPU, memory over an accelerated hour, and overruns
under a 2-second UI stall, measured on the real :class:`~livespeech.ui.app.LiveApp`
(headless Textual at 120x40, phrase panel on) fed by the real file source.

    .venv/bin/python bench/live_latency.py                      # every measurement
    .venv/bin/python bench/live_latency.py --only latency stall --seconds 20
    .venv/bin/python bench/live_latency.py --model models/base --json bench/live.json

Measurements (issue 3's targets in brackets):
- latency: real-time playback; for every chunk, the time from the arrival of its
  *first* sample to the moment its text is on screen (after the refresh), so it
  includes waiting for the chunk to fill [median <= 150 ms + chunk length];
  CPU % of one core used by the whole process while listening [<= 40 %];
  spectrogram image updates per second [>= 20].
- stall: real-time playback with the event loop blocked for 2 s [overruns 0, all
  audio recognised].
- memory: an hour of audio played faster than real time; resident memory sampled
  along the way [flat: report start, end and slope].
- tmux (--tmux): the real ``livespeech --input`` in a 120x40 tmux terminal; CPU % of
  the process from /proc over the run (terminal output included).

Without ``--model`` the installed default model is used, or, when it is missing, a
random-weight model of the same dimensions (the compute is the same).  The audio is
FSDD test recordings joined with pauses (``--audio`` to give another file).

Everything is measured from outside the app, through public interfaces of the
installed package: the worker's :class:`~livespeech.worker.LiveUpdate` events seen
through Textual's ``run_test(message_hook=...)`` (arrival times, real-time factors),
new spectrogram images drawn through Textual's ``render_line``, and the app's
``segments``, ``worker`` and source.

    .venv/bin/python bench/live_latency.py --only latency --profile live.prof   # where the UI's CPU goes
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from livespeech.audio import read_audio
from livespeech.bundle import ModelError, load_bundle, save_bundle
from livespeech.capture import FileSource
from livespeech.features import SAMPLE_RATE
from livespeech.registry import find_model
from livespeech.ui.app import build_app
from livespeech.ui.widgets import Spectrogram
from livespeech.worker import LiveUpdate
from machine import cpu_model  # bench/machine.py

ROOT = Path(__file__).resolve().parent.parent  # for the benchmark data only
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
SIZE = (120, 40)
PAGE = os.sysconf("SC_PAGE_SIZE")


# ----------------------------------------------------------------------------- inputs


def model_path(spec: str | None, workdir: Path) -> tuple[Path, str]:
    """The model folder to use and how it was chosen."""
    if spec:
        return find_model(spec), "given"
    try:
        return find_model(None), "default"
    except ModelError:
        import torch

        from livespeech.features import FeatureConfig
        from livespeech.model import CTCModel, ModelDims
        from livespeech.text import Vocabulary

        torch.manual_seed(0)
        model = CTCModel(ModelDims()).eval()  # the default dimensions: 3 stacked frames, 3 LSTM layers of 320
        model.feature_mean.fill_(-6.0)
        model.feature_std.fill_(3.0)
        folder = save_bundle(workdir / "random-base", model, FeatureConfig(), Vocabulary(),
                             {"name": "random-base", "description": "random weights, default dimensions"}, "# random\n")
        return folder, "random weights, default dimensions (no trained default model installed)"


def speech_file(spec: str | None, workdir: Path, seconds: float = 60.0) -> Path:
    """The benchmark audio: ``spec``, or FSDD test takes (0-4) joined with 0.8 s pauses."""
    if spec:
        return Path(spec)
    import soundfile as sf

    rng = np.random.default_rng(0)
    takes = sorted(FSDD.glob("*_[0-4].wav"))
    pieces, total = [], 0.0
    pause = np.zeros(int(0.8 * SAMPLE_RATE), np.float32)
    while total < seconds and takes:
        take = read_audio(takes[int(rng.integers(len(takes)))])
        pieces += [take, pause]
        total += (len(take) + len(pause)) / SAMPLE_RATE
    if not pieces:  # no FSDD: noise bursts and pauses
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        pieces = [(0.2 * (np.sin(2 * np.pi * 1.3 * t) > 0) * rng.standard_normal(len(t))).astype(np.float32)]
    path = workdir / "speech.wav"
    sf.write(path, np.concatenate(pieces), SAMPLE_RATE, subtype="FLOAT")
    return path


# ----------------------------------------------------------------------------- process stats


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb(pid: str = "self") -> float:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state first); [] when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return []


def proc_cpu_seconds(pid: int) -> float:
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def exited(pid: int) -> bool:
    """Gone, or a zombie waiting for its parent (tmux) to reap it."""
    fields = proc_stat(pid)
    return not fields or fields[0] in ("Z", "X")


# ----------------------------------------------------------------------------- runs


DECODER = None  # "greedy", "beam" or None (the model's default), from --decoder
PROFILE: Path | None = None  # --profile: cProfile of the event loop's thread over the measured time


class Observer:
    """What the bench sees of a running app: chunk events and new spectrogram images.

    Attributes:
        latencies: seconds from each chunk's first sample arriving to its update being
            on screen (the refresh after the app handled it).
        rtfs: each full chunk's real-time factor.
        images: redraws of the spectrogram so far.
    """

    def __init__(self):
        self.app = None
        self.latencies: list[float] = []
        self.rtfs: list[float] = []
        self.images = 0
        self._last = (-1, 0.0)  # the last line rendered and when

    def message(self, message) -> None:
        """Textual's ``message_hook``: called as each message is handled."""
        if isinstance(message, LiveUpdate) and self.app is not None:
            if message.rtf is not None:
                self.rtfs.append(message.rtf)
            if message.arrival is not None:
                self.app.call_after_refresh(lambda arrival=message.arrival: self.latencies.append(time.perf_counter() - arrival))

    def watch(self, spectrogram: Spectrogram) -> None:
        """Count the screen's redraws of ``spectrogram`` through Textual's ``render_line``:
        a redraw renders its changed lines top down within a moment; redraws are a
        frame (1/60 s or more) apart."""
        render_line = spectrogram.render_line

        def counting(y: int):
            now = time.perf_counter()
            if y <= self._last[0] or now - self._last[1] > 0.008:
                self.images += 1
            self._last = (y, now)
            return render_line(y)

        spectrogram.render_line = counting

    def reset(self) -> None:
        """Forget what was seen so far (after the warm-up)."""
        self.latencies.clear()
        self.rtfs.clear()
        self.images = 0


async def run_app(bundle, source: FileSource, seconds: float | None, stall_at: float | None = None,
                  warmup: float = 2.0, sample_every: float | None = None) -> dict:
    """Play ``source`` through the headless app for ``seconds`` (None: to its end)."""
    from livespeech.beam import DecoderChoice, word_decoder_for

    app = build_app(bundle, "commands", lambda: source, save_dir=Path(tempfile.gettempdir()),
                    word_decoder=word_decoder_for(bundle, DecoderChoice(DECODER)))
    seen = Observer()
    samples = []
    async with app.run_test(size=SIZE, message_hook=seen.message) as pilot:
        seen.app = app
        seen.watch(app.query_one(Spectrogram))
        await pilot.pause(warmup)
        seen.reset()  # keep what follows the warm-up
        profiler = cProfile.Profile(time.thread_time) if PROFILE else None  # CPU time: waits for the GIL left out
        if profiler:
            profiler.enable()
        cpu0, wall0 = cpu_seconds(), time.perf_counter()
        if stall_at is not None:
            await asyncio.sleep(stall_at)
            time.sleep(2.0)  # the event loop (the UI) is blocked for 2 s
        deadline = wall0 + seconds if seconds is not None else float("inf")
        next_sample = wall0
        while time.perf_counter() < deadline and not (source.ended and app.worker and not app.worker.alive):
            await asyncio.sleep(0.1)
            if sample_every is not None and time.perf_counter() >= next_sample:
                samples.append((app.worker.position.seconds if app.worker else 0.0, rss_mb(), len(app.segments)))
                next_sample += sample_every
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds() - cpu0
        if profiler:
            profiler.disable()
            profiler.dump_stats(PROFILE)
        latencies = list(seen.latencies)
        result = {
            "wall_s": round(wall, 2),
            "cpu_percent": round(100 * cpu / wall, 1),
            "latency_ms_median": round(1000 * statistics.median(latencies), 1) if latencies else None,
            "latency_ms_p90": round(1000 * float(np.percentile(latencies, 90)), 1) if latencies else None,
            "latency_ms_max": round(1000 * max(latencies), 1) if latencies else None,
            "latencies": len(latencies),
            "spectrogram_updates_per_s": round(seen.images / wall, 1),
            "rtf_median": round(statistics.median(seen.rtfs), 4) if seen.rtfs else None,
            "overruns": source.overruns,
            "audio_s_recognised": round(app.worker.position.seconds, 2) if app.worker else None,
            "utterances": len(app.segments),
            "words_kept": sum(len(s.words) for s in app.segments),
            "samples": samples,
        }
        await pilot.press("q")
    return result


def measure_latency(bundle, audio: Path, seconds: float) -> dict:
    result = asyncio.run(run_app(bundle, FileSource(audio, speed=1.0, loops=100), seconds))
    result.pop("samples")
    return result


def measure_stall(bundle, audio: Path) -> dict:
    source = FileSource(audio, speed=1.0)
    duration = source.duration_s
    result = asyncio.run(run_app(bundle, source, None, stall_at=3.0, warmup=0.5))
    result.pop("samples")
    result["audio_s"] = round(duration, 2)
    return result


def measure_memory(bundle, audio: Path, hour_s: float, speed: float | None) -> dict:
    source = FileSource(audio, speed=speed, loops=max(1, round(hour_s / FileSource(audio).duration_s)))
    result = asyncio.run(run_app(bundle, source, None, warmup=0.5, sample_every=5.0))
    samples = result.pop("samples")
    audio_s = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    late = audio_s >= 300  # after the first 5 minutes of audio
    slope = float(np.polyfit(audio_s[late] / 3600, rss[late], 1)[0]) if late.sum() > 2 else None
    return {"speed": speed or "as fast as recognised", "effective_speed": round(float(audio_s[-1]) / result["wall_s"], 1),
            "audio_s": round(float(audio_s[-1]), 1) if len(audio_s) else 0.0,
            "wall_s": result["wall_s"], "overruns": result["overruns"], "utterances": result["utterances"],
            "words_kept": result["words_kept"],
            "rss_mb_at_5_min": round(float(rss[late][0]), 1) if late.any() else None,
            "rss_mb_at_end": round(float(rss[-1]), 1) if len(rss) else None,
            "rss_mb_max": round(float(rss.max()), 1) if len(rss) else None,
            "rss_slope_mb_per_audio_hour": round(slope, 2) if slope is not None else None,
            "curve": [(round(a), round(r, 1)) for a, r, _ in samples[:: max(1, len(samples) // 12)]]}


def measure_tmux(model: Path, audio: Path, seconds: float) -> dict:
    """CPU % of the real command in a real (tmux) terminal."""
    if not shutil.which("tmux"):
        return {"skipped": "tmux not installed"}
    session = f"livebench{os.getpid()}"
    exe = Path(sys.executable).with_name("livespeech")
    command = f"exec {exe} --model {model} --input {audio} --phrases commands"  # exec: the pane's pid is the app
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(SIZE[0]), "-y", str(SIZE[1]), command], check=True)
    try:
        pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"], capture_output=True,
                                 text=True, check=True).stdout.split()[0])
        time.sleep(5.0)  # start-up: imports, model, first frames
        cpu0, wall0 = proc_cpu_seconds(pid), time.perf_counter()
        time.sleep(seconds)
        cpu, wall = proc_cpu_seconds(pid) - cpu0, time.perf_counter() - wall0
        rss = rss_mb(str(pid))
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        status = next((line.strip() for line in screen.splitlines() if "latency" in line), "")
        t0 = time.perf_counter()
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        while not exited(pid) and time.perf_counter() - t0 < 5:
            time.sleep(0.005)
        quit_s = time.perf_counter() - t0
        return {"cpu_percent": round(100 * cpu / wall, 1), "rss_mb": round(rss, 1), "status_line": status,
                "quit_s": round(quit_s, 2)}
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="model name or folder (default: the default model, else random weights of its size)")
    ap.add_argument("--audio", help="speech file to play (default: FSDD test takes joined with pauses)")
    ap.add_argument("--only", nargs="+", choices=("latency", "stall", "memory", "tmux"), default=("latency", "stall", "memory", "tmux"))
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the real-time runs (default 30)")
    ap.add_argument("--hour-s", type=float, default=3600.0, help="audio seconds of the memory run (default 3600)")
    ap.add_argument("--speed", type=float, default=None, help="playback speed of the memory run (default: as fast as it is recognised)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--decoder", choices=("greedy", "beam"), help="the transcript's decoder (default: beam when the model has a language model)")
    ap.add_argument("--profile", type=Path, metavar="FILE", help="write a cProfile of the UI thread over each measured run "
                    "to FILE (the last run's stays; read it with python -m pstats)")
    args = ap.parse_args()
    global DECODER, PROFILE
    DECODER, PROFILE = args.decoder, args.profile

    import torch

    torch.set_num_threads(1)
    workdir = Path(tempfile.mkdtemp(prefix="live-bench-"))
    folder, how = model_path(args.model, workdir)
    bundle = load_bundle(folder)
    audio = speech_file(args.audio, workdir)
    results = {"model": str(folder), "model_choice": how, "audio": str(audio), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg(), "chunk_ms": 100, "decoder": args.decoder or "model's default"}
    steps = {"latency": lambda: measure_latency(bundle, audio, args.seconds),
             "stall": lambda: measure_stall(bundle, audio),
             "memory": lambda: measure_memory(bundle, audio, args.hour_s, args.speed),
             "tmux": lambda: measure_tmux(folder, audio, args.seconds)}
    for name in args.only:
        print(f"== {name}", flush=True)
        results[name] = steps[name]()
        print(json.dumps(results[name], indent=1), flush=True)
    results["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
