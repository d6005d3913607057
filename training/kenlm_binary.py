"""KenLM's binary format for the language model of a model folder.

KenLM (Heafield, 2011) reads an ARPA file by parsing every n-gram: 0.6-0.8 s for the
default 1.6 M n-gram LM on an AMD EPYC core, about a third of ``livespeech transcribe``'s
start-up.  Its binary ``trie`` format, written by KenLM's own ``build_binary`` program,
is memory-mapped instead: 0.02-0.03 s for the same LM, with the same scores (no
quantisation; ``-a 255`` compresses the trie's pointers losslessly, 17 MB against the
ARPA's 14.5 MB gzipped).  ``livespeech`` loads ``lm.bin`` when the folder lists one and
the ARPA otherwise; the ARPA stays, since words added at run time (``--words``) go into
a copy of it (:func:`livespeech.lm.with_unigrams`), which the binary cannot take.

``build_binary`` is not on PyPI as a program.  :func:`compile_build_binary` downloads
KenLM's source distribution from PyPI (kenlm 0.3.0, checked against its SHA-256) and
compiles the program with the system's C++ compiler and zlib, as KenLM's
``compile_query_only.sh`` does (about 2 minutes on 2 cores):

    livespeech-train lm --compile-build-binary               # once; prints where it went
    livespeech-train lm --out ~/lm                           # ARPA, lexicon and lm.bin
    livespeech-train lm --binary-of ~/lm                     # lm.bin for an LM built before
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from livespeech.atomic import atomic_path

BINARY_NAME = "lm.bin"
KENLM_VERSION = "0.3.0"
KENLM_SDIST_URL = ("https://files.pythonhosted.org/packages/02/6e/f4e159cef39ea4ef2244b4aa32857d447d60a5d0ee269e1b1f8d3723c03e/"
                   f"kenlm-{KENLM_VERSION}.tar.gz")
KENLM_SDIST_SHA256 = "c4628bb9fb63c8a6f9240035b8b037385cfc404cb72e933cf48878291edac1e8"
BUILD_OPTIONS = ("-a", "255", "-S", "25%", "trie")  # lossless trie, pointers compressed; sort in a quarter of RAM
PROGRAM = "build_binary"


class KenLMToolError(OSError):
    """KenLM's program failed, or could not be fetched or compiled; the message says why."""


def default_tool_dir() -> Path:
    """Where :func:`compile_build_binary` puts the program by default: the user's cache
    folder (``platformdirs.user_cache_dir("livespeech")/kenlm-VERSION``)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("livespeech")) / f"kenlm-{KENLM_VERSION}"


def find_build_binary(explicit: str | Path | None = None) -> Path | None:
    """KenLM's ``build_binary``: ``explicit`` when given, else the one on ``PATH``, else
    the one :func:`compile_build_binary` left in :func:`default_tool_dir`; None when
    there is none.

    Raises:
        FileNotFoundError: ``explicit`` is not an executable file.
    """
    if explicit:
        path = Path(explicit)
        if not path.is_file() or not os.access(path, os.X_OK):
            raise FileNotFoundError(f"{path}: not an executable build_binary")
        return path
    on_path = shutil.which(PROGRAM)
    if on_path:
        return Path(on_path)
    cached = default_tool_dir() / PROGRAM
    return cached if cached.is_file() and os.access(cached, os.X_OK) else None


def write_binary(arpa: Path, out: Path, build_binary: Path) -> int:
    """Write KenLM's binary trie of the ARPA file ``arpa`` to ``out`` (atomically: a
    failed or interrupted build leaves any old ``out``); returns its size in bytes.

    Raises:
        KenLMToolError: ``build_binary`` failed (its last output lines are given).
    """
    out = Path(out)
    with atomic_path(out) as tmp:
        done = subprocess.run([str(build_binary), *BUILD_OPTIONS, str(arpa), str(tmp)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise KenLMToolError(f"build_binary failed on {arpa} (exit {done.returncode}): {tail[-300:]}")
    return out.stat().st_size


def compile_build_binary(out_dir: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Download KenLM's source from PyPI, check its SHA-256, and compile ``build_binary``
    into ``out_dir`` (default :func:`default_tool_dir`).

    Returns:
        the program's path.
    Raises:
        OSError: the download failed.
        KenLMToolError: the download does not match the pinned SHA-256, or compiling
            failed (needs g++ and zlib's headers: ``apt-get install g++ zlib1g-dev``).
    """
    out_dir = Path(out_dir) if out_dir else default_tool_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kenlm-") as work:
        archive = Path(work) / f"kenlm-{KENLM_VERSION}.tar.gz"
        log(f"downloading {KENLM_SDIST_URL}")
        with urllib.request.urlopen(KENLM_SDIST_URL, timeout=60) as response, open(archive, "wb") as f:
            shutil.copyfileobj(response, f)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != KENLM_SDIST_SHA256:
            raise KenLMToolError(f"{KENLM_SDIST_URL}: SHA-256 {digest}, expected {KENLM_SDIST_SHA256}")
        with tarfile.open(archive) as tar:
            tar.extractall(work, filter="data")
        source = Path(work) / f"kenlm-{KENLM_VERSION}"
        log(f"compiling {PROGRAM} (about 2 minutes)")
        env = dict(os.environ, CXXFLAGS="-DHAVE_ZLIB -lz")
        done = subprocess.run(["bash", "compile_query_only.sh"], cwd=source, env=env, capture_output=True, text=True, check=False)
        built = source / "bin" / PROGRAM
        if done.returncode != 0 or not built.is_file():
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise KenLMToolError(f"compiling KenLM failed (needs g++ and zlib1g-dev): {tail[-300:]}")
        with atomic_path(out_dir / PROGRAM) as tmp:
            shutil.copyfile(built, tmp)
        os.chmod(out_dir / PROGRAM, 0o755)
        shutil.copyfile(source / "LICENSE", out_dir / "LICENSE")
    return out_dir / PROGRAM
