"""Offline transcription of files through the streaming :class:`Recognizer`."""

from __future__ import annotations

import sys
from pathlib import Path

from livespeech.audio import AudioError, audio_info, read_blocks
from livespeech.bundle import Bundle
from livespeech.output import render, write_atomic
from livespeech.recognizer import Recognizer, Transcript, transcribe_blocks

LONG_WORK_S = 30.0  # show a progress bar when there is more audio than this, or several files


def transcribe_file(recognizer: Recognizer, path: Path, chunk_ms: int = 100) -> Transcript:
    """Transcribe one file (read in blocks, so memory stays bounded).

    Raises:
        AudioError: the file cannot be read as audio.
    """
    recognizer.reset()
    return transcribe_blocks(recognizer, read_blocks(path, sample_rate=recognizer.sample_rate), chunk_ms)


def transcribe_files(bundle: Bundle, files: list[str], fmt: str, output_dir: Path | None, chunk_ms: int,
                     force: bool = False, debug: bool = False) -> int:
    """Transcribe each file, print or write its transcript, report failures one line
    each on stderr. Returns the exit status: 0, or 1 when any file failed."""
    recognizer = Recognizer(bundle)
    status = 0
    with _progress(files) as advance:
        for name in files:
            try:
                transcript = transcribe_file(recognizer, Path(name), chunk_ms)
                _emit(name, transcript, fmt, output_dir, force, several=len(files) > 1)
            except (AudioError, FileExistsError, OSError) as error:
                if debug:
                    raise
                print(f"livespeech: error: {name}: {error}", file=sys.stderr, flush=True)
                status = 1
            advance(name)
    return status


def _emit(name: str, transcript: Transcript, fmt: str, output_dir: Path | None, force: bool, several: bool) -> None:
    text = render(name, transcript, fmt)
    if output_dir is not None:
        write_atomic(output_dir / f"{Path(name).stem}.{fmt}", text, force)
    elif fmt == "txt" and several:
        sys.stdout.write(f"{name}: {text}")
    elif fmt in ("srt", "vtt") and several:
        sys.stdout.write(f"==> {name} <==\n{text}")
    else:
        sys.stdout.write(text)
    sys.stdout.flush()


class _progress:
    """A rich progress bar on stderr when it is a terminal and the work is long."""

    def __init__(self, files: list[str]):
        self.files = files
        self.bar = None

    def _long(self) -> bool:
        if len(self.files) > 1:
            return True
        try:
            return audio_info(Path(self.files[0])).duration_s > LONG_WORK_S
        except AudioError:
            return False

    def __enter__(self):
        if sys.stderr.isatty() and self._long():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("transcribing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("files", total=len(self.files))
        return self.advance

    def advance(self, _name: str) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
