"""One recognizer in its own process, for ``bench/peers.py`` (not run by hand).

    PYTHON bench/_peer_worker.py JOB.json

Runs under the project's ``.venv`` python for livespeech and under the peers'
virtual environment for PocketSphinx and faster-whisper, so it imports only the
standard library at the top.  The job file names the system, its options and the
audio files.  Messages go to stdout as JSON lines:

- ``{"event": "ready", "time": T, "cpu_s": c, "model_bytes": N, "versions": {...}}``
  once the model is loaded (``T`` is ``time.time()``: the parent subtracts its own
  clock at spawn, so start-up = interpreter start + imports + model loading; ``c`` is
  the CPU time this process has used so far);
- ``{"event": "file", "index": i, "hypothesis": str, "processing_s": s, "cpu_s": c,
  "audio_s": a}`` per file, in order: ``processing_s`` is the wall time of recognition
  alone (the audio is read and resampled before the clock starts), ``cpu_s`` the CPU
  time of the process (all its threads) over the same span, ``audio_s`` the file's
  duration;
- ``{"event": "done", "max_rss_mb": m}``: peak resident memory of this process
  (``getrusage(RUSAGE_SELF).ru_maxrss``, kB on Linux).

Before the timed files, the first file is recognised once, untimed (warm-up).
Everything runs on one thread: the parent sets ``OMP_NUM_THREADS=1`` and each
system is told to use one thread as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from pathlib import Path

SAMPLE_RATE = 16_000  # Hz, what every system here takes (not livespeech.features's: the peers' venv lacks livespeech)


def emit(event: str, **fields) -> None:
    """Write one JSON message line to stdout."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def files_bytes(paths) -> int:
    """Bytes on disk of files and of every file under folders."""
    total = 0
    for path in map(Path, paths):
        total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
    return total


def read_16k(path: str):
    """A file as mono float32 at 16 kHz, shape (N,), resampled with soxr (peers venv)."""
    import numpy as np
    import soundfile as sf
    import soxr

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return mono


def versions(*packages: str) -> dict:
    """Installed versions of the given distributions."""
    from importlib.metadata import version

    return {p: version(p) for p in packages}


# --- systems: each returns (recognise(samples) -> str, read(path) -> samples, model_bytes, versions)


def livespeech_system(options: dict):
    """The streaming recognizer (``transcribe``) or its phrase classification
    (``classify``), 100 ms chunks, as ``livespeech transcribe`` / ``classify`` run."""
    import torch

    torch.set_num_threads(1)
    from livespeech.audio import read_audio
    from livespeech.bundle import load_bundle
    from livespeech.recognizer import Recognizer, transcribe_blocks
    from livespeech.registry import find_model

    chunk_ms = int(options.get("chunk_ms", 100))
    if options["mode"] == "classify":
        from livespeech.phrases import PhraseScorer, load_phrase_set, model_for_phrases, scorer_options

        phrase_set = load_phrase_set(options["phrases"])
        model = options.get("model") or model_for_phrases(phrase_set)
        bundle = load_bundle(find_model(str(model) if model else None))
        scorer = PhraseScorer(phrase_set, bundle.vocabulary, **scorer_options(bundle.config, phrase_set))
    else:
        bundle = load_bundle(find_model(options.get("model")))
    recognizer = Recognizer(bundle)

    def recognise(samples) -> str:
        with torch.inference_mode():
            recognizer.reset()
            transcript = transcribe_blocks(recognizer, [samples], chunk_ms)
            if options["mode"] != "classify":
                return transcript.text
            pieces = [u.log_probs for u in transcript.utterances]
            log_probs = torch.cat(pieces) if pieces else torch.zeros(0, len(bundle.vocabulary))
            return scorer.score(log_probs).phrase or ""

    model_files = [bundle.path / "config.json", bundle.path / "model.safetensors"]
    digest = hashlib.sha256(model_files[1].read_bytes()).hexdigest()[:12]
    trained_on = " + ".join(map(str, bundle.config.get("training", {}).get("data", []))) or "?"
    info = {"model": f"{bundle.name} ({bundle.path}, sha256 {digest}, trained on {trained_on})", **versions("torch")}
    return recognise, lambda p: read_audio(Path(p)), files_bytes(model_files), info


def pocketsphinx_system(options: dict):
    """PocketSphinx 5 with its bundled en-us acoustic model and dictionary: the
    default trigram LM (``lm``) or a JSGF grammar of one word from a list (``grammar``)."""
    import numpy as np
    from pocketsphinx import Decoder

    if options["mode"] == "grammar":
        decoder = Decoder(samprate=SAMPLE_RATE, lm=None, loglevel="ERROR")
        words = " | ".join(options["words"])
        decoder.add_jsgf_string("words", f"#JSGF V1.0;\ngrammar words;\npublic <word> = {words};\n")
        decoder.activate_search("words")
        model_files = [decoder.config["hmm"], decoder.config["dict"]]
    else:
        decoder = Decoder(samprate=SAMPLE_RATE, loglevel="ERROR")
        model_files = [decoder.config["hmm"], decoder.config["dict"], decoder.config["lm"]]

    def recognise(samples) -> str:
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()  # 16-bit PCM
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    return recognise, read_16k, files_bytes(model_files), versions("pocketsphinx")


def whisper_system(options: dict):
    """faster-whisper on CPU, int8, one thread, English, no VAD."""
    from faster_whisper import WhisperModel

    path = options["model_path"]
    model = WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=1, num_workers=1)
    decode = {"language": "en", "beam_size": int(options.get("beam_size", 1)), "vad_filter": False}
    if options.get("temperature") is not None:
        decode["temperature"] = float(options["temperature"])

    def recognise(samples) -> str:
        segments, _ = model.transcribe(samples, **decode)
        return " ".join(s.text.strip() for s in segments)  # the generator does the work

    return recognise, read_16k, files_bytes([path]), versions("faster-whisper", "ctranslate2")


SYSTEMS = {"livespeech": livespeech_system, "pocketsphinx": pocketsphinx_system, "whisper": whisper_system}


def main() -> int:
    """Run the job named on the command line (see the module docstring)."""
    job = json.loads(Path(sys.argv[1]).read_text())
    recognise, read, model_bytes, info = SYSTEMS[job["system"]](job["options"])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    emit("ready", time=time.time(), cpu_s=usage.ru_utime + usage.ru_stime, model_bytes=model_bytes, versions=info)
    files = job["files"]
    if files and job.get("warmup", True):
        recognise(read(files[0]))
    for index, path in enumerate(files):
        samples = read(path)
        t0, c0 = time.perf_counter(), time.process_time()
        hypothesis = recognise(samples)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        emit("file", index=index, hypothesis=hypothesis, processing_s=elapsed, cpu_s=cpu, audio_s=len(samples) / SAMPLE_RATE)
    emit("done", max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
