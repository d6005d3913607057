"""Tune the beam search (LM weight, word insertion score, beam size) on a dev set, and
compare it with greedy decoding of the same model.

Never tune on a test set: the default is speechocean762's 25 held-out *dev* speakers.
The model runs once per file through the streaming recognizer (utterances cut at its
endpoints, as live); every setting then decodes the same utterance log-probabilities,
so a grid costs seconds per setting.  WER and CER are scored after the project's
normalisation (``training.spoken.spoken_form``) with jiwer.

    nice -n 10 .venv/bin/python bench/beam_tune.py --model models/mymodel             # so762 dev speakers
    .venv/bin/python bench/beam_tune.py --model M CORPUS... --limit 200 --write ~/lm

``--write DIR`` saves the best settings as ``DIR/decoder.json``, which
``livespeech-train lm --attach DIR --model M`` puts into the model's config.json.
Prints one JSON object: greedy WER/CER, every setting's WER/CER/RTF, the best.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

from livespeech.audio import read_audio  # noqa: E402
from livespeech.beam import BeamOptions, DecoderChoice, word_decoder_for  # noqa: E402
from livespeech.bundle import load_bundle  # noqa: E402
from livespeech.recognizer import Recognizer, transcribe_blocks  # noqa: E402
from livespeech.registry import find_model  # noqa: E402
from training.data import read_corpus  # noqa: E402
from training.spoken import spoken_form  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DEV = f"so762-dev:{ROOT.parent / 'shared' / 'data' / 'speechocean762'}"


def scores(references: list[str], hypotheses: list[str]) -> dict:
    """WER and CER of hypotheses against references, both in spoken form."""
    import jiwer

    refs = [spoken_form(r) or "-" for r in references]
    hyps = [spoken_form(h) or "-" for h in hypotheses]
    return {"wer": round(jiwer.wer(refs, hyps), 4), "cer": round(jiwer.cer(refs, hyps), 4)}


def utterances(bundle, corpora: list[str], limit: int | None, chunk_ms: int) -> tuple[list[str], list[list[torch.Tensor]], list[str], float]:
    """References, each file's utterance log-probabilities, greedy texts, audio seconds."""
    recognizer = Recognizer(bundle)
    refs, pieces, greedy, audio_s = [], [], [], 0.0
    for spec in corpora:
        for item in read_corpus(spec)[:limit]:
            recognizer.reset()
            result = transcribe_blocks(recognizer, [read_audio(item.audio, bundle.features.sample_rate)], chunk_ms)
            refs.append(item.text)
            pieces.append([u.log_probs for u in result.utterances])
            greedy.append(result.text)
            audio_s += result.audio_s
    return refs, pieces, greedy, audio_s


def decode_all(decoder, pieces: list[list[torch.Tensor]]) -> tuple[list[str], float]:
    """Each file's text from the word decoder, and the CPU seconds the decoding took."""
    texts, t0 = [], time.process_time()
    for file_pieces in pieces:
        words = []
        for log_probs in file_pieces:
            decoder.reset()
            decoder.update(log_probs)
            words.append(decoder.finish()[0])
        texts.append(" ".join(w for w in words if w))
    return texts, time.process_time() - t0


def main() -> None:
    """Parse the options, decode the dev set greedily and with every setting, print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpora", nargs="*", default=[DEFAULT_DEV], help=f"dev corpora (default {DEFAULT_DEV})")
    parser.add_argument("--model", required=True, help="model name or folder with a language model")
    parser.add_argument("--limit", type=int, default=None, help="at most this many utterances per corpus")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument("--lm-weight", type=float, nargs="+", default=[0.3, 0.5, 0.8, 1.1, 1.5])
    parser.add_argument("--word-score", type=float, nargs="+", default=[-1.0, 0.0, 1.0, 2.0])
    parser.add_argument("--beam-size", type=int, nargs="+", default=[16])
    parser.add_argument("--beam-size-token", type=int, default=BeamOptions.beam_size_token)
    parser.add_argument("--write", type=Path, metavar="DIR", help="save the best settings as DIR/decoder.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_bundle(find_model(args.model))
    base = word_decoder_for(bundle, DecoderChoice("beam"))
    t0 = time.perf_counter()
    refs, pieces, greedy, audio_s = utterances(bundle, args.corpora, args.limit, args.chunk_ms)
    rows = []
    for lm_weight, word_score, beam_size in itertools.product(args.lm_weight, args.word_score, args.beam_size):
        options = BeamOptions(beam_size=beam_size, beam_size_token=args.beam_size_token, lm_weight=lm_weight, word_score=word_score)
        texts, cpu_s = decode_all(base.with_options(options), pieces)
        rows.append({**options.to_dict(), **scores(refs, texts), "decode_rtf": round(cpu_s / audio_s, 4)})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    best = min(rows, key=lambda r: (r["wer"], r["cer"]))
    result = {"model": bundle.name, "corpora": args.corpora, "files": len(refs), "audio_s": round(audio_s, 1),
              "greedy": scores(refs, greedy), "best": best, "settings": rows, "wall_s": round(time.perf_counter() - t0, 1)}
    if args.write:
        fields = ("beam_size", "beam_size_token", "beam_threshold", "lm_weight", "word_score", "sil_score")
        (args.write / "decoder.json").write_text(json.dumps({k: best[k] for k in fields}, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
