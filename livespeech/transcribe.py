"""Offline transcription of files through the streaming :class:`Recognizer`.

With ``jobs`` > 1 (``livespeech transcribe --jobs N``) the files are shared out to N
worker processes, each of which loads the model once and runs it on ``threads``
torch threads (default 1); this process prints or writes every result in the order
the files were given, so the output is the same for any number of jobs.  Workers
are started with "spawn": forking a process that has imported torch is unsafe.
Workers die with this process, however it ends (Ctrl-C, SIGTERM, SIGKILL): on Linux
the kernel kills them (``PR_SET_PDEATHSIG``), elsewhere they watch their parent.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch

from livespeech.audio import AudioError, audio_info, read_blocks
from livespeech.beam import BeamSearchDecoder, DecoderChoice, word_decoder_for
from livespeech.bundle import Bundle, load_bundle
from livespeech.cli import EXIT_FAILED, EXIT_OK, PROG, error_line, warning_line
from livespeech.output import render, write_atomic
from livespeech.recognizer import Recognizer, Transcript, transcribe_blocks

LONG_WORK_S = 30.0  # show a progress bar when there is more audio than this, or several files
AUDIO_S_PER_JOB = 120.0  # default jobs: one per this much audio (a worker takes ~2 s to start, the time
                         # for ~2 minutes of audio at RTF 0.015)
PARENT_POLL_S = 1.0  # where PR_SET_PDEATHSIG is missing: how often a worker checks that its parent lives
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass(frozen=True)
class Options:
    """What to make of each file.

    Attributes:
        fmt: output format: txt, json, srt or vtt.
        output_dir: write ``DIR/NAME.FORMAT`` per file; None prints to stdout.
        chunk_ms: streaming chunk, milliseconds (never changes the text).
        force: overwrite existing output files.
        debug: raise errors (with their traceback) instead of reporting them.
    """

    fmt: str = "txt"
    output_dir: Path | None = None
    chunk_ms: int = 100
    force: bool = False
    debug: bool = False


@dataclass(frozen=True)
class FileResult:
    """One file's outcome: its rendered transcript, or None and the reason it failed;
    ``audio_s``: seconds of audio transcribed; ``warning``: a problem that did not stop
    it (a truncated file), for one line on stderr."""

    name: str
    text: str | None
    audio_s: float = 0.0
    error: str | None = None
    warning: str | None = None


def available_cpus() -> int:
    """CPU cores this process may run on (the default number of jobs)."""
    count = getattr(os, "process_cpu_count", None)  # Python 3.13+
    if count is not None:
        return count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def default_jobs(files: list[str]) -> int:
    """Worker processes for ``files`` when ``--jobs`` is not given: one per
    ``AUDIO_S_PER_JOB`` seconds of audio (durations from the file headers; unreadable
    files count as none), at least 1, at most one per CPU core and one per file."""
    most = min(available_cpus(), len(files))
    if most <= 1:
        return 1  # no need to read any header
    total_s = 0.0
    for name in files:
        try:
            total_s += audio_info(Path(name)).duration_s
        except (AudioError, OSError):
            pass
    return max(1, min(most, int(total_s // AUDIO_S_PER_JOB)))


def transcribe_file(recognizer: Recognizer, path: Path, chunk_ms: int = 100) -> Transcript:
    """Transcribe one file (read in blocks, so memory stays bounded; the transcript
    keeps no log-probabilities).

    Raises:
        AudioError: the file cannot be read as audio.
    """
    recognizer.reset()
    return transcribe_blocks(recognizer, read_blocks(path, sample_rate=recognizer.sample_rate), chunk_ms, keep_log_probs=False)


def transcribe_one(recognizer: Recognizer, name: str, options: Options) -> FileResult:
    """Transcribe and render one file; an unreadable file gives a result with its error.

    Raises:
        AudioError, OSError: only with ``options.debug``.
    """
    try:
        info = audio_info(Path(name))
        transcript = transcribe_file(recognizer, Path(name), options.chunk_ms)
    except (AudioError, OSError) as error:
        if options.debug:
            raise
        return FileResult(name, None, error=str(error))
    warning = truncation_warning(info)
    return FileResult(name, render(name, transcript, options.fmt), transcript.audio_s, warning=warning)


def truncation_warning(info) -> str | None:
    """The warning for a file whose header promises more audio than it holds, or None.

    Args:
        info: the file's :class:`~livespeech.audio.AudioInfo`.
    """
    if not info.truncated:
        return None
    return f"truncated file: its header promises more audio than the {info.duration_s:.2f} s it holds (transcribed those)"


def transcribe_files(bundle: Bundle, files: list[str], options: Options, jobs: int = 1, threads: int = 1,
                     word_decoder: BeamSearchDecoder | None = None, choice: DecoderChoice | None = None) -> int:
    """Transcribe ``files``, print or write each transcript in the order given, report
    failures one line each on stderr and, for several files, the throughput in one
    line on stderr.

    Args:
        bundle: the loaded model (worker processes load ``bundle.path`` again).
        files: audio file paths.
        options: format, output folder, chunk, overwriting, debug.
        jobs: worker processes; 1 transcribes in this process.
        threads: torch threads of each worker process.
        word_decoder: beam search over words for this process (None: greedy).
        choice: how worker processes build theirs (default: greedy, or beam search
            when ``word_decoder`` is given).
    Returns:
        the exit status: 0, or 1 when any file failed.
    """
    t0 = time.perf_counter()
    ok, audio_s = True, 0.0
    if choice is None:
        choice = DecoderChoice("beam" if word_decoder is not None else "greedy")
    with _results(bundle, files, options, jobs, threads, word_decoder, choice) as results, _progress(files) as advance:
        for result in results:
            ok &= _emit(result, options, several=len(files) > 1)
            audio_s += result.audio_s
            advance()
    if len(files) > 1:
        _report_throughput(len(files), audio_s, time.perf_counter() - t0, jobs)
    return EXIT_OK if ok else EXIT_FAILED


@contextmanager
def _results(bundle: Bundle, files: list[str], options: Options, jobs: int, threads: int,
             word_decoder: BeamSearchDecoder | None, choice: DecoderChoice) -> Iterator[Iterator[FileResult]]:
    """Each file's result in the order of ``files``: from this process, or from
    ``jobs`` worker processes (stopped at once if the caller fails or is interrupted)."""
    if jobs == 1:
        recognizer = Recognizer(bundle, word_decoder=word_decoder)
        yield (transcribe_one(recognizer, name, options) for name in files)
        return
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(bundle.path, threads, choice, os.getpid()))
    try:
        yield pool.map(partial(_work, options=options), files)
    except BaseException:
        _terminate(pool)
        raise
    finally:
        pool.shutdown(cancel_futures=True)


_recognizer: Recognizer | None = None  # a worker process's own


def _start_worker(model: Path, threads: int, choice: DecoderChoice = DecoderChoice("greedy"), parent: int | None = None) -> None:
    """Set up a worker process: its torch threads and the model (with its beam search
    when ``choice`` is beam), loaded once. Ctrl-C is left to the parent, which stops
    the workers; the worker dies with its parent (process id ``parent``), however that
    ends; a worker leaves without Python's slow finalization (its results are all sent
    by then)."""
    global _recognizer
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(os.getppid() if parent is None else parent)
    atexit.register(os._exit, EXIT_OK)  # once the pool lets it go: tearing down torch takes about a second
    torch.set_num_threads(threads)
    bundle = load_bundle(model)
    _recognizer = Recognizer(bundle, word_decoder=word_decoder_for(bundle, choice))


def _die_with_parent(parent: int) -> None:
    """Make this worker end when its parent process ends, even by SIGKILL (which the
    parent cannot handle): the kernel sends SIGKILL on Linux (``PR_SET_PDEATHSIG``),
    else a daemon thread polls the parent id every ``PARENT_POLL_S`` seconds. A parent
    that died before this ran is noticed at once (this process was reparented)."""
    armed = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # gone already
        os._exit(EXIT_FAILED)
    if not armed:
        threading.Thread(target=_watch_parent, args=(parent,), name="parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Leave at once when this process's parent has changed (the old one is gone)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(EXIT_FAILED)


def _work(name: str, options: Options) -> FileResult:
    """A worker process's task: one file."""
    return transcribe_one(_recognizer, name, options)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Stop the workers now, without waiting for the files they are on."""
    if hasattr(pool, "terminate_workers"):  # Python 3.14+
        pool.terminate_workers()
        return
    for process in list((pool._processes or {}).values()):  # no public way before 3.14
        process.terminate()


def _emit(result: FileResult, options: Options, several: bool) -> bool:
    """Write or print one file's transcript, or its error line; False when it failed.
    Errors writing stdout (a closed pipe) are not the file's: they propagate."""
    error = result.error
    if result.text is not None and options.output_dir is not None:
        try:
            write_atomic(options.output_dir / f"{Path(result.name).stem}.{options.fmt}", result.text, options.force)
        except OSError as failure:  # FileExistsError: the output file is there already
            if options.debug:
                raise
            error = str(failure)
    elif result.text is not None:
        sys.stdout.write(_labelled(result.name, result.text, options.fmt, several))
        sys.stdout.flush()
    if error is not None:
        error_line(f"{result.name}: {error}")
    elif result.warning is not None:
        warning_line(f"{result.name}: {result.warning}")
    return error is None


def _labelled(name: str, text: str, fmt: str, several: bool) -> str:
    """A transcript for stdout: named by its file when there are several (not json,
    whose objects name their file)."""
    if several and fmt == "txt":
        return f"{name}: {text}"
    if several and fmt in ("srt", "vtt"):
        return f"==> {name} <==\n{text}"
    return text


def _report_throughput(files: int, audio_s: float, wall_s: float, jobs: int) -> None:
    """One line on stderr: files, seconds of audio, wall seconds, times real time."""
    speed = audio_s / wall_s if wall_s > 0 else float("inf")
    print(f"{PROG}: {files} files, {audio_s:.1f} s of audio in {wall_s:.1f} s "
          f"({speed:.1f}x real time, {jobs} job{'s' if jobs > 1 else ''})", file=sys.stderr, flush=True)


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

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.advance(self.task)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
