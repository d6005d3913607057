"""The ``livespeech`` command line.

    livespeech transcribe FILE... [--model M] [--format txt|json|srt|vtt] [--output-dir DIR] [--chunk-ms N]
    livespeech models

Exit status: 0 success, 1 when any input failed (the others are still processed),
2 for usage errors.  Errors are one ``livespeech: error:`` line on stderr; tracebacks
only with ``--debug``.  Heavy modules (torch) are imported inside the commands, so
``--help`` and usage errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROG = "livespeech"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad option or argument (exit status 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors and exit status 2."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def error_line(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="M", help="model name or folder (default: the bundled 'base' model)")
    p.add_argument("--threads", type=positive_int, default=1, help="CPU threads for the model (default 1: fastest for streaming)")


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Live speech recognition in the terminal, and offline transcription.")
    _add_common(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("transcribe", help="transcribe audio files (WAV, FLAC, OGG; any rate and channels)")
    p.add_argument("files", nargs="+", metavar="FILE")
    _add_model(p)
    p.add_argument("--format", choices=("txt", "json", "srt", "vtt"), default="txt", help="output format (default txt)")
    p.add_argument("--output-dir", type=Path, metavar="DIR", help="write DIR/NAME.FORMAT per file instead of printing")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--chunk-ms", type=positive_int, default=100, metavar="N", help="streaming chunk length in ms (default 100; never changes the text)")
    _add_common(p)

    p = sub.add_parser("models", help="list installed models")
    _add_common(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError("the live view is not available in this version; use 'livespeech transcribe FILE' (see livespeech --help)")
        return COMMANDS[args.command](args)
    except UsageError as error:
        error_line(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if debug:
            raise
        error_line(_describe(error))
        return EXIT_FAILED


def _describe(error: Exception) -> str:
    from livespeech.bundle import ModelError

    if isinstance(error, ModelError):
        return f"model: {error}"
    return f"{type(error).__name__}: {error}" if not isinstance(error, OSError) else str(error)


def _load(args):
    import torch

    from livespeech.bundle import load_bundle
    from livespeech.registry import find_model

    torch.set_num_threads(args.threads)
    return load_bundle(find_model(args.model))


def cmd_transcribe(args) -> int:
    from livespeech.transcribe import transcribe_files

    if args.output_dir is not None and not args.output_dir.is_dir():
        raise UsageError(f"--output-dir {args.output_dir}: not a folder")
    bundle = _load(args)
    return transcribe_files(bundle, args.files, args.format, args.output_dir, args.chunk_ms, args.force, args.debug)


def cmd_models(args) -> int:
    from livespeech.registry import list_models

    entries = list_models()
    if not entries:
        print("no models installed")
        return EXIT_OK
    for e in entries:
        size = f"{e.parameters / 1e6:.1f}M params" if e.parameters else ""
        status = f"BROKEN: {e.problem}" if e.problem else e.description
        print(f"{e.name:<16} {e.source:<8} {size:<13} {status}  ({e.path})")
    return EXIT_OK


COMMANDS = {"transcribe": cmd_transcribe, "models": cmd_models}
