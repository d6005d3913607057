"""How long the recognizer should carry the model's state across endpoints
(``EndpointConfig.state_reset_s``): accuracy of long streams of real speech.

Three conditions, on a corpus's utterances: each alone, as ``livespeech-train evaluate``
reads them (a pause inside one may end it); each speaker's joined into one stream with
``--gap-s`` seconds between them (long enough to end an utterance) on a quiet-microphone
noise floor (``training.evaluate.on_noise_floor``, -67 dBFS); and all speakers' streams
joined into one long stream, which shows whether a state carried for many minutes
drifts. Each is recognised in 100 ms chunks with greedy decoding for every value of
``--state-reset-s`` (0 restarts the model at every endpoint; ``inf`` never does) and
scored against its utterances' texts joined by spaces (jiwer CER and WER).

    .venv/bin/python bench/state_reset.py --model base            # speechocean762 dev speakers
    .venv/bin/python bench/state_reset.py --model base --state-reset-s 0 60 inf --no-long
    .venv/bin/python bench/state_reset.py --model models/mymodel --state-reset-s 0 5 --no-long --write 5

``--write S`` then sets ``state_reset_s`` in the folder's ``config.json`` (atomically), which
the recognizer reads as the model's default (``livespeech.bundle.Bundle.state_reset_s``).

Prints one JSON object with the CPU model (accuracy does not depend on it, but the
timings printed beside it do).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import defaultdict
from pathlib import Path

import jiwer
import numpy as np
import torch

from machine import cpu_model  # bench/machine.py
from livespeech.atomic import update_json_atomic
from livespeech.audio import read_audio
from livespeech.bundle import CONFIG_FILE, MAX_STATE_RESET_S, STATE_RESET_KEY, load_bundle
from livespeech.recognizer import EndpointConfig, Recognizer, transcribe_blocks
from livespeech.registry import find_model
from training.data import read_corpus
from training.evaluate import MICROPHONE_NOISE_DBFS, on_noise_floor


def speaker_streams(utterances: list, audio: list[np.ndarray], sample_rate: int, gap_s: float) -> list[tuple[np.ndarray, str]]:
    """One (audio, reference text) per speaker: their utterances (with ``audio``, the
    samples of each) in corpus order, ``gap_s`` seconds of silence after each, on the
    noise floor."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for i, u in enumerate(utterances):
        by_speaker[u.speaker].append(i)
    gap = np.zeros(round(gap_s * sample_rate), np.float32)
    rng = np.random.default_rng(0)
    streams = []
    for speaker in sorted(by_speaker):
        indices = by_speaker[speaker]
        joined = np.concatenate([part for i in indices for part in (audio[i], gap)])
        streams.append((on_noise_floor(joined, rng, MICROPHONE_NOISE_DBFS, 0.3, sample_rate), " ".join(utterances[i].text for i in indices)))
    return streams


def score(bundle, streams: list[tuple[np.ndarray, str]], state_reset_s: float) -> dict:
    """Greedy CER/WER of the streams with the state carried for ``state_reset_s`` seconds."""
    recognizer = Recognizer(bundle, EndpointConfig(state_reset_s=state_reset_s))
    t0 = time.perf_counter()
    hyps = [transcribe_blocks(recognizer, [audio], 100, keep_log_probs=False).text for audio, _ in streams]
    refs = [text for _, text in streams]
    return {"cer": round(jiwer.cer(refs, hyps), 4), "wer": round(jiwer.wer(refs, hyps), 4),
            "seconds": round(time.perf_counter() - t0, 1)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="base", help="model name or folder (default base)")
    p.add_argument("--corpus", default="so762-dev:../shared/data/speechocean762",
                   help="corpus spec (training.data.read_corpus; default speechocean762's dev speakers)")
    p.add_argument("--gap-s", type=float, default=1.0, help="silence between utterances, seconds (default 1.0)")
    p.add_argument("--state-reset-s", type=float, nargs="+", default=[0.0, 30.0, 60.0, 120.0, math.inf],
                   help="values to compare, seconds (default 0 30 60 120 inf)")
    p.add_argument("--no-long", action="store_true", help="skip the stream of all speakers joined")
    p.add_argument("--write", type=float, metavar="S",
                   help="after measuring, store S seconds as the model folder's state_reset_s (config.json), "
                        "the recognizer's default for it; choose S on dev speakers and digit streams, never test sets")
    args = p.parse_args(argv)
    if args.write is not None and not 0 <= args.write <= MAX_STATE_RESET_S:
        p.error(f"--write: seconds in [0, {MAX_STATE_RESET_S}]")
    torch.set_num_threads(1)
    folder = find_model(args.model)
    bundle = load_bundle(folder)
    rate = bundle.features.sample_rate
    utterances = read_corpus(args.corpus)
    audio = [read_audio(Path(u.audio), rate) for u in utterances]  # each file read once
    streams = speaker_streams(utterances, audio, rate, args.gap_s)
    seconds = [len(a) / rate for a, _ in streams]
    conditions = {"utterances": [(a, u.text) for a, u in zip(audio, utterances)], "per_speaker": streams}
    if not args.no_long:
        conditions["long"] = [(np.concatenate([a for a, _ in streams]), " ".join(t for _, t in streams))]
    report = {"cpu": cpu_model(), "model": bundle.name, "corpus": args.corpus, "gap_s": args.gap_s,
              "speakers": len(streams), "stream_minutes": [round(min(seconds) / 60, 1), round(max(seconds) / 60, 1)],
              "long_minutes": round(sum(seconds) / 60, 1)}
    for name, audio in conditions.items():
        report[name] = {}
        for value in args.state_reset_s:
            report[name][str(value)] = score(bundle, audio, value)
            print(json.dumps({name: value, **report[name][str(value)]}), flush=True)
    if args.write is not None:
        path = Path(folder) / CONFIG_FILE
        update_json_atomic(path, {STATE_RESET_KEY: args.write})
        report["written"] = str(path)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
