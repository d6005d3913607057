"""The ``livespeech`` command line.

    livespeech [--model M] [--phrases P] [--device ID|NAME] [--input FILE]   (the live view)
    livespeech transcribe FILE... [--model M] [--format txt|json|srt|vtt] [--output-dir DIR] [--chunk-ms N] [--jobs N]
    livespeech classify FILE... [--phrases P] [--model M] [--format txt|json] [--top N]
      (all three: [--decoder greedy|beam] [--beam-size N] [--lm-weight W] [--words FILE])
    livespeech record PHRASES [--takes N] [--out DIR] [--device ID|NAME] [--input FILE]
    livespeech models
    livespeech devices

Exit status: 0 success, 1 when any input failed (the others are still processed),
2 for usage errors, 128 + the signal's number when interrupted (130 for Ctrl-C; SIGTERM,
143, is handled like Ctrl-C by every command but the live view).  Errors are one
``livespeech: error:`` line on stderr; tracebacks only with ``--debug``.

Heavy modules (torch, torchaudio, textual, sounddevice) are imported inside the
commands, after every usage check, so ``--help`` and usage errors take no more than
Python's start (``bench/startup.py --usage`` times them); a command that has loaded
torch leaves without Python's finalization, which takes 0.5-2 s with torch loaded.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import NoReturn

PROG = "livespeech"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNAL_BASE = 128  # exit status on a signal: 128 + its number, as shells report it
MAX_CHUNK_MS = 5000  # --chunk-ms above this is refused: a chunk is buffered whole (5 s = 160 KB at 16 kHz)
MIN_TAKE_S = 0.5  # record --max-seconds must be longer, seconds


class UsageError(Exception):
    """A bad option or argument (exit status 2)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or another signal) received: handled like Ctrl-C, exit 128 + ``signum``."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def error_line(message: str) -> None:
    """Print ``livespeech: error: MESSAGE`` on stderr (one line)."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def warning_line(message: str) -> None:
    """Print ``livespeech: warning: MESSAGE`` on stderr (one line)."""
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    """An argparse type: an integer above 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def chunk_ms(text: str) -> int:
    """``--chunk-ms``: a positive number of milliseconds, at most ``MAX_CHUNK_MS``."""
    value = positive_int(text)
    if value > MAX_CHUNK_MS:
        raise argparse.ArgumentTypeError(f"at most {MAX_CHUNK_MS} ms: {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (not nan)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="model name or folder (default: the bundled 'base' model)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads for the model (default 1: fastest for streaming)")


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0: {text}")
    return value


def _add_decoder(p: argparse.ArgumentParser) -> None:
    """How the text is decoded: greedy characters, or words by beam search."""
    p.add_argument("--decoder", choices=("greedy", "beam"), default=None,
                   help="greedy: the characters the model hears; beam: words, by beam search with the model's lexicon and "
                   "language model (default: beam when the model has a language model, see 'livespeech models')")
    p.add_argument("--beam-size", type=positive_int, default=None, metavar="N", help="hypotheses the beam search keeps (default: the model's tuned value)")
    p.add_argument("--lm-weight", type=non_negative_float, default=None, metavar="W", help="weight of the language model in the beam search (default: the model's tuned value)")
    p.add_argument("--words", type=Path, default=None, metavar="FILE", help="words and names the beam search should know, one per line "
                   "(UTF-8, '#' comments): added to its lexicon and language model")


def _add_live(p: argparse.ArgumentParser) -> None:
    """Options of the live view (``livespeech`` without a command)."""
    _add_model(p)
    _add_decoder(p)
    p.add_argument("--phrases", default="commands", metavar="P", help="phrase set of the phrase panel: a bundled name or a file; 'none' hides the panel (default commands)")
    p.add_argument("--device", metavar="ID|NAME", help="input device index or name (default: the system's default input; see 'livespeech devices')")
    p.add_argument("--input", metavar="FILE", help="play FILE in real time instead of listening to a microphone")
    p.add_argument("--chunk-ms", type=chunk_ms, default=100, metavar="N", help=f"recognition chunk in ms, at most {MAX_CHUNK_MS} (default 100)")
    p.add_argument("--endpoint-s", type=positive_float, default=0.6, metavar="S", help="pause that ends an utterance, seconds (default 0.6)")
    p.add_argument("--events", type=Path, metavar="FILE", help="append one JSON line per utterance (text, phrase, confidence) to FILE or a named pipe")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Live speech recognition in the terminal, and offline transcription. "
                    "Without a command: the live view (microphone, or --input FILE in real time).")
    _add_common(parser)
    _add_live(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("transcribe", help="transcribe audio files (WAV, FLAC, OGG; any rate and channels)")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_model(p)
    p.add_argument("--format", choices=("txt", "json", "srt", "vtt"), default="txt", help="output format (default txt)")
    p.add_argument("--output-dir", type=Path, metavar="DIR", help="write DIR/NAME.FORMAT per file instead of printing (DIR is made if missing)")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--chunk-ms", type=chunk_ms, default=100, metavar="N", help=f"streaming chunk length in ms, at most {MAX_CHUNK_MS} "
                   "(default 100; never changes the text)")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N", help="files transcribed in parallel, one worker process "
                   "each (default: one per 2 minutes of audio, at most one per CPU core and per file; 1: in this process)")
    _add_decoder(p)
    _add_common(p)

    p = sub.add_parser("classify", help="which phrase of a set each audio file holds, or none")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--phrases", metavar="P", help="phrase set: a bundled name (digits, commands) or a file, one phrase per line "
                   "(default: the set the --model was trained for)")
    p.add_argument("--model", metavar="M", help="model name or folder (default: the phrase model named after the set when "
                   "one is installed, else the bundled 'base' model)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads for the model (default 1)")
    p.add_argument("--format", choices=("txt", "json"), default="txt", help="txt: PHRASE CONFIDENCE; json: one object per file and line")
    p.add_argument("--top", type=positive_int, default=3, metavar="N", help="phrases listed in the json 'top' field (default 3)")
    p.add_argument("--chunk-ms", type=chunk_ms, default=100, metavar="N", help=f"streaming chunk length in ms, at most {MAX_CHUNK_MS} (default 100)")
    _add_decoder(p)
    _add_common(p)

    p = sub.add_parser("record", help="record takes of each phrase of a set, for livespeech-train phrases")
    p.add_argument("phrases", metavar="PHRASES", help="phrase set: a bundled name or a file, one phrase per line")
    p.add_argument("--takes", type=positive_int, default=5, metavar="N", help="takes of every phrase (default 5)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="folder-per-phrase output (default: recordings/SET)")
    p.add_argument("--device", metavar="ID|NAME", help="input device number or name (default: the system's; see livespeech devices)")
    p.add_argument("--input", type=Path, metavar="FILE", help="take the audio from FILE instead of the microphone (takes are its spoken segments)")
    p.add_argument("--max-seconds", type=float, default=6.0, metavar="S", help="longest take in seconds (default 6)")
    _add_common(p)

    p = sub.add_parser("models", help="list installed models")
    _add_common(p)

    p = sub.add_parser("devices", help="list audio input devices with their default sample rates")
    _add_common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``livespeech`` command line.

    Args:
        argv: the arguments (default: ``sys.argv[1:]``). Without ``argv`` (the console
            script), a process that has loaded torch leaves by ``os._exit`` once its
            output is flushed, skipping Python's slow finalization.
    Returns:
        the exit status (see the module docstring).
    """
    status = _run(sys.argv[1:] if argv is None else argv)
    if argv is None and "torch" in sys.modules:
        _exit_now(status)
    return status


def _run(argv: list[str]) -> int:
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        _check_options_follow_the_command(argv, args.command)
        if args.command is not None:  # the live view handles its own signals
            signal.signal(signal.SIGTERM, _on_signal)
        return COMMANDS[args.command](args)
    except UsageError as error:
        error_line(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        error_line("interrupted" if signum == signal.SIGINT else f"terminated ({signal.Signals(signum).name})")
        return EXIT_SIGNAL_BASE + signum
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        error_line(_describe(error))
        return EXIT_FAILED


def _check_options_follow_the_command(argv: list[str], command: str | None) -> None:
    """The options before a command are the live view's, which argparse would silently drop
    (``livespeech --model M transcribe F`` used the default model): refuse them.

    Raises:
        UsageError: an option other than ``--debug`` stands before the command.
    """
    if command is None:
        return
    before = [token for token in argv[:argv.index(command)] if token.startswith("-") and token != "--debug"]
    if before:
        raise UsageError(f"{before[0]} stands before the command: options go after it ({PROG} {command} {before[0]} ...)")


def _on_signal(signum: int, frame) -> None:
    """SIGTERM is handled like Ctrl-C: worker processes are stopped, partial output files
    are not left behind, and the exit status is 128 + the signal's number."""
    raise Interrupted(signum)


def _describe(error: Exception) -> str:
    # Only errors of modules already loaded can be raised: importing one here (torch for
    # livespeech.bundle's) would slow an early error down by seconds.
    bundle, lm, audio = (sys.modules.get(f"livespeech.{name}") for name in ("bundle", "lm", "audio"))
    if bundle is not None and isinstance(error, bundle.ModelError):
        return f"model: {error}"
    if lm is not None and isinstance(error, lm.LanguageModelError):
        return str(error)  # starts with the file's path
    if audio is not None and isinstance(error, audio.AudioError):
        return str(error)  # names the file
    return f"{type(error).__name__}: {error}" if not isinstance(error, OSError) else str(error)


def _load(args):
    """The model ``--model`` names, loaded on ``--threads`` torch threads (torch is
    imported here, after the model folder is found).

    Raises:
        ModelError: no such model, or a broken one.
    """
    from livespeech.registry import find_model

    folder = find_model(args.model)
    import torch

    from livespeech.bundle import load_bundle

    torch.set_num_threads(args.threads)
    return load_bundle(folder)


def _decoder_choice(args):
    """The user's decoding options, with the ``--words`` list read (before the model loads).

    Raises:
        UsageError: a bad word list, or beam settings with ``--decoder greedy``.
    """
    from livespeech.lexicon import LexiconError, read_word_list  # light: usage errors stay instant

    if args.decoder == "greedy" and (args.words is not None or args.beam_size is not None or args.lm_weight is not None):
        raise UsageError("--words, --beam-size and --lm-weight are for beam search, not --decoder greedy")
    words = ()
    if args.words is not None:
        try:
            words = tuple(read_word_list(args.words))
        except LexiconError as error:
            raise UsageError(f"--words {error}") from None
    from livespeech.beam import DecoderChoice

    return DecoderChoice(args.decoder, args.beam_size, args.lm_weight, words)


def _word_decoder(bundle, choice, extra_words=()):
    """The beam search the model and the user's choice call for, or None (greedy).

    Raises:
        LanguageModelError: beam search asked for and impossible (one error line, exit 1).
    """
    from livespeech.beam import word_decoder_for

    return word_decoder_for(bundle, choice, extra_words, warn=warning_line)


def cmd_transcribe(args) -> int:
    """``livespeech transcribe``: text of each file, printed or written under
    ``--output-dir``. Returns the exit status (1 when any file failed)."""
    from dataclasses import replace

    choice = _decoder_choice(args)
    if args.output_dir is not None:
        try:
            args.output_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a file of that name, no permission
            raise UsageError(f"--output-dir {args.output_dir}: cannot make that folder ({error.strerror})") from None
    from livespeech.transcribe import Options, default_jobs, transcribe_files  # torch: after the usage checks

    bundle = _load(args)  # here even with --jobs: a bad model is one error line before any worker starts
    word_decoder = _word_decoder(bundle, choice)  # likewise a bad language model
    choice = replace(choice, kind="beam" if word_decoder is not None else "greedy")  # what the workers build
    options = Options(args.format, args.output_dir, args.chunk_ms, args.force, args.debug)
    jobs = min(args.jobs, len(args.files)) if args.jobs else default_jobs(args.files)
    return transcribe_files(bundle, args.files, options, jobs, args.threads, word_decoder, choice)


def cmd_classify(args) -> int:
    """``livespeech classify``: the phrase each file holds. Usage checks (decoder options,
    the phrase set, a model trained for one when ``--phrases`` is not given) come
    before torch is imported. Returns the exit status."""
    from livespeech.bundle import ModelError, read_config
    from livespeech.lexicon import words_of
    from livespeech.phrases import PhraseSetError, load_phrase_set, model_phrase_set
    from livespeech.registry import find_model

    choice = _decoder_choice(args)
    try:
        phrase_set = load_phrase_set(args.phrases) if args.phrases else None
    except PhraseSetError as error:
        raise UsageError(f"--phrases: {error}") from None
    args.model = args.model or _phrase_model(phrase_set)
    if phrase_set is None:  # the model's own set, read from its config.json before torch loads
        folder = find_model(args.model)
        config = read_config(folder)
        phrase_set = model_phrase_set(config)
        if phrase_set is None:
            raise UsageError(f"--phrases is needed: model {config.get('name', folder.name)!r} was not trained for a phrase set")
    from livespeech.classify import classify_files  # torch: after the usage checks
    from livespeech.phrases import PhraseScorer, scorer_options

    bundle = _load(args)
    try:
        scorer = PhraseScorer(phrase_set, bundle.vocabulary, **{**scorer_options(bundle.config, phrase_set), "top": args.top})
    except PhraseSetError as error:
        raise UsageError(f"--phrases: {error}") from None
    except ValueError as error:
        raise ModelError(f"{bundle.path}: bad phrase scorer settings ({error})") from None
    word_decoder = _word_decoder(bundle, choice, words_of(phrase_set.phrases))
    return classify_files(bundle, scorer, args.files, args.format, args.chunk_ms, args.debug, word_decoder)


def _phrase_model(phrase_set) -> str | None:
    """The installed phrase model trained for ``phrase_set``, as a path, or None."""
    from livespeech.phrases import model_for_phrases

    folder = model_for_phrases(phrase_set) if phrase_set is not None else None
    return str(folder) if folder is not None else None


def cmd_record(args) -> int:
    """``livespeech record``: takes of every phrase of a set. Usage checks (``--input``
    with ``--device``, ``--max-seconds``, the phrase set) come before numpy and the
    audio modules are imported. Returns the exit status."""
    from livespeech.phrases import PhraseSetError, load_phrase_set

    _check_source_options(args.input, args.device)
    if not MIN_TAKE_S < args.max_seconds < float("inf"):  # nan and inf too
        raise UsageError(f"--max-seconds must be a finite number of seconds above {MIN_TAKE_S}, got {args.max_seconds}")
    try:
        phrase_set = load_phrase_set(args.phrases)
    except PhraseSetError as error:
        raise UsageError(str(error)) from None
    from livespeech.audio import AudioError  # numpy, soundfile: after the usage checks
    from livespeech.capture import CaptureError, open_source
    from livespeech.record import record_phrases

    out = args.out or Path("recordings") / phrase_set.name
    try:
        source = open_source(args.input, args.device, speed=None)  # a file: as fast as the takes are cut
        saved = record_phrases(phrase_set, out, args.takes, source, max_seconds=args.max_seconds)
    except (AudioError, CaptureError) as error:
        error_line(str(error))
        return EXIT_FAILED
    wanted = args.takes * len(phrase_set.phrases)
    print(f"{len(saved)} takes saved in {out}")
    if len(saved) < wanted:
        error_line(f"{args.input}: the input ended after {len(saved)} of {wanted} takes")
        return EXIT_FAILED
    return EXIT_OK


def cmd_live(args) -> int:
    """The live view (no command): checks the options (:func:`check_live_arguments`) and
    the terminal, loads the model and runs the app; leaves by ``os._exit`` with the
    app's exit status."""
    from livespeech.phrases import PhraseSetError

    check_live_arguments(args.input, args.device, args.phrases, args.events)  # an unreadable --input: exit status 1
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the live view needs a terminal; to transcribe files use 'livespeech transcribe FILE'")
    choice = _decoder_choice(args)
    from livespeech.ui.app import run_live

    bundle = _load(args)
    word_decoder = _word_decoder(bundle, choice, _phrase_words(args.phrases))
    try:
        status = run_live(bundle, args.phrases, args.device, args.input, args.chunk_ms, args.endpoint_s, args.events,
                          word_decoder=word_decoder)
    except PhraseSetError as error:  # a set the model cannot spell
        raise UsageError(f"--phrases: {error}") from None
    _exit_now(status)


def _check_source_options(input_path: str | Path | None, device: str | None) -> None:
    """Raises UsageError for ``--input`` with ``--device``: a file replaces the microphone."""
    if input_path is not None and device is not None:
        raise UsageError("--input and --device exclude each other (a file replaces the microphone)")


def check_live_arguments(input_path: str | None, device: str | None, phrases: str | None = None,
                         events: Path | None = None) -> None:
    """Check ``--input``, ``--device``, ``--phrases`` and ``--events`` before the model
    loads and the screen opens.

    The options alone are checked first, importing nothing heavy (a usage error costs
    Python's start); then the input file (numpy, soundfile) or the device (sounddevice).
    Problems of the machine rather than the arguments (PortAudio missing, no input
    device at all) are left for the live view to show; whether the model can spell the
    phrases is checked once it is loaded.

    Raises:
        UsageError: --input with --device, no such phrase set, no folder for --events,
            or no such device.
        AudioError: the input file cannot be read (the message names it).
    """
    from livespeech.phrases import PhraseSetError, load_phrase_set, means_no_phrases

    _check_source_options(input_path, device)
    if not means_no_phrases(phrases):
        try:
            load_phrase_set(phrases)
        except PhraseSetError as error:
            raise UsageError(f"--phrases: {error}") from None
    if events is not None and not events.parent.is_dir():
        raise UsageError(f"--events {events}: no such folder {events.parent}")
    if input_path is not None:
        from livespeech.audio import AudioError, audio_info

        try:
            audio_info(Path(input_path))
        except AudioError as error:
            raise AudioError(f"{input_path}: {error}") from None
    elif device is not None:
        from livespeech.capture import CaptureError, DeviceNotFound, resolve_device

        try:
            resolve_device(device)
        except DeviceNotFound as error:
            raise UsageError(str(error)) from None
        except CaptureError:
            pass  # shown on screen, with a way to pick another device


def _phrase_words(spec: str | None) -> list[str]:
    """The words of the live view's phrase set (none for "none" or a set that cannot be read)."""
    from livespeech.lexicon import words_of
    from livespeech.phrases import PhraseSetError, load_phrase_set, means_no_phrases

    if means_no_phrases(spec):
        return []
    try:
        return words_of(load_phrase_set(spec).phrases)
    except PhraseSetError:
        return []  # reported by the live view itself


def _exit_now(status: int) -> NoReturn:
    """Leave at once with ``status``: Python's own finalization takes 0.5-2 s with
    torch loaded, and quitting must take under a second. Every file, stream and worker
    is closed by now; stdout and stderr are flushed (a closed pipe is not reported
    again: its error was, or it takes no output)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or file
            status = status or EXIT_FAILED
    os._exit(status)


def cmd_devices(args) -> int:
    """``livespeech devices``: the audio input devices, the default starred. Returns the exit status."""
    from livespeech.capture import CaptureError, list_input_devices

    try:
        devices = list_input_devices()
    except CaptureError as error:
        error_line(str(error))
        return EXIT_FAILED
    if not devices:
        print("no audio input devices")
    for d in devices:
        print(f"{'*' if d.is_default else ' '}{d.index:>3}  {d.name:<32} {d.hostapi:<12} {d.channels:>3} ch  {d.default_rate:>7.0f} Hz")
    return EXIT_OK


def cmd_models(args) -> int:
    """``livespeech models``: the installed models, broken ones with the reason. Returns the exit status."""
    from livespeech.registry import list_models

    entries = list_models()
    if not entries:
        print("no models installed")
        return EXIT_OK
    for e in entries:
        size = f"{e.parameters / 1e6:.1f}M params" if e.parameters else ""
        status = f"BROKEN: {e.problem}" if e.problem else e.description
        decoder = "words+LM" if e.language_model else "greedy"  # beam search with a language model, or greedy characters
        print(f"{e.name:<16} {e.source:<8} {size:<13} {decoder:<8} {status}  ({e.path})")
    return EXIT_OK


COMMANDS = {None: cmd_live, "transcribe": cmd_transcribe, "classify": cmd_classify, "record": cmd_record, "models": cmd_models, "devices": cmd_devices}
